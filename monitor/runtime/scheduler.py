"""The `fdawatch run` daemon: sources crawled on their schedule in batches, alerts never starved.

Timing (`monitor.runtime.timetable`): one APScheduler job per source fires at the source's fixed
times (its interval grid or its crontab, plus the deployment's stable offset). The job only marks
the source due and returns: it never waits, so it never holds a scheduler thread. One crawl runner
thread takes everything due, waits a short batch window for sources due at about the same moment,
drops those checked less than half a period ago (an earlier batch already did them) and crawls the
rest in ONE child process (at most `[scheduler] max_batch` sources, bounded by the crawl timeout;
Scrapy's reactor cannot restart, so every crawl is a `run_crawl` child). Crawl processes per hour
therefore follow the number of distinct due times, not the number of sources.

Sending alerts, queueing digests and renewing the lock run on their own executor ("deliver"), so
a long crawl can never make them skip a run; the sender is also woken right after each batch. On
SIGTERM the running crawl finishes, no new one starts, the outbox is drained (for at most
`DRAIN_SECONDS`), and the daemon exits.

The "scheduler" lease in the database (`db/leases.py`) keeps a second daemon, or a concurrent
`fdawatch run --once`, from crawling the same history at the same time; in shared mode
(`[scheduler] shared = true`) workers claim sources one by one instead (`monitor.runtime.claims`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlmodel import Session, select

from db import leases
from db.models import Source
from monitor.config import Settings
from monitor.delivery.alerts import SendReport, send_pending
from monitor.errors import LeaseHeld
from monitor.runtime import claims
from monitor.runtime.crawl import CrawlSummary, run_crawl
from monitor.runtime.timetable import cron_trigger, next_check, schedule_offset, source_trigger
from monitor.sources import SourceConfig

__all__ = [
    "LEASE_NAME",
    "LeaseHeld",
    "SchedulerLease",
    "Watcher",
    "build_scheduler",
    "cron_trigger",
    "next_check",
    "run_once",
    "serve",
    "source_trigger",
]

log = logging.getLogger("fdawatch.scheduler")

LEASE_NAME = "scheduler"
LEASE_TTL = timedelta(minutes=5)
HEARTBEAT_SECONDS = 60  # well inside LEASE_TTL, so a live daemon never loses its lock
SEND_SECONDS = 60
DIGEST_SECONDS = 3600
LEASE_POLL_SECONDS = 2.0
#: The runner waits this long after a source falls due for others due at about the same moment.
BATCH_WINDOW_SECONDS = 1.0
#: On SIGTERM, after the running crawl: how long the final send of the outbox may take.
DRAIN_SECONDS = 30.0
CLAIM_MARGIN = timedelta(minutes=5)  # a shared worker's claim outlives its crawl timeout
DEFAULT_CRAWL_TIMEOUT = 30 * 60
#: The executor of the jobs that must never wait behind a crawl: send (2 runs may overlap: a
#: wake-up after a batch and the minute's run), heartbeat, digests.
DELIVER_EXECUTOR = "deliver"
DELIVER_THREADS = 4

CrawlFunction = Callable[[Sequence[SourceConfig]], CrawlSummary | None]


def lease_holder() -> str:
    """Who we are in the lease table: host and process id, so an operator can find us."""
    return f"{socket.gethostname()}:{os.getpid()}"


# -- schedules -------------------------------------------------------------------------------


def last_checks(engine: Engine) -> dict[str, datetime | None]:
    """Each known source's last check, from the history."""
    with Session(engine) as session:
        return {row.id: row.last_checked_at for row in session.exec(select(Source)).all()}


# -- the lock ----------------------------------------------------------------------------------


