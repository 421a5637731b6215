"""Batched crawls, deliverers that never starve, and a SIGTERM that sends what is queued.

The crawl and the mail sender are injected, so these count calls instead of timing them: a
deadline only bounds how long a test waits for something that must happen.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import Session

from db import leases
from db.models import Source
from monitor.config import ConfigError, load_settings
from monitor.delivery.alerts import SendReport
from monitor.runtime import deliverers as deliverers_module
from monitor.runtime import scheduler as scheduler_module
from monitor.runtime.scheduler import LEASE_NAME, SchedulerLease, Watcher, build_scheduler, serve
from monitor.runtime.timetable import source_trigger
from monitor.sources import SourceConfig
from tests.scheduler.test_scheduler import DEADLINE, SETTINGS, Recorder, sources, wait_for
from tests.support.clock import T0, Clock
from tests.support.sources import make_source


class Checker(Recorder):
    """A crawl that records its sources as checked (`crawl_seconds` after the clock's now)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime], crawl_seconds: float = 0):
        super().__init__()
        self.engine = engine
        self.clock = clock
        self.crawl_seconds = crawl_seconds
        self.during: Callable[[], None] | None = None  # runs inside the crawl

    def __call__(self, batch: Sequence[SourceConfig]) -> None:
        super().__call__(batch)
        if self.during is not None:
            self.during()
        checked = self.clock() + timedelta(seconds=self.crawl_seconds)
        with Session(self.engine) as session:
            for source in batch:
                row = session.get(Source, source.id) or Source(
                    id=source.id, kind=source.kind, url=source.url
                )
                row.last_checked_at = checked
                session.add(row)
            session.commit()


def many(count: int, interval: str = "1h", prefix: str = "s") -> dict[str, SourceConfig]:
    return sources(*(make_source(id=f"{prefix}{n:02d}", interval=interval) for n in range(count)))


def test_ten_sources_due_together_run_in_one_crawl_process(shared_engine: Engine) -> None:
    crawl = Checker(shared_engine, lambda: datetime.now(UTC))
    watched = many(10)
    # Ten jobs fire at one instant; the runner waits a batch window for them all. The daemon's
    # window is 1 s; 5 s here, so that a thread held up on a loaded machine still makes it.
    watcher = Watcher(shared_engine, SETTINGS, watched, crawl=crawl, batch_window=5.0)
    scheduler = build_scheduler(watcher, BackgroundScheduler(timezone=UTC))
    watcher.start_runner()
    scheduler.start()
    try:
        wait_for(lambda: crawl.batches != [], "the first crawl")
    finally:
        watcher.join_runner()
        scheduler.shutdown(wait=True)
    assert crawl.batches == [tuple(watched)]


def test_crawl_processes_follow_the_distinct_due_times_not_the_sources(engine: Engine) -> None:
    """An hour of fire times, played on a clock: 20 sources at 1m, 10 at 1h, 5 at 6h."""
    watched = {**many(20, "1m", "m"), **many(10, "1h", "h"), **many(5, "6h", "x")}
    start = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # on the 6h grid
    clock = Clock(start)
    crawl = Checker(engine, clock, crawl_seconds=3)
    watcher = Watcher(engine, SETTINGS, watched, crawl=crawl, batch_window=0, clock=clock)
    fires: dict[datetime, list[str]] = {}
    for source in watched.values():
        trigger = source_trigger(source, watcher.offset)
        fire = trigger.get_next_fire_time(None, start)
        while fire is not None and fire < start + timedelta(hours=1):
            fires.setdefault(fire, []).append(source.id)
            fire = trigger.get_next_fire_time(fire, fire)
    for moment in sorted(fires):
        clock.now = moment + timedelta(seconds=1)  # the batch window
        for source_id in fires[moment]:
            watcher.mark_due(source_id)
        watcher.run_due()
    assert len(crawl.batches) == len(fires) == 60  # one process per minute, 35 sources
    assert len(crawl.batches[0]) == 35  # at 06:00 every source is due
    assert all(crawl.count(f"m{n:02d}") == 60 for n in range(20))  # every scheduled time
    assert all(crawl.count(f"h{n:02d}") == 1 for n in range(10))
    assert all(crawl.count(f"x{n:02d}") == 1 for n in range(5))


def test_a_source_crawled_by_an_earlier_batch_is_not_crawled_again_because_its_job_fired(
    engine: Engine,
) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    crawl = Checker(engine, clock, crawl_seconds=5)
    watched = many(3, "1m")
    watcher = Watcher(engine, SETTINGS, watched, crawl=crawl, batch_window=0, clock=clock)
    for source_id in watched:
        watcher.mark_due(source_id)

    def job_fires_meanwhile() -> None:  # s00's job fires while the batch that has it runs
        watcher.mark_due("s00")
        crawl.during = None

    crawl.during = job_fires_meanwhile
    watcher.run_due()
    assert watcher.due() == ["s00"]
    clock.now += timedelta(seconds=6)
    assert watcher.run_due() is None  # checked 1 s ago: half a minute has not passed
    clock.now = T0 + timedelta(minutes=1, seconds=1)  # the next minute: due again
    watcher.mark_due("s00")
    watcher.run_due()
    assert crawl.batches == [("s00", "s01", "s02"), ("s00",)]


def test_a_batch_holds_at_most_max_batch_sources_and_the_rest_follows(engine: Engine) -> None:
    crawl = Recorder()
    watched = many(5)
    watcher = Watcher(engine, SETTINGS, watched, crawl=crawl, batch_window=0, max_batch=2)
    for source_id in reversed(list(watched)):
        watcher.mark_due(source_id)
        watcher.mark_due(source_id)  # marking twice is marking once
    while watcher.due():
        watcher.run_due()
    assert crawl.batches == [("s00", "s01"), ("s02", "s03"), ("s04",)]


def test_the_crawl_runner_survives_an_error_and_crawls_at_the_next_fire(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    crawl = Recorder()
    watcher = Watcher(engine, SETTINGS, many(1), crawl=crawl, batch_window=0)
    real_still_due = watcher.still_due
    failures = [RuntimeError("database is locked")]

    def flaky(batch: Sequence[SourceConfig]) -> list[SourceConfig]:
        if failures:
            raise failures.pop()
        return real_still_due(batch)

    watcher.still_due = flaky  # type: ignore[method-assign]
    watcher.start_runner()
    try:
        watcher.mark_due("s00")
        wait_for(lambda: not failures and not watcher.due(), "the failed batch")
        watcher.mark_due("s00")
        wait_for(lambda: crawl.batches != [], "the next crawl")
    finally:
        watcher.join_runner()
    assert crawl.batches == [("s00",)]
    assert "the crawl runner failed" in caplog.text


class CountingLease(SchedulerLease):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, holder="daemon:1")
        self.renewals = 0

    def acquire(self) -> bool:
        self.renewals += 1
        return super().acquire()


def test_alerts_and_the_lock_renewal_run_while_a_long_crawl_runs(
    shared_engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Twenty sources firing every second while one crawl blocks: the deliverers still run."""
    monkeypatch.setattr(scheduler_module, "SEND_SECONDS", 0.2)
    monkeypatch.setattr(scheduler_module, "HEARTBEAT_SECONDS", 0.2)
    sends: list[bool] = []  # one entry per send, True when a crawl was running
    started, release = threading.Event(), threading.Event()

    def send_pending(*args: object, **kwargs: object) -> SendReport:
        sends.append(started.is_set() and not release.is_set())
        return SendReport(via="test")

    monkeypatch.setattr(deliverers_module, "send_pending", send_pending)

    def long_crawl(batch: Sequence[SourceConfig]) -> None:
        started.set()
        release.wait(DEADLINE)

    lease = CountingLease(shared_engine)
    watcher = Watcher(shared_engine, SETTINGS, many(20, "1s"), crawl=long_crawl, lease=lease)
    scheduler = build_scheduler(watcher, BackgroundScheduler(timezone=UTC))
    watcher.start_runner()
    scheduler.start()
    try:
        wait_for(started.is_set, "the crawl to start")
        renewals = lease.renewals
        wait_for(lambda: sends.count(True) >= 3, "three sends during the crawl")
        wait_for(lambda: lease.renewals >= renewals + 3, "three lock renewals during the crawl")
    finally:
        release.set()
        watcher.join_runner()
        scheduler.shutdown(wait=True)
    assert "maximum number of running instances" not in caplog.text


def test_sigterm_finishes_the_crawl_then_sends_what_it_queued(
    shared_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox: list[str] = []
    sent: list[tuple[str, bool]] = []  # (alert, sent after the daemon began to stop)
    events: list[str] = []
    first_send = threading.Event()

    def send_pending(*args: object, **kwargs: object) -> SendReport:
        report = SendReport(via="test")
        while outbox:
            sent.append((outbox.pop(0), watcher.stopping.is_set()))
            report.emails += 1
            report.alerts += 1
        events.append("send")
        first_send.set()
        return report

    monkeypatch.setattr(deliverers_module, "send_pending", send_pending)
    monkeypatch.setattr(scheduler_module, "send_soon", lambda scheduler: None)  # only the drain
    # No job wakes the daemon's main thread during the test: only its own wake-ups can.
    monkeypatch.setattr(scheduler_module, "SEND_SECONDS", 3600)
    monkeypatch.setattr(scheduler_module, "HEARTBEAT_SECONDS", 3600)

    def crawl(batch: Sequence[SourceConfig]) -> None:
        first_send.wait(DEADLINE)  # the start-up send has run: what follows waits for us
        events.append("crawl started")
        # The kernel hands a process's SIGTERM to any thread; here, deterministically, the crawl
        # thread's. The main thread, asleep until the next job, must still wake up to stop.
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        stopping = watcher.stopping.wait(DEADLINE)
        events.append("stopping during the crawl" if stopping else "not stopping")
        outbox.extend(["change 1", "change 2"])  # detected by the running crawl
        events.append("crawl finished")

    watcher = Watcher(shared_engine, SETTINGS, many(3), crawl=crawl, batch_window=0)
    assert serve(watcher) is True
    assert sent == [("change 1", True), ("change 2", True)]
    assert events[-4:] == ["crawl started", "stopping during the crawl", "crawl finished", "send"]
    assert leases.holder_of(shared_engine, LEASE_NAME, datetime.now(UTC)) is None


def test_the_exit_drain_gives_up_on_a_hanging_mail_server(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hang = threading.Event()
    monkeypatch.setattr(
        deliverers_module,
        "send_pending",
        lambda *args, **kw: (hang.wait(DEADLINE), SendReport())[1],
    )
    watcher = Watcher(engine, SETTINGS, {}, crawl=Recorder())
    caplog.set_level(logging.INFO, logger="fdawatch")
    try:
        assert watcher.deliverers.drain_outbox(timeout=0.1) is None
    finally:
        hang.set()
    assert "gave up sending the queued alerts after 0 s; they are sent at the next start" in (
        caplog.text
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", 50),
        ("max_batch = 5", 5),
        ("max_batch = 0", "[scheduler] max_batch must be at least 1, not 0"),
        ('max_batch = "ten"', "[scheduler] max_batch must be a number, not 'ten'"),
    ],
)
def test_max_batch_is_read_from_the_scheduler_section(
    tmp_path: Path, line: str, expected: int | str
) -> None:
    config = tmp_path / "fdawatch.toml"
    config.write_text(f"[scheduler]\n{line}\n", encoding="utf-8")
    env = {"FDAWATCH_CONFIG": str(config), "FDAWATCH_VAR_DIR": str(tmp_path)}
    if isinstance(expected, int):
        assert load_settings(env).scheduler_max_batch == expected
        return
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert str(raised.value) == f"{config}: {expected}"
