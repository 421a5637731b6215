"""Honest intervals: fixed fire times, one stable offset, and `status` telling the daemon's truth.

Deterministic: fire times are computed from the triggers themselves (no clock, no sleeping).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import Session

from db.models import Source
from monitor.config import Settings
from monitor.runtime.scheduler import Watcher, build_scheduler
from monitor.runtime.status import status_rows
from monitor.runtime.timetable import next_check, schedule_offset, source_trigger
from monitor.sources import SourceConfig
from tests.support.clock import T0
from tests.support.sources import make_source

URL = "postgresql+psycopg://fdawatch:secret@db.clinic.example:5432/fdawatch"
SETTINGS = Settings(database_url=URL, scheduler_jitter=60, scheduler_misfire_grace=30)
OFFSET = schedule_offset(60, URL)


def fire_times(source: SourceConfig, offset: timedelta, count: int) -> list[datetime]:
    """The first `count` fire times of the source's trigger from T0, as APScheduler chains them."""
    trigger = source_trigger(source, offset)
    times = [trigger.get_next_fire_time(None, T0)]
    while len(times) < count:
        previous = times[-1]
        assert previous is not None
        times.append(trigger.get_next_fire_time(previous, previous))
    assert all(time is not None for time in times)
    return times  # type: ignore[return-value]


def test_the_offset_is_stable_below_the_jitter_and_ignores_the_password() -> None:
    assert timedelta(0) < OFFSET < timedelta(seconds=60)
    assert schedule_offset(60, URL) == OFFSET  # the same after a restart
    assert schedule_offset(60, URL.replace("secret", "rotated")) == OFFSET
    other = schedule_offset(60, "sqlite:////srv/other-clinic/fdawatch.db")
    assert other != OFFSET  # another deployment reaches FDA at another second
    assert schedule_offset(0, URL) == timedelta(0)  # jitter 0: the plain clock grid


@pytest.mark.parametrize("interval", ["1m", "15m", "1h", "6h", "1d"])
def test_the_mean_interval_is_the_configured_one(interval: str) -> None:
    source = make_source(interval=interval)
    times = fire_times(source, OFFSET, 1_000)
    period = timedelta(seconds=source.interval_seconds)
    gaps = {later - earlier for earlier, later in pairwise(times)}
    assert gaps == {period}  # so the mean is the period, not period + jitter / 2
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert {(time - epoch) % period for time in times} == {OFFSET % period}


def test_sources_with_the_same_or_a_dividing_interval_fall_due_together() -> None:
    minutes = set(fire_times(make_source(interval="1m"), OFFSET, 24 * 60))
    hours = set(fire_times(make_source(interval="1h"), OFFSET, 24))
    six_hours = set(fire_times(make_source(interval="6h"), OFFSET, 4))
    assert six_hours <= hours <= minutes  # one batch, one process, at each shared time
    weekdays = fire_times(make_source(cron="0 6 * * 1-5"), OFFSET, 5)
    assert weekdays[0] == datetime(2026, 11, 3, 6, 0, tzinfo=UTC) + OFFSET  # T0 is Mon 09:00
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert {(time - epoch) % timedelta(hours=1) for time in weekdays} == {OFFSET}


def test_a_cron_source_fires_at_its_crontab_times_plus_the_offset() -> None:
    times = fire_times(make_source(cron="*/15 * * * *"), OFFSET, 5)
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC) + OFFSET
    assert times == [start + timedelta(minutes=15 * k) for k in range(5)]


