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
from sqlmodel import Session, func, select

from db.models import Blob, Document, Fetch, Source
from monitor.config import Settings
from monitor.history import batch, snapshots
from monitor.items import OK, Observation, SourceFetch
from monitor.runtime import pipeline
from monitor.sources import SourceConfig
from tests.support.clock import T0
from tests.support.sources import make_source

FEED = make_source(id="big_feed", kind="feed", url="https://www.fda.gov/rss.xml", tier="T3")


@dataclass
class Crawler:
    """What HistoryPipeline reads from a Scrapy crawler."""

    settings: dict[str, Any]
    crawling: bool = True
    spider: Any = None
    engine: Any = None
    requests: list[Any] = field(default_factory=list)


def make_pipeline(tmp_path: Path, crawling: bool = True) -> pipeline.HistoryPipeline:
    config = Settings(database_url=f"sqlite:///{tmp_path / 'history.db'}")

    class Settings_(dict):  # Scrapy's getdict / getint on a plain dict
        def getdict(self, name: str) -> dict[str, Any]:
            return dict(self.get(name) or {})

        def getint(self, name: str) -> int:
            return int(self.get(name) or 0)

    crawler = Crawler(
        Settings_(FDAWATCH_SETTINGS=config, FDAWATCH_SOURCES={FEED.id: FEED}), crawling=crawling
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

    monkeypatch.setattr(snapshots.hashlib, "sha256", spy)

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
    assert fetch.outcome == "failed"
    assert fetch.error == (
        "could not record https://www.fda.gov/item/0: RecursionError: maximum recursion depth "
        "exceeded"
    )
    assert count(made, Document) == 0
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
