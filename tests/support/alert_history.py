"""The alert tests' history: one FDA alert page, edited, recorded through the history writer.

The content is the FDA's October 2023 alert on compounded ketamine, whose list of risks gained
"lower urinary tract symptoms": the kind of one-sentence edit fdawatch exists to catch. Every row
is written by `tests.support.history.HistoryBuilder` (so by `HistoryWriter`): the page's baseline
fetch, then each edit, with the change's diff, summary, severity and alert rows as a crawl would
store them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.models import Change, Snapshot, Source
from monitor.config import Recipient, Settings
from monitor.sources import SourceConfig
from tests.support.history import HistoryBuilder

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
#: What the writer says of the OLD_TEXT → NEW_TEXT edit.
SUMMARY = (
    "Changed: “…psychiatric events, increases in blood pressure, respiratory depression, and "
    "lower urinary tract symptoms.”"
)
#: What an alert email says of it: what was added, quoted.
HEADLINE = "Added “and lower urinary tract symptoms”"
#: The alert's subject: severity, the source's short name, the headline.
SUBJECT = "[fdawatch] T2 Compounded ketamine alert: Added “and lower urinary tract symptoms”"
#: When the alert tests send: five minutes after the edit was found.
NOW = DETECTED_AT + timedelta(minutes=5)

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
    source_id: str = SOURCE_ID, url: str = URL, title: str = SOURCE_TITLE, tier: str = "T2"
) -> SourceConfig:
    return SourceConfig(id=source_id, kind="page", url=url, title=title, tier=tier)


SOURCES = {SOURCE_ID: source_config()}


def add_source(
    session: Session, source_id: str = SOURCE_ID, url: str = URL, title: str = SOURCE_TITLE
) -> Source:
    """The source registered as a crawl registers it (no fetch yet)."""
    HistoryBuilder(session, [source_config(source_id, url, title)])
    row = session.get(Source, source_id)
    assert row is not None
    return row


def current_text(session: Session, source_id: str = SOURCE_ID, url: str = URL) -> str | None:
    """The text of the page's current version, or None before its first fetch."""
    query = (
        select(Snapshot.text)
        .where(Snapshot.source_id == source_id, Snapshot.doc_key == url)
        .order_by(col(Snapshot.id).desc())
    )
    return session.exec(query).first()


def add_change(
    session: Session,
    *,
    new_text: str | None = None,
    old_text: str | None = None,
    source_id: str = SOURCE_ID,
    url: str = URL,
    source_title: str = SOURCE_TITLE,
    title: str = TITLE,
    tier: str = "T2",
    detected_at: datetime | None = None,
    previous_at: datetime = PREVIOUS_AT,
    recipients: Sequence[Recipient] = (),
) -> Change:
    """One edit of the page, found by a fetch at `detected_at`; flushed, not committed.

    The first edit of a page is preceded by its baseline fetch (`old_text`, default OLD_TEXT,
    at `previous_at`) and defaults to NEW_TEXT. A later edit starts from the page as it is; its
    default text is the current one plus a numbered "Update" sentence, a minute later. The source
    is watched at `tier`; the default edits name nothing that raises it, so the writer files them
    at that tier. `recipients` get their alert rows in the same transaction.
    """
    source = source_config(source_id, url, source_title, tier)
    history = HistoryBuilder(session, [source], recipients)
    current = current_text(session, source_id, url)
    if current is None:
        history.version(source, old_text or OLD_TEXT, previous_at, title=title)
        current = old_text or OLD_TEXT
        new_text = new_text or NEW_TEXT
        detected_at = detected_at or DETECTED_AT
    elif old_text is not None and old_text != current:
        raise ValueError("the page is not at `old_text` any more: give only the new text")
    if new_text is None:
        edits = len(session.exec(select(Change.id).where(Change.source_id == source_id)).all())
        new_text = f"{current}\nUpdate {edits + 1}: FDA revised this alert again."
    if detected_at is None:
        last = session.exec(
            select(Snapshot.fetched_at)
            .where(Snapshot.source_id == source_id)
            .order_by(col(Snapshot.fetched_at).desc())
        ).first()
        assert last is not None
        detected_at = last + timedelta(minutes=1)
    change = history.version(source, new_text, detected_at, title=title)
    assert change is not None, "the new text must differ from the page's current text"
    return change


def numbered_text(number: int) -> str:
    return f"{TITLE}\n{INTRO}\nUpdate {number}: ketamine labelling note revised.\n{OUTRO}"


def numbered_change(session: Session, number: int, recipients: Sequence[Recipient] = ()) -> Change:
    """Edit `number` of a storm (call 1, 2, 3, … in turn): a T3 change titled by its number."""
    return add_change(
        session,
        old_text=f"{TITLE}\n{INTRO}\nUpdate 1: draft.\n{OUTRO}" if number == 1 else None,
        new_text=numbered_text(number),
        title=f"Ketamine notice {number}",
        tier="T3",
        detected_at=DETECTED_AT + timedelta(minutes=number),
        previous_at=PREVIOUS_AT + timedelta(minutes=number),
        recipients=recipients,
    )


def queue_change(
    engine: Engine, recipients: Sequence[Recipient] = (ALICE,), **change: object
) -> int:
    """One edit with its alerts, committed together (as a crawl commits them)."""
    with Session(engine) as session:
        row = add_change(session, recipients=recipients, **change)  # type: ignore[arg-type]
        session.commit()
        assert row.id is not None
        return row.id


def queue_numbered(
    engine: Engine, count: int, recipients: Sequence[Recipient] = (ALICE,)
) -> list[int]:
    """A storm: `count` edits in a row, each with its alerts."""
    ids = []
    with Session(engine) as session:
        for number in range(1, count + 1):
            row = numbered_change(session, number, recipients)
            assert row.id is not None
            ids.append(row.id)
        session.commit()
    return ids
