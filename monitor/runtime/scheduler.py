"""The `fdawatch run` daemon: each source crawled on its own schedule, alerts sent every minute.

One APScheduler job per source (its `interval`, or its 5-field `cron` in UTC) plus the outbox
sender, a heartbeat that renews the database lock and, when `monitor.site.digest` provides
`queue_due_digests`, an hourly digest job. Crawls never overlap: a job that fires while another
crawl runs waits, and the sources that queued up meanwhile are crawled together in one child
process (Scrapy's reactor cannot restart, so every crawl is a `run_crawl` child with a timeout).

The "scheduler" lease in the database (`db/leases.py`) keeps a second daemon, or a concurrent
`fdawatch run --once`, from crawling the same history at the same time.
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

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlmodel import Session, select

from db import leases
from db.models import Source
from monitor.config import Settings
from monitor.cron import parse_cron
from monitor.delivery.alerts import SendReport, send_pending
from monitor.errors import LeaseHeld, SourcesError
from monitor.runtime import claims
from monitor.runtime.crawl import CrawlSummary, run_crawl
from monitor.sources import SourceConfig

log = logging.getLogger("fdawatch.scheduler")

LEASE_NAME = "scheduler"
LEASE_TTL = timedelta(minutes=5)
HEARTBEAT_SECONDS = 60  # well inside LEASE_TTL, so a live daemon never loses its lock
SEND_SECONDS = 60
DIGEST_SECONDS = 3600
LEASE_POLL_SECONDS = 2.0
#: A job that fires waits this long for others due at the same moment, to share one process.
BATCH_WINDOW_SECONDS = 1.0
CLAIM_MARGIN = timedelta(minutes=5)  # a shared worker's claim outlives its crawl timeout
DEFAULT_CRAWL_TIMEOUT = 30 * 60

CrawlFunction = Callable[[Sequence[SourceConfig]], CrawlSummary | None]


def lease_holder() -> str:
    """Who we are in the lease table: host and process id, so an operator can find us."""
    return f"{socket.gethostname()}:{os.getpid()}"


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# -- schedules -------------------------------------------------------------------------------


def cron_trigger(source: SourceConfig, jitter: float = 0) -> CronTrigger:
    """The source's crontab (minute hour day month weekday, UTC) as an APScheduler trigger."""
    assert source.cron is not None
    try:
        trigger = parse_cron(source.cron)
    except ValueError as error:
        raise SourcesError(
            f"source {source.id!r}: field 'cron' = {source.cron!r} is invalid ({error}); "
            "write minute hour day month weekday in UTC, e.g. '0 6 * * 1-5'"
        ) from None
    trigger.jitter = int(jitter) or None
    return trigger


def source_trigger(source: SourceConfig, jitter: float = 0) -> BaseTrigger:
    """When the daemon crawls `source`: its cron expression if it has one, else its interval."""
    if source.cron:
        return cron_trigger(source, jitter)
    return IntervalTrigger(
        seconds=source.interval_seconds, jitter=int(jitter) or None, timezone=UTC
    )


def next_run(source: SourceConfig, last_checked_at: datetime | None, now: datetime) -> datetime:
    """When `source` is next due: the cron's next fire time, or last check + interval.

    An interval source never checked is due now; an overdue one returns its (past) due time, so
    callers can tell "due now" from "later".
    """
    if source.cron:
        fire = cron_trigger(source).get_next_fire_time(None, now)
        assert fire is not None  # a crontab always fires again
        return fire
    last = utc(last_checked_at)
    if last is None:
        return now
    return last + timedelta(seconds=source.interval_seconds)


