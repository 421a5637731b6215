"""The Scrapy item pipeline that hands spider items to the history writer.

It is the clock and transaction boundary. A source's observations wait for its `SourceFetch`;
then they are recorded in batches of `BATCH`, one short transaction each (an observation with its
change and alert rows), and the fetch record (with the new validators, and any removal it
implies) commits last. A crash or a stop between batches leaves whole versions only: the old
validators make the next crawl fetch the source again, and what was recorded is then unchanged.
Between batches the reactor runs, so SIGTERM and `--crawl-timeout` stop a huge feed within
seconds instead of after it (the write lock is held per batch, not per source).

Before a batch commits, its changes are reviewed (`monitor.core.suspect`): a page whose text shrank
to a fraction, or gained replacement characters, is held back — nothing of it is recorded, a `held`
fetch row says why — and the spider fetches it once more after `[crawl] second_look_delay` seconds.
The change is raised only if the second look agrees; if it disagrees the fetch fails as "content
unstable". A watched region that now reads like an error page is a failed fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from db.engine import open_database
from db.models import Change
from monitor.config import Settings
from monitor.core import suspect
from monitor.history.batch import Unrecordable
from monitor.history.snapshots import SourceState, load_snapshots
from monitor.history.writer import HistoryWriter
from monitor.items import FAILED, HELD, NOT_MODIFIED, Observation, SourceFetch
from monitor.sources import SourceConfig

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

UNCHANGED_BATCH = 500
#: Observations recorded per transaction; the reactor runs (signals, timeouts) between batches.
BATCH = 500
#: Only these kinds are fetched again for a second look (one request gives the whole document).
SECOND_LOOK_KINDS = ("page", "feed")


@dataclass(frozen=True)
class Review:
    """What to do with a batch: record it, hold it for a second look, or fail the fetch."""

    action: str  # "record" / "hold" / "fail"
    reason: str = ""
    held: dict[str, str] | None = None  # doc key → hash of the version held back


class Aborted(Exception):
    """Recording a source stopped early; its fetch is recorded as `fetch` says instead."""

    def __init__(self, fetch: SourceFetch) -> None:
        super().__init__(fetch.error)
        self.fetch = fetch


class HistoryPipeline:
    """Records `Observation` and `SourceFetch` items; owns the crawl run when run standalone."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.config: Settings = settings["FDAWATCH_SETTINGS"]
        self.sources = {
            key: SourceConfig.coerce(value)
            for key, value in settings.getdict("FDAWATCH_SOURCES").items()
        }
        run_id: int | None = settings.getint("FDAWATCH_RUN_ID") or None
        self.owns_run = run_id is None
        self.writer = HistoryWriter.for_settings(self.config, self.sources, run_id)
        self.pending: dict[str, list[Observation]] = {}
        self.unchanged: list[SourceFetch] = []
        self.seen: set[str] = set()
        #: Sources held for a second look in this crawl: doc key → hash the first look saw.
        self.held: dict[str, dict[str, str]] = {}
        self.engine = open_database(self.config.database_url)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def open_spider(self) -> None:
        if self.owns_run:  # a plain `scrapy crawl`: the crawl is its own run
            with Session(self.engine) as session:
                self.writer.open_run(session, datetime.now(UTC))

    def close_spider(self) -> None:
        self._record_unchanged()
        if self.owns_run and self.writer.run_id is not None:
            with Session(self.engine) as session:
                self.writer.finish_run(session, datetime.now(UTC), reported=sorted(self.seen))
                session.commit()
        self.engine.dispose()

    async def process_item(self, item: Any) -> Any:
        """Observations wait for their source's SourceFetch; then all of it is recorded."""
        if isinstance(item, Observation):
            self.pending.setdefault(item.source_id, []).append(item)
        elif isinstance(item, SourceFetch):
            observations = self.pending.pop(item.source_id, [])
            if item.outcome == NOT_MODIFIED and not observations:
                self.unchanged.append(item)  # nothing to record but health: write them in bulk
                if len(self.unchanged) >= UNCHANGED_BATCH:
                    self._record_unchanged()
                return item
            for attempt in (1, 2):
                try:
                    await self._record_source(item, observations)
                    break
                except IntegrityError:
                    # Another process recorded the same version first; the retry sees its rows.
                    if attempt == 2:
                        raise
            self.seen.add(item.source_id)
        return item

    def _record_unchanged(self) -> None:
        """The fetch records of 304 answers, many per transaction (one each costs ~1.5 ms).

        Losing them in a crash loses no content: the sources are simply fetched again, and the
        run counts them as not reported (one failure each), like every source the crash cut off.
        `close_spider` writes what is left, also when a timeout stops the crawl.
        """
        if not self.unchanged:
            return
        batch, self.unchanged = self.unchanged, []
        with Session(self.engine) as session, session.no_autoflush:
            self.writer.record_not_modified(session, batch, datetime.now(UTC))
            session.commit()
        self.seen.update(fetch.source_id for fetch in batch)

    async def _record_source(self, fetch: SourceFetch, observations: list[Observation]) -> None:
        """A source's documents in batches, then its fetch record (or why it stopped)."""
        source = self.sources[fetch.source_id]
        now = datetime.now(UTC)
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                changes = await self._record_observations(session, source, fetch, observations, now)
            except Aborted as aborted:
                session.rollback()
                self._record_fetch(session, source, aborted.fetch, now)
                session.commit()
                return
            self._record_fetch(session, source, fetch, now, changes)
            session.commit()

    async def _record_observations(
        self,
        session: Session,
        source: SourceConfig,
        fetch: SourceFetch,
        observations: Sequence[Observation],
        now: datetime,
    ) -> int:
        """Record every observation, a batch per transaction; return the number of changes."""
        if not observations:
            return 0
        state = self.writer.state(session, source.id)
        changes = 0
        for start in range(0, len(observations), BATCH):
            if start:
                session.commit()
                await asyncio.sleep(0)  # let the reactor see a stop signal or a timeout
                if not self.crawler.crawling:
                    raise Aborted(
                        stopped(fetch, f"{start} of {len(observations)} documents recorded")
                    )
            batch = self._record_batch(
                session, source, fetch, observations[start : start + BATCH], now, state
            )
            review = self._review(session, source, fetch, batch)
            if review.action == "hold":
                self.held[source.id] = review.held or {}
                self._ask_second_look(source)
                raise Aborted(held(fetch, review.reason, self.config.second_look_delay))
            if review.action == "fail":
                raise Aborted(failed(fetch, review.reason))
            changes += len(batch)
        return changes

    def _record_batch(
        self,
        session: Session,
        source: SourceConfig,
        fetch: SourceFetch,
        batch: Sequence[Observation],
        now: datetime,
        state: SourceState,
    ) -> list[Change]:
        """The changes one batch makes; an observation that cannot be recorded fails the fetch."""
        try:
            return self.writer.record_batch(session, batch, now, state)
        except Unrecordable as error:  # a parser limit, a RecursionError: say which and why
            raise Aborted(failed(fetch, str(error)[:300])) from error

    def _review(
        self, session: Session, source: SourceConfig, fetch: SourceFetch, changes: list[Change]
    ) -> Review:
        """Record, hold for a second look, or fail: see `monitor.core.suspect`."""
        doubtful: dict[str, str] = {}
        reasons: list[str] = []
        edited = [change for change in changes if change.kind == "changed"]
        snapshots = load_snapshots(
            session, [i for c in edited for i in (c.old_snapshot_id, c.new_snapshot_id) if i]
        )
        for change in edited:
            old = snapshots[change.old_snapshot_id or 0]
            new = snapshots[change.new_snapshot_id or 0]
            why = suspect.suspicion(old.text, new.text)
            if why is None:
                continue
            message = suspect.error_page(new.text)
            if message:
                return Review(
                    "fail",
                    f"the watched region of {change.doc_key} now reads like an error page "
                    f"({message!r}): not recorded as a version",
                )
            doubtful[change.doc_key] = new.sha256
            reasons.append(f"{change.doc_key}: {why}")
        if not doubtful:
            return Review("record")
        if fetch.second_look:
            first = self.held.get(source.id, {})
            if all(first.get(key) == sha for key, sha in doubtful.items()):
                return Review("record")  # the second look agrees: believe it
            return Review(
                "fail",
                "content unstable: a second fetch a few seconds later disagreed with the first "
                f"({'; '.join(reasons)})",
            )
        if source.kind not in SECOND_LOOK_KINDS or source.id in self.held:
            return Review("record")
        return Review("hold", "; ".join(reasons), doubtful)

    def _ask_second_look(self, source: SourceConfig) -> None:
        spider = self.crawler.spider
        assert spider is not None and self.crawler.engine is not None
        request = spider.second_look_request(source.id, self.config.second_look_delay)
        self.crawler.engine.crawl(request)

    def _record_fetch(
        self,
        session: Session,
        source: SourceConfig,
        fetch: SourceFetch,
        now: datetime,
        changes: int = 0,
    ) -> None:
        self.writer.record_fetch(session, fetch, now, changes)


def stopped(fetch: SourceFetch, progress: str) -> SourceFetch:
    """The fetch record of a source whose recording a stop signal or timeout cut short."""
    return failed(
        fetch, f"crawl stopped while recording ({progress}); the next crawl records the rest"
    )


def held(fetch: SourceFetch, reason: str, delay: float) -> SourceFetch:
    return _as(fetch, HELD, f"held for a second look in {delay:g} s: {reason}")


def failed(fetch: SourceFetch, reason: str) -> SourceFetch:
    return _as(fetch, FAILED, reason)


def _as(fetch: SourceFetch, outcome: str, error: str) -> SourceFetch:
    """The same fetch with another outcome: no validators, no document keys (nothing recorded)."""
    return SourceFetch(
        source_id=fetch.source_id,
        url=fetch.url,
        outcome=outcome,
        fetched_at=fetch.fetched_at,
        http_status=fetch.http_status,
        error=error[:300],
        bytes=fetch.bytes,
        duration_ms=fetch.duration_ms,
        final_url=fetch.final_url,
        server=fetch.server,
        second_look=fetch.second_look,
    )
