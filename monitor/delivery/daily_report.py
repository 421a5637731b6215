"""The daily watch report: what a compliance officer files to show the watch never lapsed.

Once a day, at `[report] daily_at` (UTC) or at the first minute `fdawatch run` is up after it,
`queue_daily_report` takes a snapshot of the watch and queues one outbox row (kind "report") per
address of `[report] to`. The snapshot is stored with the row (as JSON in `notice`), so a retry
after an SMTP failure or a crash sends exactly what was queued, and the row's `dedup_key`
(`report:2026-12-06:ops@clinic.example`) is unique in the database: a restart the same day, or a
second process, cannot queue a second report. The outbox delivers it with the alerts' guarantees.

The snapshot holds every source's freshness (fresh / stale / blocked / failing, with its last
success), the changes still open (a T1-T3 change whose alert was sent and that nobody has
reviewed with `fdawatch ack` or the review link) and the alerts sent in the last day.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.models import Alert, Change, Review
from monitor.config import Settings
from monitor.delivery import outbox
from monitor.delivery.render import header_text, source_title
from monitor.runtime.status import status_rows
from monitor.sources import SourceConfig

log = logging.getLogger("fdawatch.report")

REPORT_KIND = outbox.REPORT_KIND
OPEN_TIERS = ("T1", "T2", "T3")
ALERTS_WINDOW = timedelta(days=1)
#: Lines of "alerts sent" a report lists; the rest are counted.
MAX_ALERTS_LISTED = 200


def due_day(settings: Settings, now: datetime) -> date | None:
    """Today (UTC) once today's report time has come; None before it or without `[report]`."""
    report = settings.report
    if report is None:
        return None
    now = now.astimezone(UTC)
    due = now.replace(hour=report.hour, minute=report.minute, second=0, microsecond=0)
    return now.date() if now >= due else None


def dedup_key(day: date, email: str) -> str:
    """`report:2026-12-06:ops@clinic.example`: one report per address and day."""
    return f"report:{day.isoformat()}:{email.lower()}"


def queue_daily_report(
    engine: Engine, settings: Settings, sources: Mapping[str, SourceConfig], now: datetime
) -> list[str]:
    """Queue today's report for each `[report] to` address not yet queued; return the keys.

    The scheduler calls it every minute; before `daily_at`, and once queued, it does nothing.
    """
    now = now.astimezone(UTC)
    day = due_day(settings, now)
    if day is None or settings.report is None:
        return []
    wanted = [(a, dedup_key(day, a)) for a in settings.report.to]
    wanted = [(address, key) for address, key in wanted if not outbox.is_queued(engine, key)]
    if not wanted:
        return []
    queued: list[str] = []
    with Session(engine) as session:
        snapshot = report_snapshot(session, settings, sources, now)
        severity = "T2" if snapshot["counts"]["fresh"] < len(snapshot["sources"]) else "T4"
        notice = json.dumps(snapshot, sort_keys=True)
        for address, key in wanted:
            if outbox.queue_once(session, REPORT_KIND, address, notice, severity, key, now):
                queued.append(key)
    return queued


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def report_snapshot(
    session: Session, settings: Settings, sources: Mapping[str, SourceConfig], now: datetime
) -> dict[str, Any]:
    """The report's content as JSON-ready values (stored with the outbox row)."""
    rows = status_rows(session, sources, settings, now)
    listed = [
        {
            "id": row.source_id,
            "title": header_text(sources[row.source_id].title or row.source_id),
            "freshness": row.freshness,
            "state": row.state,
            "last_success_at": _iso(row.last_success_at),
            "stale_after": _iso(row.stale_after),
            "last_error": header_text(row.last_error, 300) if row.last_error else None,
        }
        for row in rows
    ]
    counts = {verdict: 0 for verdict in ("fresh", "stale", "blocked", "failing")}
    for source in listed:
        counts[source["freshness"]] += 1
    alerts, more = _alerts_sent(session, now)
    return {
        "day": now.date().isoformat(),
        "at": now.isoformat(),
        "sources": listed,
        "counts": counts,
        "open_changes": _open_changes(session, sources, now),
        "open_rule": f"{'-'.join((OPEN_TIERS[0], OPEN_TIERS[-1]))} changes alerted and not yet "
        "reviewed",
        "alerts_sent": alerts,
        "alerts_not_listed": more,
        "failed_deliveries": _failed_count(session, now),
    }


def _open_changes(
    session: Session, sources: Mapping[str, SourceConfig], now: datetime
) -> list[dict[str, Any]]:
    """T1-T3 changes whose alert went out and that nobody reviewed, with who was told when."""
    told = session.exec(
        select(Alert.change_id, Alert.recipient, Alert.sent_at)
        .join(Change, col(Change.id) == col(Alert.change_id))
        .where(col(Alert.status) == "sent", col(Change.severity).in_(OPEN_TIERS))
        .where(col(Change.id).not_in(select(Review.change_id)))
        .order_by(col(Alert.sent_at), col(Alert.id))
    ).all()
    recipients: dict[int, list[list[str | None]]] = {}
    for change_id, recipient, sent_at in told:
        assert change_id is not None
        recipients.setdefault(change_id, []).append([recipient, _iso(sent_at)])
    if not recipients:
        return []
    changes = session.exec(select(Change).where(col(Change.id).in_(list(recipients)))).all()
    ordered = sorted(changes, key=lambda c: (c.severity, c.detected_at, c.id))
    return [
        {
            "id": change.id,
            "severity": change.severity,
            "kind": change.kind,
            "source": source_title(session, change.source_id, sources),
            "title": header_text(change.title or change.summary or change.doc_key, 300),
            "detected_at": _iso(change.detected_at),
            "told": recipients[change.id or 0],
        }
        for change in ordered
    ]


def _alerts_sent(session: Session, now: datetime) -> tuple[list[dict[str, Any]], int]:
    """Outbox rows delivered in the last day (reports aside), oldest first, and how many more."""
    rows = session.exec(
        select(Alert)
        .where(col(Alert.status) == "sent", col(Alert.sent_at) >= now - ALERTS_WINDOW)
        .where(col(Alert.kind) != REPORT_KIND)
        .order_by(col(Alert.sent_at), col(Alert.id))
    ).all()
    listed = [
        {
            "sent_at": _iso(row.sent_at),
            "recipient": row.recipient,
            "kind": row.kind,
            "change_id": row.change_id,
            "source_id": row.source_id,
            "severity": row.severity,
            "message_id": row.message_id,
        }
        for row in rows[:MAX_ALERTS_LISTED]
    ]
    return listed, max(0, len(rows) - MAX_ALERTS_LISTED)


def _failed_count(session: Session, now: datetime) -> int:
    """Outbox rows queued in the last day that failed for good (`fdawatch alerts list --failed`)."""
    return len(
        session.exec(
            select(Alert.id).where(
                col(Alert.status) == "failed", col(Alert.created_at) >= now - ALERTS_WINDOW
            )
        ).all()
    )


def report_job(
    engine: Engine, settings: Settings, sources: Mapping[str, SourceConfig], now: datetime
) -> list[str]:
    """The scheduler's minute job: queue today's report when due; a failure is logged, and the
    next minute tries again (nothing was queued: the snapshot and rows commit together)."""
    try:
        return queue_daily_report(engine, settings, sources, now)
    except Exception:
        log.exception("queueing the daily watch report failed; trying again in a minute")
        return []
