"""Tiny builders for history rows: a source, its snapshots and the change between them.

The content is the FDA's October 2023 alert on compounded ketamine, whose list of risks gained
"lower urinary tract symptoms" — the kind of one-sentence edit fdawatch exists to catch.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from db.models import Change, Snapshot, Source
from monitor.config import Recipient, Settings
from monitor.core.diff import unified
from monitor.sources import SourceConfig

SOURCE_ID = "fda_ketamine_alert"
SOURCE_TITLE = "FDA: compounded ketamine alert"
URL = (
    "https://www.fda.gov/drugs/human-drug-compounding/fda-alerts-health-care-professionals-"
    "potential-risks-associated-compounded-ketamine-products-including-oral"
)
TITLE = (
    "FDA alerts health care professionals of potential risks associated with compounded "
    "ketamine products, including oral formulations, for the treatment of psychiatric disorders"
)
INTRO = (
    "FDA is aware that compounded ketamine products have been marketed for the treatment of "
    "psychiatric disorders."
)
OLD_SENTENCE = (
    "Potential risks associated with ketamine use include abuse and misuse, psychiatric "
    "events, increases in blood pressure, and respiratory depression."
)
NEW_SENTENCE = (
    "Potential risks associated with ketamine use include abuse and misuse, psychiatric "
    "events, increases in blood pressure, respiratory depression, and lower urinary tract "
    "symptoms."
)
OUTRO = "Report adverse events to FDA's MedWatch program."
OLD_TEXT = "\n".join([TITLE, INTRO, OLD_SENTENCE, OUTRO])
NEW_TEXT = "\n".join([TITLE, INTRO, NEW_SENTENCE, OUTRO])
PREVIOUS_AT = datetime(2023, 10, 3, 14, 0, tzinfo=UTC)
DETECTED_AT = datetime(2023, 10, 10, 14, 30, tzinfo=UTC)
SUMMARY = "Changed: “…in blood pressure, respiratory depression, and lower urinary tract symptoms.”"

ALICE = Recipient(email="alice@pharmacy.example", name="Alice")
BOB = Recipient(email="bob@pharmacy.example", name="Bob")


def settings(**overrides: object) -> Settings:
    base = Settings(
        mail_from="fdawatch <fdawatch@pharmacy.example>",
        recipients=(ALICE,),
        site_url="https://fdawatch.pharmacy.example",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def source_config(
    source_id: str = SOURCE_ID, url: str = URL, title: str = SOURCE_TITLE
) -> SourceConfig:
    return SourceConfig(id=source_id, kind="page", url=url, title=title, tier="T2")


def add_source(
    session: Session, source_id: str = SOURCE_ID, url: str = URL, title: str = SOURCE_TITLE
) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        source = Source(id=source_id, kind="page", url=url, title=title)
        session.add(source)
        session.flush()
    return source


def add_snapshot(
    session: Session,
    text: str,
    fetched_at: datetime,
    *,
    source_id: str = SOURCE_ID,
    url: str = URL,
    title: str = TITLE,
) -> Snapshot:
    """The snapshot of `text` (snapshots are unique per document and content)."""
    sha = hashlib.sha256(text.encode()).hexdigest()
    existing = session.exec(
        select(Snapshot).where(
            Snapshot.source_id == source_id, Snapshot.doc_key == url, Snapshot.sha256 == sha
        )
    ).first()
    if existing is not None:
        return existing
    snapshot = Snapshot(
        source_id=source_id,
        doc_key=url,
        url=url,
        title=title,
        text=text,
        sha256=sha,
        fetched_at=fetched_at,
    )
    session.add(snapshot)
    session.flush()
    return snapshot


def add_change(
    session: Session,
    *,
    old_text: str = OLD_TEXT,
    new_text: str = NEW_TEXT,
    source_id: str = SOURCE_ID,
    url: str = URL,
    title: str = TITLE,
    summary: str = SUMMARY,
    severity: str = "T2",
    detected_at: datetime = DETECTED_AT,
    previous_at: datetime = PREVIOUS_AT,
    matched_terms: tuple[str, ...] = ("ketamine",),
    reasons: tuple[str, ...] = ("new adverse-risk wording in a ketamine safety alert",),
) -> Change:
    """Insert a source (once), the old and new snapshots and the change; flushed, not committed."""
    add_source(session, source_id, url)
    old = add_snapshot(session, old_text, previous_at, source_id=source_id, url=url, title=title)
    new = add_snapshot(session, new_text, detected_at, source_id=source_id, url=url, title=title)
    change = Change(
        source_id=source_id,
        doc_key=url,
        kind="changed",
        old_snapshot_id=old.id,
        new_snapshot_id=new.id,
        title=title,
        summary=summary,
        diff=unified(
            old_text,
            new_text,
            f"{url} {previous_at.isoformat()}",
            f"{url} {detected_at.isoformat()}",
        ),
        severity=severity,
        severity_reasons=list(reasons),
        matched_terms=list(matched_terms),
        detected_at=detected_at,
    )
    session.add(change)
    session.flush()
    return change


def numbered_change(session: Session, number: int, severity: str = "T3") -> Change:
    """A distinct change per `number` (for storms): the sentence gains the number."""
    old = f"{TITLE}\n{INTRO}\nUpdate {number}: draft.\n{OUTRO}"
    new = f"{TITLE}\n{INTRO}\nUpdate {number}: ketamine labelling note revised.\n{OUTRO}"
    return add_change(
        session,
        old_text=old,
        new_text=new,
        title=f"Ketamine notice {number}",
        summary=f"Changed: “Update {number}: ketamine labelling note revised.”",
        severity=severity,
        detected_at=DETECTED_AT + timedelta(minutes=number),
        previous_at=PREVIOUS_AT + timedelta(minutes=number),
    )
