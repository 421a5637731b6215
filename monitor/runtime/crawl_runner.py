"""The daemon's crawl runner: sources that fall due together are crawled by one process.

A source's scheduler job only calls `mark_due` and returns: it never waits, so it never holds a
scheduler thread. One runner thread takes everything due, waits a short batch window for the
sources due at about the same moment, leaves out those checked less than half a period ago (an
earlier batch, `run --once` or another worker already did them; `timetable.next_check`) and
crawls the rest in ONE child process: at most `[scheduler] max_batch` sources (the rest go in the
next process), stopped after the crawl timeout. Scrapy's reactor cannot restart, so every crawl
is a `run_crawl` child. Crawl processes per hour therefore follow the number of distinct due
times, not the number of sources.

Before each batch the runner renews the "scheduler" lease (`monitor.runtime.lease`); in shared
mode (`[scheduler] shared = true`) it claims the batch's sources one by one instead
(`monitor.runtime.claims`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from db.models import Source
from monitor.config import Settings
from monitor.runtime import claims
from monitor.runtime.awake import join_awake
from monitor.runtime.crawl import CrawlSummary, run_crawl
from monitor.runtime.lease import SchedulerLease
from monitor.runtime.timetable import next_check, schedule_offset
from monitor.sources import SourceConfig

log = logging.getLogger("fdawatch.scheduler")

#: The runner waits this long after a source falls due for others due at about the same moment.
BATCH_WINDOW_SECONDS = 1.0
CLAIM_MARGIN = timedelta(minutes=5)  # a shared worker's claim outlives its crawl timeout
DEFAULT_CRAWL_TIMEOUT = 30 * 60

CrawlFunction = Callable[[Sequence[SourceConfig]], CrawlSummary | None]


def last_checks(engine: Engine) -> dict[str, datetime | None]:
    """Each known source's last check, from the history."""
    with Session(engine) as session:
        return {row.id: row.last_checked_at for row in session.exec(select(Source)).all()}


class CrawlRunner:
    """Due sources in, batches out: `mark_due` from any thread, one batch at a time.

    `run_due` is one pass (tests call it directly); `start_runner` runs it in a thread whenever
    something is due. `crawl` is injectable: by default `monitor.runtime.crawl.run_crawl` in a
    child process.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        sources: Mapping[str, SourceConfig],
        lease: SchedulerLease,
        *,
        crawl: CrawlFunction | None = None,
        crawl_timeout: float = DEFAULT_CRAWL_TIMEOUT,
        batch_window: float = BATCH_WINDOW_SECONDS,
        max_batch: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.sources = dict(sources)
        self.lease = lease
        self.crawl = crawl or self._run_crawl
        self.crawl_timeout = crawl_timeout
        self.batch_window = batch_window
        self.max_batch = max_batch or settings.scheduler_max_batch
        self.clock = clock
        #: The deployment's stable offset added to every fire time (`monitor.runtime.timetable`).
        self.offset = schedule_offset(settings.scheduler_jitter, settings.database_url)
        #: Shared mode: several daemons on one database claim sources one by one instead of
        #: one daemon holding the whole database ("scheduler" lease).
        self.shared = settings.scheduler_shared
        self.stopping = threading.Event()
        #: Called after each batch that crawled (the daemon wakes the alert sender with it).
        self.after_batch: Callable[[], None] | None = None
        self._due: set[str] = set()
        self._due_lock = threading.Lock()
        self._wake = threading.Event()  # set while something is due (or when stopping)
        self._crawl_lock = threading.Lock()  # one batch at a time, whoever calls run_due
        self._runner: threading.Thread | None = None

    def _run_crawl(self, batch: Sequence[SourceConfig]) -> CrawlSummary:
        return run_crawl(self.engine, self.settings, batch, timeout=self.crawl_timeout)

    # -- what is due ---------------------------------------------------------------------------

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

    # -- one batch -----------------------------------------------------------------------------

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

    # -- the runner thread ---------------------------------------------------------------------

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
            join_awake(self._runner)  # a second SIGTERM still exits at once
            self._runner = None

    def stop(self) -> None:
        """No new crawl starts; the runner returns after the running one."""
        self.stopping.set()
        self._wake.set()
