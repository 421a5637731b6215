"""The scheduler's jobs with an injected crawl function: timing, overlap, the lock.

No crawl processes here: `Watcher(crawl=…)` records what would have been crawled, so intervals of
a second (set in memory: sources.toml refuses intervals under 1m) can be watched on a real
APScheduler in a few seconds. The tests wait for a count of crawls, never for a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import Session

from db import leases
from db.models import Source
from monitor.config import Settings
from monitor.errors import LeaseHeld, SourcesError
from monitor.runtime import scheduler as scheduler_module
from monitor.runtime.scheduler import (
    LEASE_NAME,
    SchedulerLease,
    Watcher,
    build_scheduler,
    run_once,
    serve,
)
from monitor.runtime.timetable import cron_trigger
from monitor.sources import SourceConfig
from tests.conftest import T0, make_source

SETTINGS = Settings(database_url="sqlite://", scheduler_jitter=0, scheduler_misfire_grace=30)


class Recorder:
    """A crawl function that takes `seconds` and notes overlaps of one source with itself."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.batches: list[tuple[str, ...]] = []
        self.running: set[str] = set()
        self.overlaps: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, batch: Sequence[SourceConfig]) -> None:
        ids = tuple(source.id for source in batch)
        with self.lock:
            self.overlaps += [i for i in ids if i in self.running]
            self.running.update(ids)
            self.batches.append(ids)
        time.sleep(self.seconds)
        with self.lock:
            self.running.difference_update(ids)

    def count(self, source_id: str) -> int:
        return sum(source_id in batch for batch in self.batches)


def sources(*items: SourceConfig) -> dict[str, SourceConfig]:
    return {source.id: source for source in items}


DEADLINE = 60.0  # seconds a test waits for something that must happen (never a speed check)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def run_until(condition: Callable[[], bool], watcher: Watcher) -> None:
    """Run the watcher's jobs and crawl runner on a real (background) scheduler until
    `condition` holds, then stop: the test counts what happened, never how fast."""
    scheduler = build_scheduler(watcher, BackgroundScheduler(timezone=UTC))
    watcher.start_runner()
    scheduler.start()
    try:
        wait_for(condition, "the crawls")
    finally:
        watcher.join_runner()
        scheduler.shutdown(wait=True)


def test_each_source_is_crawled_on_its_own_interval(shared_engine: Engine) -> None:
    crawl = Recorder()
    fast, slow = make_source(id="fast", interval="1s"), make_source(id="slow", interval="1d")
    watcher = Watcher(shared_engine, SETTINGS, sources(fast, slow), crawl=crawl, batch_window=0)
    run_until(lambda: crawl.count("fast") >= 3, watcher)
    # Never checked: both due at start (in one batch or two: no batch window here); then fast
    # every second, slow not for a day.
    assert crawl.count("slow") == 1
    assert {batch for batch in crawl.batches if "slow" not in batch} == {("fast",)}


def test_a_slow_crawl_is_never_overlapped_by_the_next_run_of_its_source(
    shared_engine: Engine,
) -> None:
    crawl = Recorder(seconds=1.6)  # longer than the interval
    source = make_source(id="busy", interval="1s")
    watcher = Watcher(shared_engine, SETTINGS, sources(source), crawl=crawl, batch_window=0)
    run_until(lambda: crawl.count("busy") >= 3, watcher)
    assert crawl.overlaps == []


def test_a_stopping_daemon_starts_no_new_crawl(engine: Engine) -> None:
    crawl = Recorder()
    watcher = Watcher(engine, SETTINGS, sources(make_source(id="a")), crawl=crawl, batch_window=0)
    watcher.mark_due("a")
    watcher.stop()
    watcher.mark_due("a")
    assert watcher.run_due() is None
    assert crawl.batches == []


def test_overdue_sources_run_at_once_and_the_others_when_due(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Source(id="recent", kind="page", url="https://x", last_checked_at=T0))
        session.add(Source(id="stale", kind="page", url="https://y", last_checked_at=T0))
        session.commit()
    now = T0 + timedelta(hours=2)
    watched = sources(
        make_source(id="recent", interval="6h"),
        make_source(id="stale", interval="1h"),
        make_source(id="never", interval="6h"),
        make_source(id="weekly", cron="0 6 * * 1"),  # crontab: Mondays 06:00 UTC
    )
    watcher = Watcher(engine, SETTINGS, watched, crawl=Recorder(), clock=lambda: now)
    scheduler = build_scheduler(watcher, BackgroundScheduler(timezone=UTC), now=now)
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    # Checked at 09:00: the 6h grid's 12:00 is half a period later, so that is its next check.
    assert jobs["crawl:recent"].next_run_time == datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert jobs["crawl:stale"].next_run_time == now  # its 10:00 passed unchecked
    assert jobs["crawl:never"].next_run_time == now
    assert jobs["crawl:weekly"].next_run_time == now  # never checked: a baseline at once
    assert {"send-alerts", "heartbeat"} <= set(jobs)
    for job_id, job in jobs.items():
        crawl_job = job_id.startswith("crawl:")
        assert job.executor == ("default" if crawl_job else "deliver")
        instances = 2 if job_id == "send-alerts" else 1
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (instances, True, 30)


