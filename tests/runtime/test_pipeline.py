"""The history pipeline: batches that a stop can cut between, bodies hashed once, failures named.

Driven directly (no reactor): a stand-in crawler carries the settings and the `crawling` flag a
SIGTERM or `--crawl-timeout` clears.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from db.models import Blob, Change, Document, Fetch, Source
from monitor.config import Settings
from monitor.history import batch, blobs
from monitor.items import OK, Observation, SourceFetch
from monitor.runtime import pipeline
from monitor.sources import SourceConfig
from tests.support.clock import T0
from tests.support.sources import make_source

FEED = make_source(id="big_feed", kind="feed", url="https://www.fda.gov/rss.xml", tier="T3")


@dataclass
class Crawler:
    """What HistoryPipeline reads from a Scrapy crawler (`engine.crawl` and the spider's
    `second_look_request` note the second looks asked for)."""

    settings: dict[str, Any]
    crawling: bool = True
    spider: Any = None
    engine: Any = None
    requests: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.spider = self.engine = self

    def second_look_request(self, source_id: str, delay: float) -> str:
        return source_id

    def crawl(self, request: str) -> None:
        self.requests.append(request)


def make_pipeline(
    tmp_path: Path, crawling: bool = True, sources: tuple[SourceConfig, ...] = (FEED,)
) -> pipeline.HistoryPipeline:
    config = Settings(database_url=f"sqlite:///{tmp_path / 'history.db'}")

    class Settings_(dict):  # Scrapy's getdict / getint on a plain dict
        def getdict(self, name: str) -> dict[str, Any]:
            return dict(self.get(name) or {})

        def getint(self, name: str) -> int:
            return int(self.get(name) or 0)

    crawler = Crawler(
        Settings_(FDAWATCH_SETTINGS=config, FDAWATCH_SOURCES={s.id: s for s in sources}),
        crawling=crawling,
    )
    made = pipeline.HistoryPipeline(crawler)  # type: ignore[arg-type]
    made.open_spider()
    return made


def items(count: int, body: bytes) -> list[Observation]:
    return [
        Observation(
            source_id=FEED.id,
            key=f"https://www.fda.gov/item/{n}",
            url=f"https://www.fda.gov/item/{n}",
            title=f"Ketamine item {n}",
            content=f"Compounded ketamine notice number {n}.",
            content_type="feed_item",
            fetched_at=T0,
            body=body,
        )
        for n in range(count)
    ]


def feed_fetch(keys: list[str]) -> SourceFetch:
    return SourceFetch(
        FEED.id, FEED.url, OK, T0, http_status=200, etag='"v1"', documents=len(keys),
        document_keys=keys,
    )  # fmt: skip


def feed_through(made: pipeline.HistoryPipeline, observations: list[Observation]) -> None:
    async def run() -> None:
        for observation in observations:
            await made.process_item(observation)
        await made.process_item(feed_fetch([o.key for o in observations]))

    asyncio.run(run())


def count(made: pipeline.HistoryPipeline, model: type) -> int:
    with Session(made.engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_a_stop_between_batches_keeps_whole_versions_and_the_old_validators(
    tmp_path: Path,
) -> None:
    made = make_pipeline(tmp_path, crawling=False)  # SIGTERM arrived before the crawl's items
    observations = items(pipeline.BATCH * 2 + 200, b"<rss>...</rss>")

    feed_through(made, observations)

    assert count(made, Document) == pipeline.BATCH  # the first batch, committed whole
    with Session(made.engine) as session:
        fetch = session.exec(select(Fetch)).one()
        source = session.get(Source, FEED.id)
    assert fetch.outcome == "failed"
    assert fetch.error == (
        f"crawl stopped while recording ({pipeline.BATCH} of {len(observations)} documents "
        "recorded); the next crawl records the rest"
    )
    assert source is not None
    assert (source.etag, source.last_success_at) == (None, None)  # fetched again, still baseline
    made.close_spider()


def test_a_feed_body_is_hashed_and_stored_once_for_all_its_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_pipeline(tmp_path)
    body = b"<rss>" + b"x" * 1_000_000 + b"</rss>"
    hashed: list[int] = []
    real = hashlib.sha256

    def spy(data: bytes = b"", **kwargs: Any) -> Any:
        hashed.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(blobs.hashlib, "sha256", spy)

    feed_through(made, items(300, body))

    assert hashed.count(len(body)) == 1
    assert count(made, Blob) == 1
    assert count(made, Document) == 300
    made.close_spider()


def test_an_observation_that_cannot_be_normalized_fails_the_fetch_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_pipeline(tmp_path)

    def deep(observation: Observation) -> tuple[str, dict[str, str]]:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(batch, "normalized_text", deep)

    feed_through(made, items(3, b"<rss/>"))

    with Session(made.engine) as session:
        fetch = session.exec(select(Fetch)).one()
        source = session.get(Source, FEED.id)
    assert fetch.outcome == "failed"
    assert fetch.error == (
        "could not record https://www.fda.gov/item/0: RecursionError: maximum recursion depth "
        "exceeded"
    )
    assert source is not None and source.first_fetched_at is None  # nothing of it was recorded
    assert count(made, Document) == 0
    made.close_spider()


PAGES = tuple(
    make_source(id=f"page_{n}", url=f"https://www.fda.gov/drugs/alert-{n}", tier="T2")
    for n in range(pipeline.GROUP + 2)
)
ALERT = "FDA warns about compounded ketamine products marketed for at-home use, alert {n}. "


def page_seen(source: SourceConfig, text: str) -> list[Observation | SourceFetch]:
    """What the page spider yields for one fetched page: its region, then its fetch record."""
    html = f"<main><p>{text}</p></main>"
    observation = Observation(
        source_id=source.id, key=source.url, url=source.url, title=source.title, content=html,
        content_type="html", fetched_at=T0, body=html.encode(),
    )  # fmt: skip
    fetch = SourceFetch(source.id, source.url, OK, T0, http_status=200, etag=f'"{len(text)}"')
    return [observation, fetch]


def crawl_together(made: pipeline.HistoryPipeline, pages: dict[SourceConfig, str]) -> list[Any]:
    """Every page's items at once, as responses that arrive together; what each fetch raised."""

    async def one(items: list[Observation | SourceFetch]) -> None:
        for item in items:
            await made.process_item(item)

    async def run() -> list[Any]:
        crawls = [one(page_seen(source, text)) for source, text in pages.items()]
        return await asyncio.gather(*crawls, return_exceptions=True)

    return asyncio.run(run())


