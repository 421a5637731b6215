"""When each source is due: fixed fire times, one stable offset, and "checked recently enough".

An interval source fires on a clock grid: `interval = "6h"` at 00:00, 06:00, 12:00 and 18:00 UTC,
`1m` at every minute, each moved later by the deployment's *offset*. A cron source fires at its
crontab times plus the same offset. The fire times never drift (APScheduler's jitter drew a new
random delay after every run, so `1m` averaged 90 s), so the mean interval is the configured one.

The offset is one number per deployment, in [0, `[scheduler] jitter`), derived from the database
URL: stable across restarts and shared by every worker of one database, different between
deployments so that they do not all reach FDA at the same second. One offset for every source
(rather than one per source, or per schedule) keeps the grids aligned: sources due at the same
moment are crawled by one process (one start, one robots.txt per host, Scrapy's per-host delay
over the whole batch), and a 6h source falls due together with the 1h and 1m ones.

`next_check` is the one rule the daemon and `fdawatch status` share: a source is next checked at
its first fire time at least half a period after its last check. A fire that comes sooner than that
(the source was just crawled by an earlier batch, `run --once` or another worker) is skipped.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from monitor.cron import parse_cron
from monitor.errors import SourcesError
from monitor.sources import SourceConfig

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def schedule_offset(jitter: float, database_url: str) -> timedelta:
    """This deployment's offset: a stable fraction of `jitter` seconds (0 when jitter is 0)."""
    if jitter <= 0:
        return timedelta(0)
    try:  # hash the URL without its password: the offset must not depend on a secret's rotation
        seed = make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        seed = database_url
    digest = hashlib.sha256(f"fdawatch schedule offset:{seed}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(milliseconds=int(jitter * 1000 * fraction))


class GridTrigger(BaseTrigger):
    """Fires at EPOCH + offset + k × period: the same instants in every run and after restarts."""

    __slots__ = ("anchor", "period")

    def __init__(self, period: timedelta, offset: timedelta = timedelta(0)) -> None:
        if period <= timedelta(0):
            raise ValueError(f"a period must be positive, not {period}")
        self.period = period
        self.anchor = EPOCH + offset % period

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is None:  # the first grid point at or after now
            steps = -((self.anchor - now) // self.period)
        else:  # the first grid point strictly after the previous fire
            steps = (previous_fire_time - self.anchor) // self.period + 1
        return self.anchor + steps * self.period

    def __str__(self) -> str:
        return f"every {self.period} from {self.anchor:%H:%M:%S.%f} UTC"


class ShiftedTrigger(BaseTrigger):
    """Another trigger's fire times, each moved later by `offset` (a crontab plus the offset)."""

    __slots__ = ("offset", "trigger")

    def __init__(self, trigger: BaseTrigger, offset: timedelta) -> None:
        self.trigger = trigger
        self.offset = offset

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        previous = previous_fire_time - self.offset if previous_fire_time else None
        fire = self.trigger.get_next_fire_time(previous, now - self.offset)
        return fire + self.offset if fire is not None else None

    def __str__(self) -> str:
        return f"{self.trigger} + {self.offset.total_seconds():g} s"


def cron_trigger(source: SourceConfig) -> CronTrigger:
    """The source's crontab (minute hour day month weekday, UTC) as an APScheduler trigger."""
    assert source.cron is not None
    try:
        return parse_cron(source.cron)
    except ValueError as error:
        raise SourcesError(
            f"source {source.id!r}: field 'cron' = {source.cron!r} is invalid ({error}); "
            "write minute hour day month weekday in UTC, e.g. '0 6 * * 1-5'"
        ) from None


def source_trigger(source: SourceConfig, offset: timedelta = timedelta(0)) -> BaseTrigger:
    """When the daemon's job for `source` fires: its crontab or its interval grid, plus offset."""
    if source.cron:
        return ShiftedTrigger(cron_trigger(source), offset)
    return GridTrigger(timedelta(seconds=source.interval_seconds), offset)


def next_check(
    source: SourceConfig,
    last_checked_at: datetime | None,
    now: datetime,
    offset: timedelta = timedelta(0),
) -> datetime:
    """When the daemon checks `source` next; a time at or before `now` means "due now".

    Never checked: `now`. Otherwise the first fire time after the last check, unless that comes
    less than half a period (the gap to the fire after it) after the check: then the one after.
    A fire time that passed without a check is returned as it is (overdue).
    """
    if last_checked_at is None:
        return now
    trigger = source_trigger(source, offset)
    first = trigger.get_next_fire_time(None, last_checked_at + ONE_MICROSECOND)
    assert first is not None  # a grid or a crontab always fires again
    second = trigger.get_next_fire_time(first, first)
    assert second is not None
    return first if first - last_checked_at >= (second - first) / 2 else second
