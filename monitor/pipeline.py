"""The Scrapy item pipeline that hands spider items to the history writer.

It is the clock and transaction boundary: every item is recorded in its own short transaction
(an observation with its change and alert rows; a fetch record with the new validators), so a
crash loses at most the item in flight and a re-run records it again, once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from db.engine import open_database
from db.models import CrawlRun
from monitor import history
from monitor.config import Settings
from monitor.sources import SourceConfig
from spiders.items import NOT_MODIFIED, Observation, SourceFetch

UNCHANGED_BATCH = 500

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


class HistoryPipeline:
    """Records `Observation` and `SourceFetch` items; owns the crawl run when run standalone."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.config: Settings = settings["FDAWATCH_SETTINGS"]
        self.sources = {
            key: SourceConfig.coerce(value)
            for key, value in settings.getdict("FDAWATCH_SOURCES").items()
        }
        self.run_id: int | None = settings.getint("FDAWATCH_RUN_ID") or None
        self.owns_run = self.run_id is None
        self.pending: dict[str, list[Observation]] = {}
        self.unchanged: list[SourceFetch] = []
        self.seen: set[str] = set()
        self.engine = open_database(self.config.database_url)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def open_spider(self) -> None:
        if self.owns_run:
            with Session(self.engine) as session:
                history.sync_sources(session, list(self.sources.values()))
                run = CrawlRun(started_at=datetime.now(UTC), source_ids=[])
                session.add(run)
                session.commit()
                self.run_id = run.id

    def close_spider(self) -> None:
        self._record_unchanged()
        if self.owns_run and self.run_id is not None:
            with Session(self.engine) as session:
                run = session.get(CrawlRun, self.run_id)
                assert run is not None
                run.source_ids = sorted({*run.source_ids, *self.seen})
                history.finish_run(session, run, datetime.now(UTC))
                session.commit()
        self.engine.dispose()

    def process_item(self, item: Any) -> Any:
        """Observations wait for their source's SourceFetch; then all land in one transaction.

        A source's documents and its fetch record commit together, so a crash mid-source leaves
        nothing half-recorded: the validators stay old and the next crawl records it all again.
        """
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
                    self._record_source(item, observations)
                    break
                except IntegrityError:
                    # Another process recorded the same version first; the retry sees its rows.
                    if attempt == 2:
                        raise
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
            history.record_not_modified(
                session, batch, datetime.now(UTC), sources=self.sources,
                recipients=self.config.recipients, run_id=self.run_id,
                failure_threshold=self.config.failure_threshold,
            )  # fmt: skip
            session.commit()
        self.seen.update(fetch.source_id for fetch in batch)

    def _record_source(self, fetch: SourceFetch, observations: list[Observation]) -> None:
        now = datetime.now(UTC)
        source = self.sources[fetch.source_id]
        recipients = self.config.recipients
        with Session(self.engine) as session:
            state = history.SourceState.load(session, source.id)
            changes = 0
            for observation in observations:
                change = history.record(
                    session, observation, now, source=source, recipients=recipients,
                    run_id=self.run_id, state=state,
                )  # fmt: skip
                changes += change is not None
            history.record_fetch(
                session, fetch, now, source=source, recipients=recipients, run_id=self.run_id,
                changes=changes, failure_threshold=self.config.failure_threshold, row=state.row,
            )  # fmt: skip
            session.commit()
        self.seen.add(fetch.source_id)