def commits(made: pipeline.HistoryPipeline) -> list[int]:
    """Counts the transactions the pipeline commits from now on."""
    counted: list[int] = []
    event.listen(made.engine, "commit", lambda connection: counted.append(1))
    return counted


def test_pages_that_arrive_together_are_recorded_together_as_if_alone(tmp_path: Path) -> None:
    """A full group, then the rest: two transactions, the history of recording them one by one."""
    together = make_pipeline(tmp_path / "a", sources=PAGES)
    counted = commits(together)
    raised = crawl_together(together, {p: ALERT.format(n=i) for i, p in enumerate(PAGES)})
    assert raised == [None] * len(PAGES)
    assert len(counted) == 2
    with Session(together.engine) as session:  # a fetch record each, in the order they came
        assert session.exec(select(Fetch.source_id).order_by(col(Fetch.id))).all() == [
            p.id for p in PAGES
        ]
    edits = {
        p: ALERT.format(n=i) + ("Now also sold online." if i % 3 == 0 else "")
        for i, p in enumerate(PAGES)
    }
    crawl_together(together, edits)

    alone = make_pipeline(tmp_path / "b", sources=PAGES)
    for version in ({p: ALERT.format(n=i) for i, p in enumerate(PAGES)}, edits):
        for source, text in version.items():
            crawl_together(alone, {source: text})

    def history(made: pipeline.HistoryPipeline) -> list[Any]:
        with Session(made.engine) as session:
            changes = session.exec(select(Change.source_id, Change.kind, Change.summary)).all()
            fetches = session.exec(select(Fetch.source_id, Fetch.outcome, Fetch.changes)).all()
            documents = session.exec(select(Document.source_id, Document.doc_key)).all()
        return [sorted(changes), sorted(fetches), sorted(documents), count(made, Blob)]

    assert history(together) == history(alone)
    assert len(history(together)[0]) == 4  # pages 0, 3, 6 and 9 were edited
    together.close_spider()
    alone.close_spider()


def test_a_source_that_cannot_be_recorded_does_not_hold_back_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_pipeline(tmp_path, sources=PAGES[:4])
    real = made.writer.record_fetches

    def broken(session: Session, fetches: list[tuple[SourceFetch, int, Any]], now: Any) -> Any:
        if any(fetch.source_id == "page_2" for fetch, _, _ in fetches):
            raise RuntimeError("a bug that only page_2 meets")
        return real(session, fetches, now)

    monkeypatch.setattr(made.writer, "record_fetches", broken)

    raised = crawl_together(made, {p: ALERT.format(n=i) for i, p in enumerate(PAGES[:4])})

    assert [type(error).__name__ for error in raised] == [
        "NoneType", "NoneType", "RuntimeError", "NoneType"
    ]  # fmt: skip
    with Session(made.engine) as session:
        recorded = session.exec(select(Fetch.source_id)).all()
    assert sorted(recorded) == ["page_0", "page_1", "page_3"]
    made.close_spider()