# (interval or cron, last check, now, next check): offset 0, T0 = Monday 09:00 UTC
NEXT = [
    ("1h", None, T0, T0),  # never checked: due now
    ("1h", T0 + timedelta(seconds=4), T0 + timedelta(minutes=5), T0 + timedelta(hours=1)),
    ("1h", T0, T0, T0 + timedelta(hours=1)),  # checked exactly at its fire time
    ("1h", T0 - timedelta(minutes=20), T0, T0 + timedelta(hours=1)),  # 09:00 came too soon
    ("1h", T0 - timedelta(minutes=40), T0 - timedelta(minutes=1), T0),
    ("1h", T0 - timedelta(minutes=40), T0 + timedelta(minutes=5), T0),  # overdue: due now
    ("6h", T0 - timedelta(hours=1), T0, T0 + timedelta(hours=3)),
    ("0 6 * * 1-5", T0, T0, datetime(2026, 11, 3, 6, 0, tzinfo=UTC)),
    # Friday 06:00:05 -> Monday 06:00, over the weekend
    (
        "0 6 * * 1-5",
        datetime(2026, 11, 6, 6, 0, 5, tzinfo=UTC),
        datetime(2026, 11, 7, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 9, 6, 0, tzinfo=UTC),
    ),
    # checked by hand at 05:50, ten minutes before Tuesday's 06:00: that one is skipped
    (
        "0 6 * * 1-5",
        datetime(2026, 11, 3, 5, 50, tzinfo=UTC),
        datetime(2026, 11, 3, 5, 55, tzinfo=UTC),
        datetime(2026, 11, 4, 6, 0, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(("schedule", "last", "now", "expected"), NEXT)
def test_next_check_is_the_first_fire_at_least_half_a_period_after_the_last_check(
    schedule: str, last: datetime | None, now: datetime, expected: datetime
) -> None:
    cron = " " in schedule
    source = make_source(cron=schedule) if cron else make_source(interval=schedule)
    assert next_check(source, last, now) == expected


@pytest.mark.parametrize("interval", ["1m", "1h", "6h"])
def test_after_a_check_just_after_a_fire_the_next_check_is_the_triggers_next_fire(
    interval: str,
) -> None:
    source = make_source(interval=interval)
    trigger = source_trigger(source, OFFSET)
    fire = trigger.get_next_fire_time(None, T0)
    assert fire is not None
    checked = fire + timedelta(seconds=3)  # the batch window and the crawl's start
    assert next_check(source, checked, checked, OFFSET) == trigger.get_next_fire_time(fire, fire)


def test_status_shows_the_next_check_the_daemon_scheduled(engine: Engine) -> None:
    now = T0 + OFFSET + timedelta(minutes=7, seconds=20)
    watched = {
        s.id: s
        for s in (
            make_source(id="minutely", interval="1m"),
            make_source(id="hourly", interval="1h"),
            make_source(id="six_hourly", interval="6h"),
            make_source(id="overdue", interval="1h"),
            make_source(id="weekdays", cron="0 6 * * 1-5"),
            make_source(id="never", interval="6h"),
        )
    }
    last = {
        "minutely": T0 + OFFSET + timedelta(minutes=7, seconds=2),  # just after its fire
        "hourly": T0 + OFFSET + timedelta(seconds=2),
        "six_hourly": T0 - timedelta(hours=1),
        "overdue": T0 - timedelta(minutes=50),  # 09:00 + offset passed without a check
        "weekdays": datetime(2026, 11, 2, 6, 0, 4, tzinfo=UTC) + OFFSET,
    }
    with Session(engine) as session:
        for source_id, checked in last.items():
            session.add(Source(id=source_id, kind="page", url="https://x", last_checked_at=checked))
        session.commit()
    watcher = Watcher(engine, SETTINGS, watched, crawl=lambda batch: None, clock=lambda: now)
    scheduler = build_scheduler(watcher, BackgroundScheduler(timezone=UTC), now=now)
    scheduler.start(paused=True)
    try:
        scheduled = {job.id: job.next_run_time for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    with Session(engine) as session:
        rows = status_rows(session, watched, SETTINGS, now)
    shown = {row.source_id: row.next_run_at for row in rows}
    for source_id, next_run_at in shown.items():
        assert scheduled[f"crawl:{source_id}"] == max(now, next_run_at), source_id
    assert shown["minutely"] == datetime(2026, 11, 2, 9, 8, tzinfo=UTC) + OFFSET
    assert shown["hourly"] == datetime(2026, 11, 2, 10, 0, tzinfo=UTC) + OFFSET
    assert shown["six_hourly"] == datetime(2026, 11, 2, 12, 0, tzinfo=UTC) + OFFSET
    assert shown["overdue"] == T0 + OFFSET < now  # shown as "due now"; the daemon runs it now
    assert shown["weekdays"] == datetime(2026, 11, 3, 6, 0, tzinfo=UTC) + OFFSET
    assert shown["never"] == now
