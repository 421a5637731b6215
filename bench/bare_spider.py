"""The bare Scrapy crawl `bench.floor` measures: fdawatch's Scrapy settings, nothing else.

    python -m bench.bare_spider URLS.json VALIDATORS.json 1   # fetch all, write their ETags
    python -m bench.bare_spider URLS.json VALIDATORS.json 0   # fetch all with If-None-Match

No add-on, no database, no parsing: what is left is the cost of Scrapy itself. Run in its own
process (the reactor cannot restart); FDAWATCH_CRAWL_CONCURRENCY_PER_HOST sets the concurrency.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response
from scrapy.utils.project import get_project_settings


class Bare(scrapy.Spider):
    """Fetch each URL once, conditionally when its ETag is known; keep the new ETag."""

    name = "bare"
    custom_settings = {"HTTPERROR_ALLOW_ALL": True}

    def __init__(self, urls: list[str], known: dict[str, str], seen: dict[str, str]) -> None:
        super().__init__()
        self.urls, self.known, self.seen = urls, known, seen

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.urls:
            headers = {"If-None-Match": self.known[url]} if url in self.known else {}
            yield scrapy.Request(url, headers=headers, dont_filter=True)

    def parse(self, response: Response) -> None:
        self.seen[response.url] = (response.headers.get("ETag") or b"").decode()


def main(argv: list[str]) -> int:
    urls_path, validators_path, write = Path(argv[0]), Path(argv[1]), argv[2] == "1"
    urls = json.loads(urls_path.read_text())
    known = {} if write else json.loads(validators_path.read_text())
    seen: dict[str, str] = {}
    concurrency = int(os.environ.get("FDAWATCH_CRAWL_CONCURRENCY_PER_HOST", "16"))
    settings = get_project_settings()
    for name, value in {
        "ADDONS": {},  # no fdawatch add-on: no sources, no database
        "SPIDER_MODULES": [],
        "ITEM_PIPELINES": {},
        "ROBOTSTXT_OBEY": False,
        "DOWNLOAD_DELAY": 0,
        "CONCURRENT_REQUESTS": max(16, concurrency),  # as fdawatch's crawl
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "LOG_LEVEL": "WARNING",
        "WARN_ON_GENERATOR_RETURN_VALUE": False,  # as fdawatch's add-on
        "CONCURRENT_ITEMS": 1,  # likewise: no 100 asyncio tasks per response
    }.items():
        settings.set(name, value, priority="cmdline")
    process = CrawlerProcess(settings)
    logging.getLogger("scrapy").setLevel(logging.WARNING)  # as fdawatch: no DEBUG per request
    process.crawl(Bare, urls=urls, known=known, seen=seen)
    process.start()
    if write:
        validators_path.write_text(json.dumps(seen))
    print(len(seen))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
