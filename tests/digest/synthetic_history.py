"""SYNTHETIC history for the digest tests: sources, raw bodies, versions, changes and fetches.

SYNTHETIC: every page text below is written for these tests in the style of the FDA pages
fdawatch watches (the Spravato REMS page, the compounded-ketamine alert, a recall feed); none is a
verbatim copy. One source is deliberately hostile: its title, text and URL carry markup and a
`javascript:` link, which every rendering must show as inert text.

All changes fall in ISO week 2026-W48 (Mon 23 – Sun 29 November 2026); `NOW` is the Monday after.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from db.models import Change, Fetch, Snapshot, Source
from monitor.core import diff
from monitor.history.snapshots import store_body
from monitor.sources import SourceConfig

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WEEK_START = datetime(2026, 11, 23, tzinfo=UTC)
SYNTHETIC_HEADERS = {"Content-Type": "text/html; charset=utf-8", "X-Fixture": "SYNTHETIC"}
FEED_HEADERS = {"Content-Type": "application/rss+xml", "X-Fixture": "SYNTHETIC"}

REMS = SourceConfig(
    id="fda_spravato_rems",
    kind="page",
    url="https://www.accessdata.fda.gov/scripts/cder/rems/index.cfm?event=RemsDetails.page&REMS=386",
    title="REMS@FDA: Spravato (esketamine) REMS (SYNTHETIC)",
    tier="T1",
    tags=("spravato", "rems"),
)
KETAMINE = SourceConfig(
    id="fda_ketamine_oral_alert",
    kind="page",
    url="https://www.fda.gov/drugs/human-drug-compounding/fda-warns-patients-and-health-care-providers-about-potential-risks-associated-compounded-ketamine",
    title="FDA alert: compounded ketamine, incl. oral formulations (SYNTHETIC)",
    tier="T2",
    tags=("ketamine", "compounding"),
)
RECALLS = SourceConfig(
    id="fda_drug_recalls_rss",
    kind="feed",
    url="https://www.fda.gov/about-fda/contact-fda/stay-informed/rss-feeds/drug-recalls/rss.xml",
    title="FDA drug recalls RSS feed (SYNTHETIC)",
    tier="T3",
    tags=("recalls",),
)
RISK_ALERTS = SourceConfig(
    id="fda_compounding_risk_alerts",
    kind="page",
    url="https://www.fda.gov/drugs/human-drug-compounding/compounding-risk-alerts",
    title="FDA Compounding Risk Alerts index (SYNTHETIC)",
    tier="T2",
    tags=("ketamine", "compounding"),
)
HOSTILE = SourceConfig(
    id="hostile_fixture",
    kind="page",
    url="javascript:alert(document.cookie)",
    title='Hostile <script>alert("title")</script> source (SYNTHETIC)',
    tier="T4",
    tags=("hostile",),
)
SOURCES = {s.id: s for s in (REMS, KETAMINE, RECALLS, RISK_ALERTS, HOSTILE)}

REMS_OLD = "\n".join(
    [
        "SPRAVATO (esketamine) Risk Evaluation and Mitigation Strategy (REMS)",
        "Healthcare settings must be certified in the SPRAVATO REMS before dispensing.",
        "Patients must be monitored by a healthcare provider for at least 2 hours after "
        "administration.",
        "Healthcare settings must report serious adverse events to the REMS.",
    ]
)
REMS_NEW = "\n".join(
    [
        "SPRAVATO (esketamine) Risk Evaluation and Mitigation Strategy (REMS)",
        "Healthcare settings must be certified in the SPRAVATO REMS before dispensing.",
        "Patients must be monitored by a healthcare provider for at least 2 hours after "
        "administration.",
        "Outpatient healthcare settings must have a healthcare provider on site and a pulse "
        "oximeter available to monitor patients.",
        "Healthcare settings must report serious adverse events to the REMS.",
    ]
)
REMS_ADDED = (
    "Outpatient healthcare settings must have a healthcare provider on site and a pulse "
    "oximeter available to monitor patients."
)
KETAMINE_OLD = "\n".join(
    [
        "FDA warns patients and health care providers about potential risks associated with "
        "compounded ketamine products",
        "Patients who receive compounded ketamine through telemedicine platforms should be "
        "aware of the risks.",
        "Report adverse events to FDA's MedWatch program.",
    ]
)
KETAMINE_NEW = KETAMINE_OLD.replace(
    "should be aware of the risks.",
    "should be aware of the risks and be monitored by a health care provider after each dose.",
)
RECALL_TEXT = (
    "SYNTHETIC Pharma Recalls Ketamine Hydrochloride Injection Due to Particulate Matter\n"
    "SYNTHETIC Pharma is voluntarily recalling one lot of ketamine hydrochloride injection, "
    "50 mg/mL, to the user level."
)
HOSTILE_OLD = "Hostile page (SYNTHETIC)\nNothing to see."
HOSTILE_NEW = (
    "Hostile page (SYNTHETIC)\nNothing to see <script>alert('text')</script> "
    '<img src=x onerror="alert(1)"> <a href="javascript:alert(2)">click</a>.'
)
HOSTILE_TITLE = "<script>alert('change title')</script><img src=x onerror=alert(3)>"


@dataclass(frozen=True)
class History:
    """Ids of what `build` inserted."""

    rems: int  # T1: Spravato REMS gained the pulse-oximeter requirement
    ketamine: int  # T2: one sentence of the compounded ketamine alert edited
    recall: int  # T3: a new ketamine recall feed item
    hostile: int  # T4: markup everywhere
    bodies: dict[int, bytes]  # snapshot id → raw body as "fetched"


def raw_page(title: str, text: str) -> bytes:
    """A raw HTML body as a server would send it (SYNTHETIC)."""
    paragraphs = "".join(f"<p>{line}</p>" for line in text.splitlines())
    return (
        f"<!DOCTYPE html>\n<!-- SYNTHETIC fixture for fdawatch tests -->\n<html><head><title>"
        f"{title}</title></head><body><main>{paragraphs}</main></body></html>\n"
    ).encode()


def _source(session: Session, config: SourceConfig, **state: object) -> None:
    row = Source(id=config.id, kind=config.kind, url=config.url, title=config.title)
    for key, value in state.items():
        setattr(row, key, value)
    session.add(row)


def _snapshot(
    session: Session,
    config: SourceConfig,
    text: str,
    fetched_at: datetime,
    bodies: dict[int, bytes],
    *,
    key: str | None = None,
    title: str = "",
    headers: dict[str, str] = SYNTHETIC_HEADERS,
) -> Snapshot:
    body = raw_page(title or config.title, text)
    snapshot = Snapshot(
        source_id=config.id,
        doc_key=key or config.url,
        url=key or config.url,
        title=title or text.splitlines()[0],
        text=text,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        body_sha256=store_body(session, body),
        http_status=200,
        headers=dict(headers),
        fetched_at=fetched_at,
    )
    session.add(snapshot)
    session.flush()
    assert snapshot.id is not None
    bodies[snapshot.id] = body
    return snapshot


def _change(
    session: Session,
    config: SourceConfig,
    old: Snapshot | None,
    new: Snapshot,
    *,
    severity: str,
    reasons: list[str],
    terms: list[str],
    title: str | None = None,
) -> int:
    kind = "changed" if old else "new"
    change = Change(
        source_id=config.id,
        doc_key=new.doc_key,
        kind=kind,
        old_snapshot_id=old.id if old else None,
        new_snapshot_id=new.id,
        title=title if title is not None else new.title,
        summary=diff.summarize(old.text if old else None, new.text, kind),
        diff=diff.unified(
            old.text if old else "",
            new.text,
            f"{new.doc_key} {old.fetched_at.isoformat()}" if old else "/dev/null",
            f"{new.doc_key} {new.fetched_at.isoformat()}",
        ),
        severity=severity,
        severity_reasons=reasons,
        matched_terms=terms,
        detected_at=new.fetched_at,
    )
    session.add(change)
    session.flush()
    assert change.id is not None
    return change.id


def _fetch(session: Session, config: SourceConfig, when: datetime, outcome: str, **extra: object):  # type: ignore[no-untyped-def]
    session.add(
        Fetch(source_id=config.id, url=config.url, outcome=outcome, fetched_at=when, **extra)
    )


def build(engine: Engine) -> History:
    """Insert the whole SYNTHETIC history into `engine` (committed) and return the ids."""
    bodies: dict[int, bytes] = {}
    earlier = WEEK_START - timedelta(days=30)
    with Session(engine) as session:
        for config in (REMS, KETAMINE, RECALLS):
            _source(session, config, health="ok", last_checked_at=NOW, last_success_at=NOW)
        _source(
            session,
            RISK_ALERTS,
            health="failing",
            consecutive_failures=4,
            last_error="HTTP 503 Service Unavailable from www.fda.gov",
            last_checked_at=NOW,
            last_success_at=WEEK_START,
        )
        _source(
            session,
            HOSTILE,
            health="drift",
            consecutive_failures=3,
            last_error="selector 'main' matched nothing <script>alert('error')</script>",
            last_checked_at=NOW,
        )
        session.flush()

        rems_old = _snapshot(session, REMS, REMS_OLD, earlier, bodies)
        rems_new = _snapshot(
            session, REMS, REMS_NEW, datetime(2026, 11, 27, 14, 5, tzinfo=UTC), bodies
        )
        rems = _change(
            session,
            REMS,
            rems_old,
            rems_new,
            severity="T1",
            reasons=[
                "source tier T1 (Spravato REMS)",
                "a REMS requirement was added: 'must have'",
            ],
            terms=["esketamine", "spravato", "rems"],
        )
        ket_old = _snapshot(session, KETAMINE, KETAMINE_OLD, earlier, bodies)
        ket_new = _snapshot(
            session, KETAMINE, KETAMINE_NEW, datetime(2026, 11, 26, 8, 30, tzinfo=UTC), bodies
        )
        ketamine = _change(
            session,
            KETAMINE,
            ket_old,
            ket_new,
            severity="T2",
            reasons=["source tier T2 (compounded ketamine alert)"],
            terms=["ketamine"],
        )
        item = _snapshot(
            session,
            RECALLS,
            RECALL_TEXT,
            datetime(2026, 11, 25, 18, 0, tzinfo=UTC),
            bodies,
            key="https://www.fda.gov/safety/recalls-market-withdrawals-safety-alerts/synthetic-pharma-ketamine",
            headers=FEED_HEADERS,
        )
        recall = _change(
            session,
            RECALLS,
            None,
            item,
            severity="T3",
            reasons=["a new recall feed item mentions ketamine"],
            terms=["ketamine"],
        )
        hostile_old = _snapshot(session, HOSTILE, HOSTILE_OLD, earlier, bodies)
        hostile_new = _snapshot(
            session, HOSTILE, HOSTILE_NEW, datetime(2026, 11, 24, 12, 0, tzinfo=UTC), bodies
        )
        hostile = _change(
            session,
            HOSTILE,
            hostile_old,
            hostile_new,
            severity="T4",
            reasons=["<b>bold</b> reason <script>alert('reason')</script>"],
            terms=[],
            title=HOSTILE_TITLE,
        )
        for config in (REMS, KETAMINE, RECALLS):
            _fetch(session, config, NOW - timedelta(hours=6), "ok", http_status=200, documents=1)
        _fetch(
            session,
            RISK_ALERTS,
            NOW - timedelta(hours=6),
            "failed",
            http_status=503,
            error="HTTP 503 Service Unavailable from www.fda.gov",
        )
        _fetch(
            session,
            HOSTILE,
            NOW - timedelta(hours=6),
            "drift",
            http_status=200,
            error="<img src=x onerror=alert(4)>",
        )
        session.commit()
    return History(rems, ketamine, recall, hostile, bodies)
