"""The Scrapy item pipeline that hands spider items to the history writer.

It is the clock and transaction boundary. A source's observations wait for its `SourceFetch`;
then the source is recorded with the others whose fetch ended within `GROUP_WAIT` of the group's
first (at most `GROUP` sources, `BATCH` observations): each source's batch is planned and
reviewed, then all of them are written in a few multi-row statements with their changes, alert
rows and fetch records (new validators, any removal they imply), in one transaction. A source
of more than `BATCH` observations is recorded alone, a transaction per batch, its fetch record
last; between its batches the reactor runs, so SIGTERM and `--crawl-timeout` stop a huge feed
within seconds. A crash or a stop leaves whole versions only: the old validators make the next
crawl fetch what was not recorded, and what was is then unchanged. If a group fails, each of its
sources is recorded again alone, so one source that cannot be recorded never holds back the
others.

Before anything of a batch is written it is reviewed (`monitor.runtime.second_look`): a suspicious
edit is held back for a second fetch a few seconds later, or fails the fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from db.engine import open_database
from db.models import Snapshot, Source
from monitor.config import Settings
from monitor.history.batch import BatchPlan, Unrecordable
from monitor.history.snapshots import SourceState, load_snapshots
from monitor.history.writer import HistoryWriter
from monitor.items import NOT_MODIFIED, Observation, SourceFetch
from monitor.runtime import second_look
from monitor.runtime.second_look import failed, held, stopped
from monitor.sources import SourceConfig

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

UNCHANGED_BATCH = 500
#: Observations recorded per transaction; the reactor runs (signals, timeouts) between batches.
BATCH = 500
#: Sources recorded together at most (one transaction: the write lock is held ~20–60 ms).
GROUP = 10
#: Seconds a group waits for more sources after its first.
GROUP_WAIT = 0.05


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
        #: Sources waiting to be recorded together at the end of the reactor's turn.
        self.group: list[tuple[SourceFetch, list[Observation], asyncio.Future[None]]] = []
        self.group_size = 0
        self.flush_timer: asyncio.TimerHandle | None = None
        self.engine = open_database(self.config.database_url)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def open_spider(self) -> None:
        if self.owns_run:  # a plain `scrapy crawl`: the crawl is its own run
            with Session(self.engine) as session:
                self.writer.open_run(session, datetime.now(UTC))

    def close_spider(self) -> None:
        self._flush_group()
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
            if len(observations) > BATCH:
                for attempt in (1, 2):
                    try:
                        await self._record_large(item, observations)
                        break
                    except IntegrityError:
                        if attempt == 2:  # as in `_retrying`
                            raise
            else:
                await self._join_group(item, observations)
            self.seen.add(item.source_id)
        return item

    async def _join_group(self, fetch: SourceFetch, observations: list[Observation]) -> None:
        """Wait until this source is recorded, together with the others ready by then.

        A group is written once it is full or `GROUP_WAIT` after its first source: a crawl whose
        responses come in faster than one at a time records them in one transaction and a few
        multi-row statements (a page on its own cost ~3 ms of SQLAlchemy and SQLite, mostly
        fixed per statement), and no source waits long.
        """
        if fetch.source_id in {member.source_id for member, _, _ in self.group}:
            self._flush_group()  # the source's second fetch (a second look): its first goes first
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self.group.append((fetch, observations, done))
        self.group_size += len(observations) or 1
        if len(self.group) >= GROUP or self.group_size >= BATCH:
            self._flush_group()
        elif self.flush_timer is None:
            self.flush_timer = loop.call_later(GROUP_WAIT, self._flush_group)
        await done

    def _flush_group(self) -> None:
        """Record the waiting sources; each waiter learns its own source's outcome."""
        if self.flush_timer is not None:
            self.flush_timer.cancel()
        group, self.group, self.group_size, self.flush_timer = self.group, [], 0, None
        if not group:
            return
        members = [(fetch, observations) for fetch, observations, _ in group]
        try:
            errors = self._settle(members)
        except Exception as error:  # a second look not asked for: no waiter is left hanging
            errors = [error] * len(group)
        for (_, _, done), outcome in zip(group, errors, strict=True):
            if done.done():  # its waiter was cancelled (a crawl stopped hard): nobody to tell
                continue
            if outcome is None:
                done.set_result(None)
            else:
                done.set_exception(outcome)

    def _settle(self, group: list[tuple[SourceFetch, list[Observation]]]) -> list[Exception | None]:
        """Record a group; if that fails, each source alone, so one cannot sink the others.

        A unique-key clash (another process stored the same version first) is retried once, the
        way a lone source always was. The second looks the group asked for are requested once
        its transaction has committed.
        """
        try:
            second_looks = self._retrying(lambda: self._record_group(group))
        except Exception as error:
            if len(group) == 1:
                return [error]
            return [self._settle([member])[0] for member in group]
        self._ask_second_looks(second_looks)
        return [None] * len(group)

    @staticmethod
    def _retrying(record: Callable[[], dict[str, dict[str, str]]]) -> dict[str, dict[str, str]]:
        """`record()`, once more after a unique-key clash: the retry reads the other's rows."""
        for attempt in (1, 2):
            try:
                return record()
            except IntegrityError:
                # Another process recorded the same version first; the retry sees its rows.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

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

    def _record_group(
        self, group: Sequence[tuple[SourceFetch, Sequence[Observation]]]
    ) -> dict[str, dict[str, str]]:
        """Sources of at most one batch each: planned and reviewed one by one, written at once.

        A source held for a second look or failed by its review writes nothing but its fetch
        record; the others' versions, documents and changes go in together, then every fetch
        record, in one transaction. Returns the sources held for a second look.
        """
        now = datetime.now(UTC)
        second_looks: dict[str, dict[str, str]] = {}
        with Session(self.engine, expire_on_commit=False) as session:
            states = self.writer.states(session, [fetch.source_id for fetch, _ in group])
            records: list[tuple[SourceFetch, int, Source | None]] = []  # (fetch, changes, row)
            planned: list[tuple[SourceFetch, BatchPlan | None]] = []
            for fetch, observations in group:
                state = states[fetch.source_id]
                try:
                    plan = self._plan(session, fetch, observations, now, state)
                except Aborted as aborted:
                    records.append((aborted.fetch, 0, state.row))
                    continue
                planned.append((fetch, plan))
            refs = {i for _, plan in planned if plan for i in plan.stored_refs()}
            stored = load_snapshots(session, refs)
            kept: list[tuple[SourceFetch, BatchPlan | None]] = []
            for fetch, plan in planned:
                try:
                    self._check(fetch, plan, stored, second_looks)
                except Aborted as aborted:
                    records.append((aborted.fetch, 0, states[fetch.source_id].row))
                    continue
                kept.append((fetch, plan))
            plans = [plan for _, plan in kept if plan]
            made = iter(self.writer.write_plans(session, plans, stored))
            for fetch, plan in kept:
                changes = len(next(made)) if plan else 0
                records.append((fetch, changes, states[fetch.source_id].row))
            self.writer.record_fetches(session, records, now)
            session.commit()
        return second_looks

    async def _record_large(self, fetch: SourceFetch, observations: list[Observation]) -> None:
        """A source of more than one batch, alone: a transaction per batch, its fetch record last.

        Between batches the reactor runs; a stop that arrived meanwhile ends the recording
        there: what was committed is whole versions, and the old validators make the next crawl
        fetch the rest.
        """
        source = self.sources[fetch.source_id]
        now = datetime.now(UTC)
        second_looks: dict[str, dict[str, str]] = {}
        with Session(self.engine, expire_on_commit=False) as session:
            state = self.writer.state(session, source.id)
            changes = 0
            try:
                for start in range(0, len(observations), BATCH):
                    if start:
                        session.commit()
                        await asyncio.sleep(0)  # let the reactor see a stop signal or a timeout
                        if not self.crawler.crawling:
                            progress = f"{start} of {len(observations)} documents recorded"
                            raise Aborted(stopped(fetch, progress))
                    batch = observations[start : start + BATCH]
                    plan = self._plan(session, fetch, batch, now, state)
                    stored = load_snapshots(session, plan.stored_refs() if plan else ())
                    self._check(fetch, plan, stored, second_looks)
                    changes += sum(len(made) for made in self.writer.write_plans(
                        session, [plan] if plan else [], stored))  # fmt: skip
            except Aborted as aborted:
                session.rollback()
                self.writer.record_fetch(session, aborted.fetch, now)
                session.commit()
                self._ask_second_looks(second_looks)
                return
            self.writer.record_fetch(session, fetch, now, changes, row=state.row)
            session.commit()

    def _plan(
        self,
        session: Session,
        fetch: SourceFetch,
        observations: Sequence[Observation],
        now: datetime,
        state: SourceState,
    ) -> BatchPlan | None:
        """What a batch would record; an observation that cannot be normalized fails the fetch.

        Planning writes nothing. It may note on the source's row when it was first fetched,
        which a batch that is then not written leaves set: only a first fetch sets it, and a
        first fetch has no edit a review could hold, and is normalized whole before planning.
        """
        if not observations:
            return None
        try:
            return self.writer.plan_batch(session, observations, now, state)
        except Unrecordable as error:  # a parser limit, a RecursionError: say which and why
            raise Aborted(failed(fetch, str(error)[:300])) from error

    def _check(
        self,
        fetch: SourceFetch,
        plan: BatchPlan | None,
        stored: dict[int, Snapshot],
        second_looks: dict[str, dict[str, str]],
    ) -> None:
        """Raise `Aborted` when the review holds the batch for a second look or fails it."""
        if plan is None:
            return
        source = self.sources[fetch.source_id]
        review = second_look.review(source, fetch, plan.edits(stored), self.held)
        if review.action == "record":
            return
        if review.action == "hold":
            second_looks[source.id] = review.held or {}
            raise Aborted(held(fetch, review.reason, self.config.second_look_delay))
        raise Aborted(failed(fetch, review.reason))

    def _ask_second_looks(self, held: dict[str, dict[str, str]]) -> None:
        """Fetch each held source once more after `second_look_delay` (its hold is committed)."""
        for source_id, doubtful in held.items():
            self.held[source_id] = doubtful
            spider = self.crawler.spider
            assert spider is not None and self.crawler.engine is not None
            request = spider.second_look_request(source_id, self.config.second_look_delay)
            self.crawler.engine.crawl(request)


