"""Sharing the crawl among several workers on one database: each due source goes to one worker.

Every worker's scheduler fires for the same sources at about the same time (the same fire times,
plus an offset derived from the database URL as each worker spells it). Before crawling, a worker
claims the sources with `claim_sources`: a `source:<id>` lease (`db/leases.py`) that only one
worker can hold, and that runs out after `lease` when its worker dies, so the source is not
orphaned. A source someone checked only moments ago is left out too, so a worker whose timer
fires just after another worker finished does not crawl it again. After the crawl the worker
gives its claims back with `release_sources`.

Leases compare the workers' own clocks: keep the machines' clocks in sync (NTP), and `lease`
longer than the crawl timeout plus the worst clock skew.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db import leases
from db.models import Source
from monitor.sources import SourceConfig

LEASE_PREFIX = "source:"
#: Longer than the scheduler's 30-minute crawl timeout, so a live worker never loses a claim.
DEFAULT_LEASE = timedelta(minutes=35)
#: A cron source checked this recently is not crawled again (covers the workers' offsets).
CRON_RECHECK = timedelta(minutes=5)


def lease_name(source_id: str) -> str:
    """The lease that says which worker is crawling `source_id`."""
    return LEASE_PREFIX + source_id


def recheck_after(source: SourceConfig) -> timedelta:
    """How long after a check the source is not worth crawling again: half its interval."""
    if source.cron:
        return CRON_RECHECK
    return timedelta(seconds=source.interval_seconds / 2)


def _last_checks(engine: Engine, ids: Sequence[str]) -> dict[str, datetime | None]:
    with Session(engine) as session:
        rows = session.exec(
            select(Source.id, Source.last_checked_at).where(col(Source.id).in_(ids))
        ).all()
    return dict(rows)  # UTCDateTime columns come back aware, in UTC, on every backend


def claim_sources(
    engine: Engine,
    worker: str,
    sources: Sequence[SourceConfig],
    now: datetime,
    lease: timedelta = DEFAULT_LEASE,
    *,
    limit: int | None = None,
) -> list[SourceConfig]:
    """The `sources` this `worker` may crawl now, each now claimed by it until now + lease.

    Left out: a source another live worker has claimed, and a source checked less than
    `recheck_after(source)` ago (another worker just crawled it). Give the claims back with
    `release_sources` after the crawl, also when it failed. With `limit`, at most that many are
    claimed, so the other workers get the rest of a large batch.
    """
    before = _last_checks(engine, [s.id for s in sources])
    taken: list[SourceConfig] = []
    for source in sources:
        if limit is not None and len(taken) >= limit:
            break
        if not _fresh(before.get(source.id), source, now) and leases.acquire(
            engine, lease_name(source.id), worker, lease, now
        ):
            taken.append(source)
    if not taken:
        return []
    # Look again under the claims: a previous holder may have finished in between.
    after = _last_checks(engine, [s.id for s in taken])
    fresh = [s for s in taken if _fresh(after.get(s.id), s, now)]
    release_sources(engine, worker, fresh)
    return [s for s in taken if s not in fresh]


def _fresh(last_checked: datetime | None, source: SourceConfig, now: datetime) -> bool:
    return last_checked is not None and now - last_checked < recheck_after(source)


def release_sources(engine: Engine, worker: str, sources: Sequence[SourceConfig]) -> None:
    """Give back `worker`'s claims on `sources` (a claim held by another worker is kept)."""
    for source in sources:
        leases.release(engine, lease_name(source.id), worker)


def claimed_by(engine: Engine, source_id: str, now: datetime) -> str | None:
    """The worker crawling `source_id` right now, if any (for `fdawatch status`)."""
    return leases.holder_of(engine, lease_name(source_id), now)