class SchedulerLease:
    """The "scheduler" lease for one process: take it, renew it, wait for it, give it back."""

    def __init__(
        self,
        engine: Engine,
        holder: str | None = None,
        ttl: timedelta = LEASE_TTL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.holder = holder or lease_holder()
        self.ttl = ttl
        self.clock = clock

    def acquire(self) -> bool:
        """Take or renew the lease; False when another live process holds it."""
        return leases.acquire(self.engine, LEASE_NAME, self.holder, self.ttl, self.clock())

    def release(self) -> None:
        leases.release(self.engine, LEASE_NAME, self.holder)

    def other_holder(self) -> str | None:
        holder = leases.holder_of(self.engine, LEASE_NAME, self.clock())
        return holder if holder != self.holder else None

    def held_message(self) -> str:
        holder = self.other_holder() or "another process"
        return (
            f"another fdawatch scheduler ({holder}) holds the lock on this database; stop it "
            "first, or pass --wait to take over when it stops (the lock expires "
            f"{int(self.ttl.total_seconds())} s after its holder dies)"
        )

    def wait(self, stop: threading.Event, timeout: float | None, poll: float) -> bool:
        """Block until the lease is ours (True), `stop` is set or `timeout` passes (False)."""
        waited = 0.0
        announced = False
        while not self.acquire():
            if timeout is not None and waited >= timeout:
                return False
            if not announced:
                log.info("waiting for the scheduler lock held by %s", self.other_holder())
                announced = True
            if stop.wait(poll):
                return False
            waited += poll
        return True

    @contextlib.contextmanager
    def kept(self, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
        """Renew the lease in a background thread while the block runs (for `run --once`)."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(every):
                if not self.acquire():
                    log.warning("lost the scheduler lock to %s", self.other_holder())

        thread = threading.Thread(target=renew, name="fdawatch-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


# -- the jobs ----------------------------------------------------------------------------------


class Watcher:
    """The daemon's work as plain methods, so tests can call them (or schedule them) directly.

    `mark_due` is each source's job; `run_due` is one pass of the crawl runner (the thread that
    `start_runner` starts); `send_alerts` and `heartbeat` are the deliverers' jobs. `crawl` is
    injectable: by default it is `monitor.runtime.crawl.run_crawl` in a child process.
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
        self.engine = engine
        self.settings = settings
        self.sources = dict(sources)
        self.lease = lease or SchedulerLease(engine, clock=clock)
        self.crawl = crawl or self._run_crawl
        self.crawl_timeout = crawl_timeout
        self.batch_window = batch_window
        self.max_batch = max_batch or settings.scheduler_max_batch
        self.clock = clock
        #: The deployment's stable offset added to every fire time (`monitor.runtime.timetable`).
        self.offset = schedule_offset(settings.scheduler_jitter, settings.database_url)
        self.stopping = threading.Event()
        #: Called after each batch (the daemon wakes the sender with it).
        self.after_batch: Callable[[], None] | None = None
        self.last_send: SendReport | None = None
        #: Shared mode: several daemons on one database claim sources one by one instead of
        #: one daemon holding the whole database ("scheduler" lease).
        self.shared = settings.scheduler_shared
        self._due: set[str] = set()
        self._due_lock = threading.Lock()
        self._wake = threading.Event()  # set while something is due (or when stopping)
        self._crawl_lock = threading.Lock()  # one batch at a time, whoever calls run_due
        self._send_lock = threading.Lock()
        self._runner: threading.Thread | None = None

    def _run_crawl(self, batch: Sequence[SourceConfig]) -> CrawlSummary:
        return run_crawl(self.engine, self.settings, batch, timeout=self.crawl_timeout)

    # -- crawling ------------------------------------------------------------------------------

    def mark_due(self, source_id: str) -> None:
        """The job of one source: note that it is due and return at once (idempotent)."""
        if self.stopping.is_set() or source_id not in self.sources:
            return
        with self._due_lock:
            self._due.add(source_id)
            self._wake.set()

    def due(self) -> list[str]:
        """The sources marked due and not yet taken by a batch, in sources.toml order."""
        with self._due_lock:
            return [sid for sid in self.sources if sid in self._due]

    def _take_batch(self) -> list[SourceConfig]:
        with self._due_lock:
            ids = [sid for sid in self.sources if sid in self._due][: self.max_batch]
            self._due.difference_update(ids)
            if not self._due:
                self._wake.clear()
        return [self.sources[sid] for sid in ids]

    def still_due(self, batch: Sequence[SourceConfig]) -> list[SourceConfig]:
        """`batch` without the sources checked too recently to check again (`next_check`)."""
        now = self.clock()
        checked = last_checks(self.engine)
        fresh = [
            source
            for source in batch
            if next_check(source, checked.get(source.id), now, self.offset) > now
        ]
        if fresh:
            log.info(
                "not crawling %s: checked less than half a period ago",
                ", ".join(source.id for source in fresh),
            )
        return [source for source in batch if source not in fresh]

    def run_due(self) -> CrawlSummary | None:
        """One batch: wait the batch window, then crawl what is due in one process.

        Takes at most `max_batch` sources (the rest stays due for the next batch), leaves out
        those checked less than half a period ago, and returns the crawl's summary (None when
        nothing was crawled).
        """
        with self._crawl_lock:
            if self.batch_window and self.stopping.wait(self.batch_window):
                return None
            if self.stopping.is_set():
                return None
            batch = self.still_due(self._take_batch())
            if not batch:
                return None
            if self.shared:
                summary = self.crawl_claimed(batch)
            elif not self.lease.acquire():  # a `run --once` pass is crawling: it covers ours
                holder = self.lease.other_holder()
                ids = ", ".join(source.id for source in batch)
                log.warning("skipping %s: %s holds the scheduler lock", ids, holder)
                return None
            else:
                summary = self.crawl_batch(batch)
        if self.after_batch is not None:
            self.after_batch()
        return summary

    def _run_forever(self) -> None:
        while True:
            self._wake.wait()
            if self.stopping.is_set():
                return
            try:
                self.run_due()
            except Exception:  # the runner must outlive a database hiccup: sources fire again
                log.exception("the crawl runner failed; the sources run again at their next time")

    def start_runner(self) -> None:
        """Start the crawl runner thread (once)."""
        if self._runner is None:
            self._runner = threading.Thread(
                target=self._run_forever, name="fdawatch-crawl", daemon=True
            )
            self._runner.start()

    def join_runner(self) -> None:
        """Stop the runner after its running crawl (if any) and wait for it."""
        self.stop()
        if self._runner is not None:
            self._runner.join()
            self._runner = None

    def crawl_timeout_delta(self) -> timedelta:
        """How long a shared worker's claim lasts: its crawl timeout plus a margin."""
        return timedelta(seconds=self.crawl_timeout) + CLAIM_MARGIN

    def crawl_claimed(self, batch: Sequence[SourceConfig]) -> CrawlSummary | None:
        """Shared mode: crawl the part of `batch` no other worker holds or just checked."""
        lease = self.crawl_timeout_delta()
        mine = claims.claim_sources(self.engine, self.lease.holder, batch, self.clock(), lease)
        if not mine:
            log.info("skipping %s: other workers have them", ", ".join(s.id for s in batch))
            return None
        try:
            return self.crawl_batch(mine)
        finally:
            claims.release_sources(self.engine, self.lease.holder, mine)

    def crawl_batch(self, batch: Sequence[SourceConfig]) -> CrawlSummary | None:
        """Crawl `batch` now (the caller holds the lease) and log what came of it."""
        ids = ", ".join(source.id for source in batch)
        log.info("crawling %s", ids)
        try:
            summary = self.crawl(batch)
        except Exception:
            log.exception("crawl of %s failed", ids)
            return None
        if summary is not None:
            log.info(
                "run %s %s: checked %s, changed %s, failed %s",
                summary.run_id,
                summary.status,
                summary.checked,
                summary.changed,
                summary.failed,
            )
            if summary.status != "finished":
                log.warning("the crawl process %s:\n%s", summary.status, summary.stderr_tail)
        return summary

    # -- delivering ----------------------------------------------------------------------------

    def send_alerts(self) -> SendReport | None:
        """Drain the outbox once (every minute, after each batch, at exit, after `run --once`).

        One send at a time: a run that starts while another sends waits for it, then sends
        what is still due.
        """
        with self._send_lock:
            try:
                report = send_pending(self.engine, self.settings, self.sources, self.clock())
            except Exception:
                log.exception("sending alerts failed; the outbox keeps them for the next try")
                return None
        self.last_send = report
        if not report.nothing_due:
            log.info(
                "alerts: %d emails (%d alerts) via %s; %d to retry, %d failed",
                report.emails,
                report.alerts,
                report.via,
                report.retry_emails,
                report.failed_emails,
            )
        for error in report.errors:
            log.warning("alerts: %s", error)
        return report

    def drain_outbox(self, timeout: float = DRAIN_SECONDS) -> SendReport | None:
        """Send what is queued before exiting, waiting at most `timeout` seconds.

        The send runs in its own thread, so a mail server that hangs cannot hold the exit; rows
        it had claimed are sent again by the next start (same Message-ID).
        """
        reports: list[SendReport | None] = []
        sender = threading.Thread(
            target=lambda: reports.append(self.send_alerts()), name="fdawatch-drain", daemon=True
        )
        sender.start()
        sender.join(timeout)
        if sender.is_alive():
            log.warning(
                "gave up sending the queued alerts after %.0f s; they are sent at the next start",
                timeout,
            )
            return None
        report = reports[0] if reports else None
        if report is not None and report.nothing_due:
            log.info("outbox empty at exit")
        return report

    def heartbeat(self) -> None:
        """Renew the lock; if another process took it (we were frozen too long), say so."""
        if self.shared:
            return  # shared workers hold per-source claims only while crawling
        if not self.lease.acquire():
            log.warning("crawls paused: %s", self.lease.held_message())

    def stop(self) -> None:
        """No new crawl starts; the runner returns after the running one."""
        self.stopping.set()
        self._wake.set()


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
    settings = watcher.settings
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
    chores: list[tuple[str, str, Callable[[], Any], int, datetime | None, int]] = [
        ("send-alerts", "send alerts", watcher.send_alerts, SEND_SECONDS, now, 2),
        ("heartbeat", "renew the scheduler lock", watcher.heartbeat, HEARTBEAT_SECONDS, None, 1),
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
    `DRAIN_SECONDS`), then the lock is released. Raises LeaseHeld when another scheduler holds
    the lock and `wait_for_lock` is off.
    """
    scheduler = BlockingScheduler(timezone=UTC)

    def stop() -> None:
        watcher.stop()
        if scheduler.running:
            scheduler.shutdown(wait=False)

    with stop_on_signals(stop):
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
                watcher.start_runner()
                scheduler.start()
            watcher.join_runner()
            watcher.drain_outbox()
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
            watcher.send_alerts()
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
                watcher.send_alerts()
        finally:
            watcher.lease.release()
    return summary