def last_checks(engine: Engine) -> dict[str, datetime | None]:
    """Each known source's last check, from the history."""
    with Session(engine) as session:
        return {row.id: utc(row.last_checked_at) for row in session.exec(select(Source)).all()}


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
    """The daemon's jobs as plain methods, so tests can call them (or schedule them) directly.

    `crawl` is injectable: by default it is `monitor.runtime.crawl.run_crawl` in a child process.
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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.sources = dict(sources)
        self.lease = lease or SchedulerLease(engine, clock=clock)
        self.crawl = crawl or self._run_crawl
        self.crawl_timeout = crawl_timeout
        self.batch_window = batch_window
        self.clock = clock
        self.stopping = threading.Event()
        self._crawl_lock = threading.Lock()
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()
        self.last_send: SendReport | None = None
        #: Shared mode: several daemons on one database claim sources one by one instead of
        #: one daemon holding the whole database ("scheduler" lease).
        self.shared = settings.scheduler_shared

    def _run_crawl(self, batch: Sequence[SourceConfig]) -> CrawlSummary:
        return run_crawl(self.engine, self.settings, batch, timeout=self.crawl_timeout)

    def crawl_source(self, source_id: str) -> None:
        """The job of one source: crawl it, with whatever else became due meanwhile."""
        if self.stopping.is_set():
            return
        with self._pending_lock:
            self._pending.add(source_id)
        if self.batch_window:
            self.stopping.wait(self.batch_window)
        with self._crawl_lock:
            with self._pending_lock:
                due, self._pending = self._pending, set()
            batch = [source for sid, source in self.sources.items() if sid in due]
            if not batch or self.stopping.is_set():
                return  # an earlier job already crawled ours, or we are shutting down
            if self.shared:
                self.crawl_claimed(batch)
                return
            if not self.lease.acquire():  # a `run --once` pass is crawling: it covers ours
                holder = self.lease.other_holder()
                log.warning("skipping %s: %s holds the scheduler lock", ", ".join(due), holder)
                return
            self.crawl_batch(batch)

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

    def send_alerts(self) -> SendReport | None:
        """Drain the outbox once (the job every minute; also after `run --once`)."""
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

    def heartbeat(self) -> None:
        """Renew the lock; if another process took it (we were frozen too long), say so."""
        if self.shared:
            return  # shared workers hold per-source claims only while crawling
        if not self.lease.acquire():
            log.warning("crawls paused: %s", self.lease.held_message())

    def stop(self) -> None:
        self.stopping.set()

    def wait_for_crawl(self) -> None:
        """Return once no crawl is running (the running one, if any, is left to finish)."""
        with self._crawl_lock:
            pass


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
    """Add every job to `scheduler` (a new BlockingScheduler by default) and return it."""
    settings = watcher.settings
    scheduler = scheduler or BlockingScheduler(timezone=UTC)
    now = now or watcher.clock()
    defaults: dict[str, Any] = {
        "max_instances": 1,
        "coalesce": True,
        "misfire_grace_time": int(settings.scheduler_misfire_grace),
        "replace_existing": True,
    }
    checked = last_checks(watcher.engine)
    for source in watcher.sources.values():
        # Overdue interval sources run at once; cron sources wait for their next time.
        first = max(now, next_run(source, checked.get(source.id), now))
        scheduler.add_job(
            watcher.crawl_source,
            source_trigger(source, settings.scheduler_jitter),
            args=[source.id],
            id=f"crawl:{source.id}",
            name=f"crawl {source.id}",
            next_run_time=first,
            **defaults,
        )
    digests = digest_job()
    chores: list[tuple[str, str, Callable[[], Any], int, datetime | None]] = [
        ("send-alerts", "send alerts", watcher.send_alerts, SEND_SECONDS, now),
        ("heartbeat", "renew the scheduler lock", watcher.heartbeat, HEARTBEAT_SECONDS, None),
    ]
    if digests is not None:
        chores.append(
            (
                "digests",
                "queue due digests",
                lambda: digests(watcher.engine, settings, watcher.sources, watcher.clock()),
                DIGEST_SECONDS,
                now,
            )
        )
    for job_id, name, function, seconds, first_run in chores:
        timing = {"next_run_time": first_run} if first_run else {}
        scheduler.add_job(
            function,
            IntervalTrigger(seconds=seconds, timezone=UTC),
            id=job_id,
            name=name,
            **timing,
            **defaults,
        )
    return scheduler


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

    Raises LeaseHeld when another scheduler holds the lock and `wait_for_lock` is off.
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
                    "fdawatch scheduler %s: %d sources; stop with SIGTERM or Ctrl-C",
                    watcher.lease.holder,
                    len(watcher.sources),
                )
                scheduler.start()
            watcher.wait_for_crawl()
        finally:
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
