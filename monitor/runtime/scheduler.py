"""The `fdawatch run` daemon: the jobs wired to APScheduler, and how it starts and stops.

Each source has a job that fires at the source's fixed times (`monitor.runtime.timetable`: its
interval grid or its crontab, plus the deployment's stable offset) and only marks it due; the
crawl runner (`monitor.runtime.crawl_runner`) crawls what is due in batches, one child process
each. Sending alerts, queueing digests and renewing the lock run on their own executor
("deliver", `monitor.runtime.deliverers`), so a long crawl can never make them skip a run; the
sender is also woken right after each batch. On SIGTERM the running crawl finishes, no new one
starts, the outbox is drained (for at most 30 s), and the daemon exits.

The "scheduler" lease (`monitor.runtime.lease`) keeps a second daemon, or a concurrent
`fdawatch run --once`, from crawling the same history at the same time; in shared mode
(`[scheduler] shared = true`) workers claim sources one by one instead (`monitor.runtime.claims`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from db.engine import keep_caches_small
from monitor.config import Settings
from monitor.errors import LeaseHeld
from monitor.runtime.awake import wait_awake
from monitor.runtime.crawl import CrawlSummary
from monitor.runtime.crawl_runner import (
    BATCH_WINDOW_SECONDS,
    DEFAULT_CRAWL_TIMEOUT,
    CrawlFunction,
    CrawlRunner,
    last_checks,
)
from monitor.runtime.deliverers import Deliverers
from monitor.runtime.lease import HEARTBEAT_SECONDS, LEASE_NAME, LEASE_POLL_SECONDS, SchedulerLease
from monitor.runtime.memory import settle_allocator
from monitor.runtime.timetable import next_check, source_trigger
from monitor.sources import SourceConfig

__all__ = [
    "DEFAULT_CRAWL_TIMEOUT",
    "LEASE_NAME",
    "SchedulerLease",
    "Watcher",
    "build_scheduler",
    "run_once",
    "serve",
]

log = logging.getLogger("fdawatch.scheduler")

SEND_SECONDS = 60
DIGEST_SECONDS = 3600
#: The executor of the jobs that must never wait behind a crawl: send (2 runs may overlap: a
#: wake-up after a batch and the minute's run), heartbeat, digests, the daily report.
DELIVER_EXECUTOR = "deliver"
DELIVER_THREADS = 4
REPORT_SECONDS = 60


class Watcher(CrawlRunner):
    """The daemon's work as plain methods, so tests can call them (or schedule them) directly.

    A crawl runner (`mark_due` is each source's job, `run_due` one batch) with its deliverers
    (`deliverers.send_alerts`, `.heartbeat`, `.drain_outbox`), sharing one lease and clock.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        sources: Mapping[str, SourceConfig],
        *,
        lease: SchedulerLease | None = None,
        crawl: CrawlFunction | None = None,
        crawl_timeout: float = DEFAULT_CRAWL_TIMEOUT,
        batch_window: float = BATCH_WINDOW_SECONDS,
        max_batch: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(
            engine,
            settings,
            sources,
            lease or SchedulerLease(engine, clock=clock),
            crawl=crawl,
            crawl_timeout=crawl_timeout,
            batch_window=batch_window,
            max_batch=max_batch,
            clock=clock,
        )
        self.deliverers = Deliverers(engine, settings, self.sources, self.lease, clock)


def digest_job() -> Callable[..., Any] | None:
    """`monitor.site.digest.queue_due_digests(engine, settings, sources, now)`, when it exists."""
    try:
        module = importlib.import_module("monitor.site.digest")
    except ImportError:
        return None
    function = getattr(module, "queue_due_digests", None)
    return function if callable(function) else None


def build_scheduler(
    watcher: Watcher, scheduler: BaseScheduler | None = None, now: datetime | None = None
) -> BaseScheduler:
    """Add every job to `scheduler` (a new BlockingScheduler by default) and return it.

    Each source's job fires at its fixed times (`source_trigger`) and first at its `next_check`,
    or at once when that has passed (never checked, or a fire time missed while stopped). The
    send, heartbeat and digest jobs run on their own executor, so crawls cannot delay them.
    The crawl runner is not started here: `serve` (or a test) calls `watcher.start_runner()`.
    """
    settings, deliverers = watcher.settings, watcher.deliverers
    scheduler = scheduler or BlockingScheduler(timezone=UTC)
    scheduler.add_executor(ThreadPoolExecutor(DELIVER_THREADS), alias=DELIVER_EXECUTOR)
    now = now or watcher.clock()
    defaults: dict[str, Any] = {
        "max_instances": 1,
        "coalesce": True,
        "misfire_grace_time": int(settings.scheduler_misfire_grace),
        "replace_existing": True,
    }
    checked = last_checks(watcher.engine)
    for source in watcher.sources.values():
        first = max(now, next_check(source, checked.get(source.id), now, watcher.offset))
        scheduler.add_job(
            watcher.mark_due,
            source_trigger(source, watcher.offset),
            args=[source.id],
            id=f"crawl:{source.id}",
            name=f"crawl {source.id}",
            next_run_time=first,
            **defaults,
        )
    renew = deliverers.heartbeat
    chores: list[tuple[str, str, Callable[[], Any], int, datetime | None, int]] = [
        ("send-alerts", "send alerts", deliverers.send_alerts, SEND_SECONDS, now, 2),
        ("heartbeat", "renew the scheduler lock", renew, HEARTBEAT_SECONDS, None, 1),
    ]
    digests = digest_job()
    if digests is not None:
        chores.append(
            (
                "digests",
                "queue due digests",
                lambda: digests(watcher.engine, settings, watcher.sources, watcher.clock()),
                DIGEST_SECONDS,
                now,
                1,
            )
        )
    if settings.report is not None:  # [report]: queue the daily watch report once it is due
        from monitor.delivery.daily_report import report_job

        def report() -> list[str]:
            return report_job(watcher.engine, settings, watcher.sources, watcher.clock())

        chores.append(("daily-report", "queue the daily report", report, REPORT_SECONDS, now, 1))
    for job_id, name, function, seconds, first_run, instances in chores:
        timing = {"next_run_time": first_run} if first_run else {}
        scheduler.add_job(
            function,
            IntervalTrigger(seconds=seconds, timezone=UTC),
            id=job_id,
            name=name,
            executor=DELIVER_EXECUTOR,
            **timing,
            **{**defaults, "max_instances": instances},
        )
    watcher.after_batch = lambda: send_soon(scheduler)
    return scheduler


def send_soon(scheduler: BaseScheduler) -> None:
    """Run the send job now (after a batch: its changes go out without waiting for the minute)."""
    if not scheduler.running:
        return
    with contextlib.suppress(JobLookupError):
        scheduler.modify_job("send-alerts", next_run_time=datetime.now(UTC))


# -- running -----------------------------------------------------------------------------------


@contextlib.contextmanager
def stop_on_signals(on_stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM / SIGINT call `on_stop` once; a second signal exits at once (status 130)."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if received:
            log.warning("second %s: exiting without waiting", signal.Signals(signum).name)
            os._exit(130)
        received.append(signum)
        log.info("%s: stopping after the running crawl", signal.Signals(signum).name)
        on_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve(watcher: Watcher, *, wait_for_lock: bool = False) -> bool:
    """Run the daemon until SIGTERM / SIGINT; True if it ran, False if stopped while waiting.

    On the signal: the running crawl finishes, no other starts, the outbox is sent (for at most
    `deliverers.DRAIN_SECONDS`), then the lock is released. Raises LeaseHeld when another
    scheduler holds the lock and `wait_for_lock` is off.
    """
    # The jobs run in the scheduler's own thread; the main thread only waits for the stop, waking
    # often (`wait_awake`): a SIGTERM that another thread received is then handled at once.
    scheduler = BackgroundScheduler(timezone=UTC)
    with stop_on_signals(watcher.stop):
        if not watcher.shared and not watcher.lease.acquire():
            if not wait_for_lock:
                raise LeaseHeld(watcher.lease.held_message())
            if not watcher.lease.wait(watcher.stopping, None, LEASE_POLL_SECONDS):
                return False
        try:
            build_scheduler(watcher, scheduler)
            if not watcher.stopping.is_set():
                log.info(
                    "fdawatch scheduler %s: %d sources, fire times + %.1f s, up to %d per crawl "
                    "process; stop with SIGTERM or Ctrl-C",
                    watcher.lease.holder,
                    len(watcher.sources),
                    watcher.offset.total_seconds(),
                    watcher.max_batch,
                )
                settle_allocator()  # one malloc arena for the threads below (memory.py)
                keep_caches_small(watcher.engine)  # SQLite's caches: full in 30 min, not hours
                watcher.start_runner()
                scheduler.start()
                wait_awake(watcher.stopping)
                scheduler.shutdown(wait=False)
            # The heartbeat job stopped with the scheduler: keep the lock while we finish.
            with contextlib.nullcontext() if watcher.shared else watcher.lease.kept():
                watcher.join_runner()
                watcher.deliverers.drain_outbox()
        finally:
            watcher.join_runner()
            if scheduler.running:
                scheduler.shutdown(wait=False)
            watcher.lease.release()
    return True


def run_once(watcher: Watcher, *, lock_timeout: float) -> CrawlSummary | None:
    """One pass for cron / systemd timers: every selected source, then the outbox.

    Takes the scheduler lock like the daemon (waiting up to `lock_timeout` seconds for it), so
    two passes, or a pass and a daemon, never crawl one database at the same time. Raises
    LeaseHeld when the wait runs out; returns the crawl summary (None if stopped first).
    """
    with stop_on_signals(watcher.stop):
        if watcher.shared:
            summary = watcher.crawl_claimed(list(watcher.sources.values()))
            watcher.deliverers.send_alerts()
            return summary
        if not watcher.lease.wait(watcher.stopping, lock_timeout, LEASE_POLL_SECONDS):
            if watcher.stopping.is_set():
                return None
            raise LeaseHeld(
                f"gave up after waiting {lock_timeout:.0f} s: " + watcher.lease.held_message()
            )
        try:
            with watcher.lease.kept():
                summary = watcher.crawl_batch(list(watcher.sources.values()))
                watcher.deliverers.send_alerts()
        finally:
            watcher.lease.release()
    return summary
