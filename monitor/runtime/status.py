"""What `fdawatch status` shows: per source, how it is doing and when it is crawled next.

The health facts come from the history (`Source` rows kept by `history.record_fetch`); the next
check is computed by the rule the daemon follows (`timetable.next_check`: the source's fixed fire
times plus the deployment's offset, a fire less than half a period after the last check skipped),
so the table is right whether or not a daemon is running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from db.models import Fetch, HostBackoff, Source
from monitor.config import Settings
from monitor.runtime.freshness import FRESH, STALE, freshness, stale_after
from monitor.runtime.timetable import next_check, schedule_offset
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
    last_checked_at: datetime | None  # the last fetch that counted, failed or not
    last_success_at: datetime | None
    last_change_at: datetime | None
    next_run_at: datetime  # the daemon's next check; at or before `now`: due now
    last_error: str | None
    #: What the last refusal looked like (`http_status`, `final_url`, `server`), when blocked.
    evidence: dict[str, Any] | None = None
    #: When blocked: no request to the source's host before this time.
    backing_off_until: datetime | None = None
    #: fresh / stale / blocked / failing (`monitor.runtime.freshness`); `stale` is "not fresh".
    freshness: str = FRESH
    stale: bool = False
    #: When the source turns stale unless a check succeeds first; None: it never succeeded.
    stale_after: datetime | None = None

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
    backoff = {row.host: row.until for row in session.exec(select(HostBackoff)).all()}
    offset = schedule_offset(settings.scheduler_jitter, settings.database_url)
    result = []
    for source in sources.values():
        row = rows.get(source.id)
        checked = row.last_checked_at if row else None
        until = backoff.get(host_key(source.url)) if source.id in evidence else None
        state = health_state(row)
        success = row.last_success_at if row else None
        deadline = stale_after(source, success)
        verdict = freshness(state, deadline, now)
        result.append(
            StatusRow(
                source_id=source.id,
                kind=source.kind,
                schedule=source.cron or source.interval,
                state=state,
                failures_in_row=row.consecutive_failures if row else 0,
                failure_threshold=source.failure_threshold or settings.failure_threshold,
                last_checked_at=checked,
                last_success_at=success,
                last_change_at=row.last_change_at if row else None,
                next_run_at=next_check(source, checked, now, offset),
                last_error=row.last_error if row else None,
                evidence=evidence.get(source.id),
                backing_off_until=until if until and until > now else None,
                freshness=verdict,
                stale=verdict != FRESH,
                stale_after=deadline,
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


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "never"


def problem_line(row: StatusRow) -> str:
    """One line saying why a source that is not fresh cannot be attested (for `status --check`).

    `fda_x: stale: last success 2026-12-04 06:00 UTC, stale since 2026-12-05 06:00 UTC (6h)`.
    """
    success = f"last success {_when(row.last_success_at)}"
    if row.freshness == STALE:
        if row.stale_after is None:
            detail = "never checked successfully" + (
                f" (last check {_when(row.last_checked_at)})" if row.last_checked_at else ""
            )
        else:
            detail = f"{success}, stale since {_when(row.stale_after)} (every {row.schedule})"
        return f"{row.source_id}: stale: {detail}"
    state = row.state if row.state != row.freshness else ""
    kind = f"{row.freshness} ({state})" if state else row.freshness
    count = row.failures_in_row
    fails = f"{count} failure{'s' if count != 1 else ''} in a row"
    error = f"; {' '.join(row.last_error.split())[:200]}" if row.last_error else ""
    return f"{row.source_id}: {kind}: {fails}, {success}{error}"
