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

from sqlmodel import Session, select

from db.models import Source
from monitor.config import Settings
from monitor.scheduler import next_run, utc
from monitor.sources import SourceConfig

#: Health states, worst last: `degraded` = failing, but fewer times in a row than the threshold.
STATES = ("new", "ok", "degraded", "failing", "drift")


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

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in values.items()
        }


def health_state(row: Source | None) -> str:
    """new (never checked) / ok / degraded / failing / drift."""
    if row is None or row.last_checked_at is None:
        return "new"
    if row.health in ("failing", "drift"):
        return row.health
    return "degraded" if row.consecutive_failures else "ok"


def status_rows(
    session: Session, sources: Mapping[str, SourceConfig], settings: Settings, now: datetime
) -> list[StatusRow]:
    """One row per source of sources.toml, in file order."""
    rows = {row.id: row for row in session.exec(select(Source)).all()}
    result = []
    for source in sources.values():
        row = rows.get(source.id)
        checked = utc(row.last_checked_at) if row else None
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
            )
        )
    return result