@pytest.mark.parametrize("pages", [1, 3])
def test_a_group_another_process_beat_to_a_version_is_recorded_again_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pages: int
) -> None:
    """A unique-key clash (another crawl stored the same version first) rolls the group back;
    the retry records every source once."""
    made = make_pipeline(tmp_path, sources=PAGES[:pages])
    real = made.writer.write_plans
    clashes: list[int] = []

    def clash_once(*args: Any, **kwargs: Any) -> Any:
        if not clashes:
            clashes.append(1)
            raise IntegrityError("INSERT INTO snapshot", {}, Exception("UNIQUE constraint failed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(made.writer, "write_plans", clash_once)

    raised = crawl_together(made, {p: ALERT.format(n=i) for i, p in enumerate(PAGES[:pages])})

    assert raised == [None] * pages and clashes == [1]
    with Session(made.engine) as session:
        fetches = session.exec(select(Fetch.source_id)).all()
    assert sorted(fetches) == [f"page_{n}" for n in range(pages)]
    assert count(made, Document) == pages
    made.close_spider()


def test_a_waiter_cancelled_before_its_group_is_written_does_not_break_the_others(
    tmp_path: Path,
) -> None:
    """A crawl stopped hard may cancel a waiting item; its group is still written whole."""
    made = make_pipeline(tmp_path, sources=PAGES[:2])

    async def run() -> None:
        async def one(source: SourceConfig, text: str) -> None:
            for item in page_seen(source, text):
                await made.process_item(item)

        tasks = [asyncio.ensure_future(one(p, ALERT.format(n=i))) for i, p in enumerate(PAGES[:2])]
        await asyncio.sleep(0)  # both wait for their group now
        tasks[0].cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=10)

    asyncio.run(run())
    made.close_spider()

    with Session(made.engine) as session:
        fetches = session.exec(select(Fetch.source_id)).all()
    assert sorted(fetches) == ["page_0", "page_1"]


def test_a_page_held_for_a_second_look_writes_nothing_and_the_others_are_recorded(
    tmp_path: Path,
) -> None:
    made = make_pipeline(tmp_path, sources=PAGES[:3])
    long = {p: ALERT.format(n=i) * 10 for i, p in enumerate(PAGES[:3])}
    crawl_together(made, long)

    shrunk = {**long, PAGES[1]: ALERT.format(n=1)}  # a page cut to a tenth: doubtful
    shrunk[PAGES[2]] = long[PAGES[2]] + "A new paragraph on dosing."
    crawl_together(made, shrunk)

    with Session(made.engine) as session:
        latest = {f.source_id: f for f in session.exec(select(Fetch).order_by(Fetch.id)).all()}
        changes = session.exec(select(Change.source_id)).all()
    assert latest["page_1"].outcome == "held" and "second look" in (latest["page_1"].error or "")
    assert latest["page_0"].outcome == latest["page_2"].outcome == "ok"
    assert changes == ["page_2"]
    assert made.crawler.requests == ["page_1"]  # asked again once the hold was committed
    made.close_spider()


def test_suspicion_rules() -> None:
    """Which edits are held for a second look (pure rules, monitor.core.suspect)."""
    from monitor.core.suspect import error_page, suspicion

    long = "FDA is aware of compounded ketamine products marketed for home use.\n" * 10
    assert suspicion(long, long[: len(long) // 3]) is not None
    assert suspicion(long, long[: len(long) * 6 // 10]) is None  # 60 % kept: believed
    assert suspicion("short text", "") is None  # too short for a share to mean anything
    assert suspicion(long, long + "Versi\ufffdn") is not None
    assert suspicion(long + "\ufffd", long + "\ufffd") is None  # nothing new
    assert error_page("Service Unavailable. Please try again later.") == "Service Unavailable"
    assert error_page(long) is None


def test_source_config_defaults_for_the_new_limits() -> None:
    source = SourceConfig(id="x", kind="page", url="https://www.fda.gov/x")
    assert (source.confirm_removal, source.max_documents, source.max_bytes) == (2, 10_000, None)
