"""Replay the real FDA Food Safety Recalls RSS captures 001→040 through the feed spider and history.

The expected outcome is counted independently of fdawatch's code (ElementTree, not feedparser;
no fdawatch normalization): an item is new when its link was in no earlier capture, and an item
is changed when its title or description text differs from the last capture that had it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scrapy.http import Request, XmlResponse
from scrapy.utils.test import get_crawler
from sqlmodel import Session, select

from db.models import Change, Snapshot
from monitor.history.writer import HistoryWriter
from monitor.items import Observation, SourceFetch
from spiders.feed import FeedSpider
from tests.support.feeds import independent_items
from tests.support.paths import RECALLS_HISTORY
from tests.support.sources import make_source

CAPTURES = sorted(RECALLS_HISTORY.glob("0*.xml"))
SOURCE = make_source(
    id="fda_food_safety_recalls",
    kind="feed",
    url="https://www.fda.gov/about-fda/contact-fda/stay-informed/rss-feeds/food-safety-recalls/rss.xml",
    title="FDA Food Safety Recalls",
    tier="T3",
)


def expected_outcome(paths: list[Path]) -> tuple[list[set[str]], int]:
    seen: dict[str, str] = {}
    new_per_capture: list[set[str]] = []
    edits = 0
    for index, path in enumerate(paths):
        items = independent_items(path)
        new_per_capture.append(set() if index == 0 else set(items) - set(seen))
        edits += sum(1 for link, text in items.items() if link in seen and seen[link] != text)
        seen.update(items)
    return new_per_capture, edits


def spider_items(spider: FeedSpider, path: Path) -> list[Observation | SourceFetch]:
    request = Request(SOURCE.url, meta={"source_id": SOURCE.id})
    response = XmlResponse(
        SOURCE.url,
        body=path.read_bytes(),
        request=request,
        headers={"Content-Type": "application/rss+xml; charset=utf-8"},
    )
    return list(spider.parse(response))


@pytest.fixture
def spider() -> FeedSpider:
    crawler = get_crawler(FeedSpider, {"FDAWATCH_SOURCES": {SOURCE.id: SOURCE.to_dict()}})
    return FeedSpider.from_crawler(crawler, source=SOURCE.id)


def test_replay_finds_exactly_the_new_items_and_only_real_edits(
    session: Session, registered, spider: FeedSpider
) -> None:
    assert len(CAPTURES) == 40
    registered(SOURCE)
    expected_new, expected_edits = expected_outcome(CAPTURES)
    start = datetime(2024, 11, 14, 12, 58, tzinfo=UTC)
    found_new: list[set[str]] = []
    for index, path in enumerate(CAPTURES):
        now = start + timedelta(hours=index)
        created: set[str] = set()
        for item in spider_items(spider, path):
            if isinstance(item, Observation):
                item.fetched_at = now
                change = HistoryWriter([SOURCE]).record_observation(session, item, now)
                if change is not None and change.kind == "new":
                    created.add(change.doc_key.split("://", 1)[-1])
            else:
                assert item.outcome == "ok" and item.documents == 20
                item.fetched_at = now
                HistoryWriter([SOURCE]).record_fetch(session, item, now, changes=len(created))
        session.commit()
        found_new.append(created)
    assert found_new == expected_new
    assert (
        sum(len(s) for s in expected_new) >= 39
    )  # the real feed gains items in nearly every capture
    changed = session.exec(select(Change).where(Change.kind == "changed")).all()
    assert len(changed) == expected_edits
    for change in changed:  # every changed row really has different text
        old, new = (
            session.get(Snapshot, change.old_snapshot_id),
            session.get(Snapshot, change.new_snapshot_id),
        )
        assert old is not None and new is not None and old.text != new.text
    assert not session.exec(select(Change).where(Change.kind == "removed")).all()