@pytest.mark.parametrize("digest", [True, False])
def test_the_digest_job_is_scheduled_only_when_monitor_digest_provides_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, digest: bool
) -> None:
    calls: list[datetime] = []
    hook = (lambda engine, settings, sources, now: calls.append(now)) if digest else None
    monkeypatch.setattr(scheduler_module, "digest_job", lambda: hook)
    watcher = Watcher(engine, SETTINGS, {}, crawl=Recorder(), clock=lambda: T0)
    scheduler = build_scheduler(watcher, BackgroundScheduler(timezone=UTC), now=T0)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job("digests")
        if digest:
            job.func()
    finally:
        scheduler.shutdown(wait=False)
    assert (job is not None) == digest
    assert calls == ([T0] if digest else [])


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 6 * * 1", T0, datetime(2026, 11, 9, 6, 0)),  # 1 = Monday, as in crontab
        ("0 6 * * 0", T0, datetime(2026, 11, 8, 6, 0)),  # 0 = Sunday
        ("0 6 * * 7", T0, datetime(2026, 11, 8, 6, 0)),  # 7 = Sunday too
        ("30 8 * * 1-5", T0, datetime(2026, 11, 3, 8, 30)),  # T0 is Monday 09:00: next is Tue
        ("0 0 * * 0-2", T0, datetime(2026, 11, 3, 0, 0)),
        ("0 12 * * */2", T0, datetime(2026, 11, 3, 12, 0)),  # Sun, Tue, Thu, Sat
        ("0 6 * * mon", T0, datetime(2026, 11, 9, 6, 0)),
        ("*/15 * * * *", T0 + timedelta(minutes=1), datetime(2026, 11, 2, 9, 15)),
    ],
)
def test_cron_expressions_follow_crontab_weekdays_in_utc(
    cron: str, after: datetime, expected: datetime
) -> None:
    trigger = cron_trigger(make_source(cron=cron))
    assert trigger.get_next_fire_time(None, after) == expected.replace(tzinfo=UTC)


@pytest.mark.parametrize("cron", ["0 6 * * 9", "61 * * * *", "0 6 * * 5-1", "x y z a b"])
def test_a_bad_cron_expression_names_the_source_and_the_fix(cron: str) -> None:
    with pytest.raises(SourcesError) as raised:
        cron_trigger(make_source(id="rems_weekly", cron=cron))
    message = str(raised.value)
    assert "'rems_weekly'" in message and repr(cron) in message
    assert "e.g. '0 6 * * 1-5'" in message


def test_a_second_daemon_refuses_to_start_naming_the_holder(engine: Engine) -> None:
    assert leases.acquire(
        engine, LEASE_NAME, "ops-box:4242", timedelta(minutes=5), datetime.now(UTC)
    )
    watcher = Watcher(engine, SETTINGS, {}, crawl=Recorder())
    with pytest.raises(LeaseHeld, match=r"ops-box:4242.*pass --wait"):
        serve(watcher)


def test_a_once_pass_waits_for_the_lock_then_crawls_and_releases_it(engine: Engine) -> None:
    holder = SchedulerLease(engine, holder="other:1")
    assert holder.acquire()
    crawl = Recorder()
    watcher = Watcher(engine, SETTINGS, sources(make_source(id="a")), crawl=crawl)
    threading.Timer(0.5, holder.release).start()
    started = time.monotonic()
    run_once(watcher, lock_timeout=10)
    assert time.monotonic() - started >= 0.5
    assert crawl.batches == [("a",)]
    assert leases.holder_of(engine, LEASE_NAME, datetime.now(UTC)) is None


def test_a_once_pass_gives_up_after_its_lock_timeout(engine: Engine) -> None:
    assert SchedulerLease(engine, holder="other:1").acquire()
    crawl = Recorder()
    watcher = Watcher(engine, SETTINGS, sources(make_source(id="a")), crawl=crawl)
    with pytest.raises(LeaseHeld, match=r"gave up after waiting 0 s: .*other:1"):
        run_once(watcher, lock_timeout=0)
    assert crawl.batches == []


def test_a_crawl_is_skipped_while_another_process_holds_the_lock(engine: Engine) -> None:
    assert SchedulerLease(engine, holder="other:1").acquire()
    crawl = Recorder()
    watcher = Watcher(engine, SETTINGS, sources(make_source(id="a")), crawl=crawl, batch_window=0)
    watcher.mark_due("a")
    assert watcher.run_due() is None
    assert crawl.batches == []
