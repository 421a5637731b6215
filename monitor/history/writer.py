"""The only writer of the history: crawl runs, observations, fetches and source health.

`HistoryWriter` is made once per crawl (or test) from the deployment's settings and the sources
being crawled; it alone opens and closes `CrawlRun`s, turns observations into snapshots and
changes, and records how each fetch went. An observation is normalized, hashed and compared with
its document's current snapshot. Same hash: nothing new. A new document: a baseline snapshot (the
first fetch of a source never raises changes) or, after the baseline, a `new` change. A different
hash: a new snapshot and a `changed` change with its diff. A fetch record keeps the validators,
confirms removals, notes moves and keeps the source's health. A failed fetch is never a content
change. Nothing here commits: the caller owns the transaction, so a change and its alert rows
land together or not at all. This module never loads email rendering (only the outbox rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from db.engine import in_batches
from db.models import Change, CrawlRun, Fetch, HostBackoff, Snapshot, Source
from monitor.config import Recipient, Settings
from monitor.history.batch import BatchPlan, prepare, write_plans
from monitor.history.changes import ChangeWriter
from monitor.history.health import DEFAULT_BACKOFF, UNHEALTHY, HealthKeeper
from monitor.history.snapshots import SourceState, unregistered
from monitor.items import BLOCKED, FAILED, GONE, HELD, NOT_MODIFIED, OK, Observation, SourceFetch
from monitor.sources import RESULT_SET_KINDS, SourceConfig, host_key

#: How long `HistoryWriter.refused_hosts` trusts what it read of the back-off table.
REFUSALS_REFRESH = timedelta(seconds=60)


def source_rows(session: Session, ids: Iterable[str]) -> dict[str, Source]:
    """The `Source` rows of `ids` that exist: one query per 500 sources, not one per source."""
    rows: dict[str, Source] = {}
    for chunk in in_batches(sorted(set(ids))):
        rows.update(
            (row.id, row) for row in session.exec(select(Source).where(col(Source.id).in_(chunk)))
        )
    return rows


class HistoryWriter:
    """Writes one crawl's history: its run, observations, fetches and the sources' health."""

    def __init__(
        self,
        sources: Mapping[str, SourceConfig] | Iterable[SourceConfig],
        *,
        recipients: Sequence[Recipient] = (),
        failure_threshold: int = 3,
        backoff: tuple[float, float] = DEFAULT_BACKOFF,
        run_id: int | None = None,
    ) -> None:
        self.sources = dict(
            sources.items() if isinstance(sources, Mapping) else ((s.id, s) for s in sources)
        )
        self.recipients = tuple(recipients)
        self.health = HealthKeeper(self.recipients, failure_threshold, backoff)
        self.changes = ChangeWriter(self.recipients, run_id)
        self._refused: set[str] = set()
        self._refused_at: datetime | None = None

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        sources: Mapping[str, SourceConfig] | Iterable[SourceConfig],
        run_id: int | None = None,
    ) -> HistoryWriter:
        return cls(
            sources,
            recipients=settings.recipients,
            failure_threshold=settings.failure_threshold,
            backoff=(settings.blocked_backoff, settings.blocked_backoff_max),
            run_id=run_id,
        )

    @property
    def run_id(self) -> int | None:
        return self.changes.run_id

    # -- runs ------------------------------------------------------------------------------------

    def sync_sources(self, session: Session) -> None:
        """Create or update the `Source` rows; a new URL forgets the old validators."""
        known = source_rows(session, self.sources)
        for config in self.sources.values():
            row = known.get(config.id)
            if row is None:
                session.add(
                    Source(id=config.id, kind=config.kind, url=config.url, title=config.title)
                )
                continue
            if (row.kind, row.url, row.title) == (config.kind, config.url, config.title) and (
                config.follow_documents or row.documents_since is None
            ):
                continue  # the common case: setting equal values still costs ~20 µs a row
            if row.url != config.url:
                row.etag = row.last_modified = None
            if not config.follow_documents:
                row.documents_since = None  # following again later starts a new baseline
            row.kind, row.url, row.title = config.kind, config.url, config.title
            session.add(row)

    def open_run(self, session: Session, now: datetime, source_ids: Sequence[str] = ()) -> int:
        """Register the sources and open a crawl run; later writes belong to it. Commits."""
        self.sync_sources(session)
        run = CrawlRun(started_at=now, source_ids=list(source_ids))
        session.add(run)
        session.commit()
        assert run.id is not None
        self.changes = ChangeWriter(self.recipients, run.id)
        return run.id

    def finish_run(
        self,
        session: Session,
        now: datetime,
        status: str = "finished",
        reported: Sequence[str] = (),
    ) -> CrawlRun:
        """Close the run: its counts come from the fetch records written during it.

        A selected source with no fetch record (the crawl process died, or was killed on its
        timeout) gets a failed fetch, so its failures in a row stay honest and a source that hangs
        the crawler raises a "source failing" notice like any other broken source.
        `reported` adds sources a standalone `scrapy crawl` chose by itself.
        """
        run = session.get(CrawlRun, self.run_id)
        assert run is not None
        run.source_ids = sorted({*run.source_ids, *reported})
        rows = session.exec(
            select(Fetch.source_id, Fetch.outcome, Fetch.changes)
            .where(Fetch.run_id == run.id)
            .order_by(col(Fetch.id))  # a source fetched twice in a run counts by its last fetch
        ).all()
        last = {source_id: (outcome, changes) for source_id, outcome, changes in rows}
        for source_id in run.source_ids:
            source = self.sources.get(source_id)
            if source_id not in last and source is not None:
                error = f"crawl process {status}: no response recorded"
                self.record_fetch(
                    session, SourceFetch(source_id, source.url, FAILED, now, error=error), now
                )
                last[source_id] = (FAILED, 0)
        run.checked = len(run.source_ids)
        run.changed = sum(1 for _, changes in last.values() if changes > 0)
        run.failed = sum(1 for outcome, _ in last.values() if outcome in (*UNHEALTHY, HELD))
        run.failed += sum(1 for source_id in run.source_ids if source_id not in last)
        run.unchanged = run.checked - run.changed - run.failed
        run.finished_at = now
        run.status = status
        session.add(run)
        return run

    # -- observations ----------------------------------------------------------------------------

    def state(self, session: Session, source_id: str) -> SourceState:
        """Load a source's state once per fetch, for all its observations."""
        return SourceState.load(session, source_id)

    def states(self, session: Session, source_ids: Iterable[str]) -> dict[str, SourceState]:
        """The states of several sources recorded together, in two queries."""
        return SourceState.load_many(session, source_ids)

    def record_observation(
        self,
        session: Session,
        observation: Observation,
        now: datetime,
        state: SourceState | None = None,
    ) -> Change | None:
        """Record one observation; return the change it makes, if any (nothing is committed).

        Pass the same `state` for every observation of one fetch (see `SourceState`).
        """
        made = self.record_batch(session, [observation], now, state)
        return made[0] if made else None

    def record_batch(
        self,
        session: Session,
        observations: Sequence[Observation],
        now: datetime,
        state: SourceState | None = None,
    ) -> list[Change]:
        """Record observations of one source, in order; return the changes (nothing committed).

        The same as recording them one by one, written as set operations: the texts are
        normalized first, then the batch's bodies, snapshots and documents go in as a few
        multi-row statements, then its changes with their alert rows. An observation that cannot
        be normalized raises `Unrecordable` naming it, before anything is written.
        """
        if not observations:
            return []
        return self.plan_batch(session, observations, now, state).write(self.changes)

    def plan_batch(
        self,
        session: Session,
        observations: Sequence[Observation],
        now: datetime,
        state: SourceState | None = None,
    ) -> BatchPlan:
        """Decide what a batch of one source's observations records, writing nothing yet.

        It only reads (earlier versions a document may flip back to) and updates `state` in
        memory; `write_plans` then writes it, alone or with other sources' batches.
        """
        source = self.sources[observations[0].source_id]
        if any(observation.source_id != source.id for observation in observations):
            raise ValueError("record_batch takes the observations of one source")
        state = state or SourceState.load(session, source.id)
        prepared = [prepare(observation, state) for observation in observations]
        plan = BatchPlan(session, source, state, now)
        plan.prefetch_earlier(prepared)
        for observation, input_sha, normalized in prepared:
            plan.add(observation, input_sha, normalized)
        return plan

    def write_plans(
        self,
        session: Session,
        plans: Sequence[BatchPlan],
        stored: dict[int, Snapshot] | None = None,
    ) -> list[list[Change]]:
        """Write planned batches (of one or several sources) and their changes; no commit."""
        return write_plans(session, plans, self.changes, stored)

    # -- fetches ---------------------------------------------------------------------------------

    def record_fetch(
        self,
        session: Session,
        fetch: SourceFetch,
        now: datetime,
        changes: int = 0,
        row: Source | None = None,
    ) -> Fetch:
        """Record how a fetch went; keep validators only from a fully recorded 200 response.

        `row` is the source's row when the caller already loaded it.
        """
        entry = Fetch(**self._account(session, fetch, now, changes, row))
        session.add(entry)
        return entry

    def record_fetches(
        self,
        session: Session,
        fetches: Sequence[tuple[SourceFetch, int, Source | None]],
        now: datetime,
    ) -> None:
        """`record_fetch` for each (fetch, changes, row) of a group, the rows as one INSERT.

        As ORM objects, the fetch rows cost ~0.1 ms each more (1,000: 117 ms, now 20 ms).
        """
        values = [self._account(session, fetch, now, n, row) for fetch, n, row in fetches]
        if values:
            session.execute(insert(Fetch), values)

    def _account(
        self, session: Session, fetch: SourceFetch, now: datetime, changes: int, row: Source | None
    ) -> dict[str, Any]:
        """Everything a fetch record does but the row itself (whose values it returns)."""
        source = self.sources[fetch.source_id]
        row = row or session.get(Source, source.id)
        if row is None:
            raise unregistered(source.id)
        if fetch.outcome == GONE and source.kind == "page":
            changes += self.changes.gone(session, now, source)
        if fetch.outcome == OK and source.kind in RESULT_SET_KINDS:
            changes += self.changes.absent(session, fetch, now, source)
        if fetch.outcome == OK:
            row.etag, row.last_modified = fetch.etag, fetch.last_modified
            changes += self.changes.moved(session, row, fetch, now, source)
        if fetch.outcome == OK and source.follow_documents:
            changes += self.record_links(session, row, fetch, now, source)
        host = host_key(fetch.url)
        if fetch.outcome == BLOCKED:
            self.health.note_refusal(session, fetch, now)
            self._refused.add(host)
        elif fetch.outcome in (OK, NOT_MODIFIED, GONE) and host in self.refused_hosts(session, now):
            self.health.forget_refusals(session, {host})
        self.health.update(session, row, fetch, now, source)
        return _fetch_values(fetch, self.run_id, changes)

    def refused_hosts(self, session: Session, now: datetime) -> set[str]:
        """Hosts that may have a back-off row, read at most once per `REFUSALS_REFRESH`.

        Asking the table on every successful fetch cost ~4 % of a baseline crawl (one query per
        source, for a table that is nearly always empty). Between reads the set only grows: a
        host stays in it after its row is deleted (costing one DELETE of nothing), so a rolled
        back transaction cannot hide a row. A refusal recorded meanwhile by another process is
        seen at the next read.
        """
        age = None if self._refused_at is None else now - self._refused_at
        if age is None or not timedelta(0) <= age < REFUSALS_REFRESH:
            self._refused = set(session.exec(select(HostBackoff.host)))
            self._refused_at = now
        return self._refused

    def record_links(
        self, session: Session, row: Source, fetch: SourceFetch, now: datetime, source: SourceConfig
    ) -> int:
        """A complete fetch of a source that follows its documents: the links it still has.

        The first one ends the documents' baseline. A document no longer linked (or answering
        404) counts towards its removal, noted on the page's change; an API source's result set
        already counts its absences.
        """
        if row.documents_since is None:
            row.documents_since = now
        self.changes.relinked(session, source, fetch.document_keys)
        if source.kind in RESULT_SET_KINDS:
            return 0
        return self.changes.unlinked(session, fetch, now, source)

    def record_not_modified(
        self, session: Session, fetches: Sequence[SourceFetch], now: datetime
    ) -> None:
        """Record many 304 answers at once: what `record_fetch` does, in a few statements.

        A 304 carries no content, so only the sources' health changes (a source failing before
        recovers, with its notice); the fetch rows go in as one multi-row INSERT instead of one
        ORM object each. An unchanged pass of a thousand sources is mostly this.
        """
        if any(fetch.outcome != NOT_MODIFIED for fetch in fetches):
            raise ValueError("record_not_modified takes only NOT_MODIFIED fetches")
        rows = source_rows(session, [fetch.source_id for fetch in fetches])
        for fetch in fetches:
            row = rows.get(fetch.source_id)
            if row is None:
                raise unregistered(fetch.source_id)
            self.health.update(session, row, fetch, now, self.sources[fetch.source_id])
        if fetches:
            if self.health.any_refusals(session):
                self.health.forget_refusals(session, {host_key(fetch.url) for fetch in fetches})
            values = [_fetch_values(fetch, self.run_id, 0) for fetch in fetches]
            session.execute(insert(Fetch), values)


def _fetch_values(fetch: SourceFetch, run_id: int | None, changes: int) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "source_id": fetch.source_id,
        "url": fetch.url,
        "outcome": fetch.outcome,
        "http_status": fetch.http_status,
        "error": fetch.error,
        "documents": fetch.documents,
        "changes": changes,
        "bytes": fetch.bytes,
        "duration_ms": fetch.duration_ms,
        "fetched_at": fetch.fetched_at,
        "final_url": fetch.final_url,
        "server": fetch.server,
    }
