"""Spiders built from explicit settings, responses built from bytes: spiders tested without a crawl.

Nothing here uses `spiders.settings` (its add-on reads sources.toml and the database): each test
says which sources and validators the spider sees, as the add-on would in a real crawl.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeVar

from scrapy import Request
from scrapy.http import HtmlResponse, Response
from scrapy.utils.test import get_crawler

from monitor.items import Observation, SourceFetch
from monitor.sources import SourceConfig
from spiders.base import WatchSpider

SpiderT = TypeVar("SpiderT", bound=WatchSpider)
LATENCY_SECONDS = 0.25

PAGE = SourceConfig(
    id="ketamine_alert",
    kind="page",
    url="https://www.fda.gov/drugs/human-drug-compounding/fda-warns-compounded-ketamine",
    selector="main",
)
FEED = SourceConfig(
    id="drug_recalls",
    kind="feed",
    url="https://www.fda.gov/about-fda/contact-fda/stay-informed/rss-feeds/drug-recalls/rss.xml",
)
OTHER_PAGE = SourceConfig(id="spravato_rems", kind="page", url="https://www.fda.gov/spravato")


def build_spider(
    spider_cls: type[SpiderT],
    sources: Iterable[SourceConfig] = (PAGE, FEED, OTHER_PAGE),
    source: str = "all",
    validators: dict[str, dict[str, str | None]] | None = None,
) -> SpiderT:
    """A spider as `scrapy crawl <name> -a source=<source>` would build it."""
    settings = {
        "FDAWATCH_SOURCES": {s.id: s.to_dict() for s in sources},
        "FDAWATCH_VALIDATORS": validators or {},
    }
    crawler = get_crawler(spider_cls, settings)
    return spider_cls.from_crawler(crawler, source=source)


def make_response(
    source: SourceConfig,
    body: bytes,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    url: str | None = None,
    response_cls: type[Response] = HtmlResponse,
) -> Response:
    """A downloaded response for `source`, as the downloader hands it to the callback."""
    url = url or source.url
    request = Request(url, meta={"source_id": source.id, "download_latency": LATENCY_SECONDS})
    return response_cls(url=url, status=status, headers=headers or {}, body=body, request=request)


def split(callback_output: Iterable[Any]) -> tuple[list[Observation], SourceFetch]:
    """Drain a callback and check the order the monitor relies on: documents, then one record."""
    items = list(callback_output)
    assert items, "a callback must always yield a SourceFetch"
    *observations, last = items
    assert isinstance(last, SourceFetch), f"last item must be the SourceFetch, got {last!r}"
    assert all(isinstance(item, Observation) for item in observations), items
    return observations, last


def start_requests(spider: WatchSpider) -> list[Request]:
    """What `async def start()` yields, collected outside a running crawl."""

    async def collect(requests: AsyncIterator[Any]) -> list[Request]:
        return [request async for request in requests]

    return asyncio.run(collect(spider.start()))
