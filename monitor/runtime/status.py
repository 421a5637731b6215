"""What `fdawatch status` shows: per source, how it is doing and when it is crawled next.

The health facts come from the history (`Source` rows kept by `history.record_fetch`); the next
run is computed the way the daemon schedules it (`scheduler.next_run`), so the table is right
whether or not a daemon is running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from db.models import Fetch, HostBackoff, Source
from monitor.config import Settings
from monitor.runtime.scheduler import next_run, utc
from monitor.sources import SourceConfig, host_key


@dataclass(frozen=True)
class StatusRow:
    """One source's line in `fdawatch status`."""

    source_id: str
    kind: str
    schedule: str  # "6h" or the cron expression
    state: str
    failures_in_row: int
    failure_threshold: int
    last_checked_at: datetime | None
    last_success_at: datetime | None
    last_change_at: datetime | None
    next_run_at: datetime
    last_error: str | None
    #: What the last refusal looked like (`http_status`, `final_url`, `server`), when blocked.
    evidence: dict[str, Any] | None = None
    #: When blocked: no request to the source's host before this time.
    backing_off_until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in values.items()
        }


def health_state(row: Source | None) -> str:
    """new (never checked) / ok / degraded / failing / drift / blocked."""
    if row is None or row.last_checked_at is None:
        return "new"
    if row.health in ("failing", "drift", "blocked"):
        return row.health
    return "degraded" if row.consecutive_failures else "ok"


def status_rows(
    session: Session, sources: Mapping[str, SourceConfig], settings: Settings, now: datetime
) -> list[StatusRow]:
    """One row per source of sources.toml, in file order."""
    rows = {row.id: row for row in session.exec(select(Source)).all()}
    blocked = [sid for sid, row in rows.items() if row.health == "blocked" and sid in sources]
    evidence = _last_refusals(session, blocked)
    backoff = {row.host: utc(row.until) for row in session.exec(select(HostBackoff)).all()}
    result = []
    for source in sources.values():
        row = rows.get(source.id)
        checked = utc(row.last_checked_at) if row else None
        until = backoff.get(host_key(source.url)) if source.id in evidence else None
        result.append(
            StatusRow(
                source_id=source.id,
                kind=source.kind,
                schedule=source.cron or source.interval,
                state=health_state(row),
                failures_in_row=row.consecutive_failures if row else 0,
                failure_threshold=source.failure_threshold or settings.failure_threshold,
                last_checked_at=checked,
                last_success_at=utc(row.last_success_at) if row else None,
                last_change_at=utc(row.last_change_at) if row else None,
                next_run_at=next_run(source, checked, now),
                last_error=row.last_error if row else None,
                evidence=evidence.get(source.id),
                backing_off_until=until if until and until > now else None,
            )
        )
    return result


def _last_refusals(session: Session, source_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The latest blocked fetch of each source that had one: status, final URL, server."""
    found: dict[str, dict[str, Any]] = {}
    if not source_ids:
        return found
    query = (
        select(Fetch)
        .where(col(Fetch.source_id).in_(source_ids), Fetch.outcome == "blocked")
        .order_by(col(Fetch.id).desc())
    )
    for fetch in session.exec(query):
        if fetch.source_id not in found and fetch.http_status is not None:
            found[fetch.source_id] = {
                "http_status": fetch.http_status,
                "final_url": fetch.final_url or fetch.url,
                "server": fetch.server,
                "error": fetch.error,
            }
        if len(found) == len(source_ids):
            break
    return found
