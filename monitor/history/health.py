"""Source health: failures in a row, one notice when a source starts failing, one when it heals.

A failed fetch, a layout drift or a CDN refusal is a *source-health* problem, never a content
change. `HealthKeeper` counts them per source, files one "source failing / layout drift / source
blocked" notice at the threshold and one "recovered" notice after, and keeps the per-host back-off
after CDN refusals (table `hostbackoff`). Nothing here commits: the caller owns the transaction.

A notice that no recipient follows is not filed and not marked done: the source keeps owing it
(`untold_problems`), a warning says so, and the next failed check files it once someone follows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from db.engine import in_batches
from db.models import HostBackoff, Source
from monitor.config import Recipient
from monitor.delivery import outbox
from monitor.items import BLOCKED, DRIFT, FAILED, HELD, SourceFetch
from monitor.sources import SourceConfig, host_key

#: Outcomes that count as a failure in a row (a source-health problem, never a change).
UNHEALTHY = (FAILED, DRIFT, BLOCKED)
#: How a health notice is filed and worded, by the outcome that crossed the threshold.
NOTICE_KIND = {DRIFT: "layout_drift", BLOCKED: "source_blocked", FAILED: "source_failing"}
HEALTH_STATE = {DRIFT: "drift", BLOCKED: "blocked", FAILED: "failing"}
#: (first wait, longest wait) in seconds after a CDN refused a host; the wait doubles per refusal.
DEFAULT_BACKOFF = (1800.0, 86400.0)
#: Refusals of one host closer together than this are one refusal (one crawl, several sources).
SAME_REFUSAL = timedelta(minutes=2)

log = logging.getLogger("fdawatch.health")


def notice_text(source: SourceConfig, row: Source, outcome: str) -> str:
    """The words of a "source failing / blocked / drifted" notice."""
    if outcome == BLOCKED:
        return (
            f"{source.title} ({source.id}): the site refused fdawatch's requests "
            f"{row.consecutive_failures} times in a row; last: {row.last_error}. No content change "
            "is inferred from a block. What to do: see the README, 'When FDA blocks fdawatch'."
        )
    return (
        f"{source.title} ({source.id}) failed {row.consecutive_failures} times in a row; "
        f"last error: {row.last_error}. No content change is inferred from a failure."
    )


@dataclass(frozen=True)
class HealthKeeper:
    """Keeps sources' health rows and the hosts' back-off, with one deployment's settings."""

    recipients: Sequence[Recipient] = ()
    failure_threshold: int = 3
    backoff: tuple[float, float] = DEFAULT_BACKOFF

    def update(
        self, session: Session, row: Source, fetch: SourceFetch, now: datetime, source: SourceConfig
    ) -> None:
        """Count failures in a row; notify once when a source starts failing and once it heals.

        A block shows as `blocked` at once (it is evidence, not a guess); failures and drift show
        once they reach the threshold (before that the source is "degraded").
        """
        if fetch.outcome == HELD:
            return  # not a check yet: the second look decides
        row.last_checked_at = now
        if fetch.outcome in UNHEALTHY:
            self._failed(session, row, fetch, now, source)
            return
        if row.failure_alerted_at is not None:
            notice = (
                f"{source.title} ({source.id}) works again after "
                f"{row.consecutive_failures} failures."
            )
            outbox.enqueue_notice(
                session, source.id, "source_recovered", notice, self.recipients, now,
                source_tags=source.tags,
            )  # fmt: skip
        row.consecutive_failures = 0
        row.failure_alerted_at = None
        row.last_error = None
        row.health = "ok"
        row.last_success_at = now

    def _failed(
        self, session: Session, row: Source, fetch: SourceFetch, now: datetime, source: SourceConfig
    ) -> None:
        row.consecutive_failures += 1
        row.last_error = fetch.error or (f"HTTP {fetch.http_status}" if fetch.http_status else None)
        if fetch.outcome == BLOCKED:
            row.health = "blocked"
        elif row.health == "blocked":
            row.health = "failing" if row.failure_alerted_at else "ok"
        limit = source.failure_threshold or self.failure_threshold
        if row.consecutive_failures < limit or row.failure_alerted_at is not None:
            return
        row.health = HEALTH_STATE[fetch.outcome]
        queued = outbox.enqueue_notice(
            session, source.id, NOTICE_KIND[fetch.outcome],
            notice_text(source, row, fetch.outcome), self.recipients, now,
            source_tags=source.tags,
        )  # fmt: skip
        if queued:
            row.failure_alerted_at = now
        else:  # nobody to tell: the notice stays owed, filed at the next failure once someone is
            log.warning("%s", untold_text(source.id, row))

    def note_refusal(self, session: Session, fetch: SourceFetch, now: datetime) -> None:
        """A request the host's CDN refused: back off from that host, doubling the wait each time.

        A BLOCKED fetch that was never requested (the host was already backing off) changes
        nothing: only real refusals lengthen the wait.
        """
        if fetch.outcome != BLOCKED or fetch.http_status is None:
            return
        host = host_key(fetch.url)
        row = session.get(HostBackoff, host)
        if row is None:
            row = HostBackoff(
                host=host, refusals=0, first_refused_at=now, last_refused_at=now, until=now
            )
            session.add(row)
        elif now - row.last_refused_at < SAME_REFUSAL:
            row.evidence = fetch.error or row.evidence
            return  # another source of the same crawl: the same refusal
        row.refusals += 1
        row.last_refused_at = now
        first, longest = self.backoff
        wait = min(longest, first * 2 ** min(row.refusals - 1, 20))
        row.until = now + timedelta(seconds=wait)
        row.evidence = fetch.error or ""

    @staticmethod
    def forget_refusals(session: Session, hosts: set[str]) -> None:
        """Hosts that answered normally again: no more backing off from them."""
        for chunk in in_batches(sorted(hosts)):
            session.execute(delete(HostBackoff).where(col(HostBackoff.host).in_(chunk)))

    @staticmethod
    def any_refusals(session: Session) -> bool:
        return session.exec(select(HostBackoff.host).limit(1)).first() is not None


def backoff_until(session: Session, now: datetime) -> dict[str, datetime]:
    """Hosts not to be asked before a time (for the crawl's FDAWATCH_BACKOFF setting)."""
    rows = session.exec(select(HostBackoff).where(col(HostBackoff.until) > now)).all()
    return {row.host: row.until for row in rows}


def untold_text(source_id: str, row: Source) -> str:
    """The warning for a source whose health notice has nobody to go to."""
    return (
        f"nobody was told that {source_id} is {row.health} "
        f"({row.consecutive_failures} failures in a row): no [[recipient]] in fdawatch.toml "
        "follows it; the notice goes out at its next failed check once one does"
    )


def untold_problems(
    session: Session, sources: Mapping[str, SourceConfig], failure_threshold: int
) -> list[str]:
    """Warnings for sources past their failure threshold whose notice nobody received."""
    rows = session.exec(
        select(Source)
        .where(col(Source.failure_alerted_at).is_(None), col(Source.consecutive_failures) > 0)
        .order_by(col(Source.id))
    ).all()
    warnings = []
    for row in rows:
        source = sources.get(row.id)
        limit = (source.failure_threshold if source else None) or failure_threshold
        if row.consecutive_failures >= limit:
            warnings.append(untold_text(row.id, row))
    return warnings
