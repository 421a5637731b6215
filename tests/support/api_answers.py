"""API spiders fed recorded answers: openFDA recall pages and Federal Register pages, in memory.

The spider is built from explicit settings (as `tests/support/spiders.py` builds the others, plus
the `Settings` the API spiders read their key and limits from); an answer is the SYNTHETIC
fixture page with the paging metadata a test sets. `incomplete_recalls` is one fetch the spider
cannot complete: used by the spider tests and by the history tests that check it removes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from scrapy import Request
from scrapy.http import Response, TextResponse
from scrapy.utils.test import get_crawler

from monitor.config import Settings
from monitor.sources import SourceConfig
from spiders.api import ApiSpider
from spiders.openfda import OpenfdaRecallsSpider
from tests.support.paths import FEDERAL_REGISTER, OPENFDA
from tests.support.spiders import start_requests

#: The shipped recalls source, two results a page so the two fixture pages make one set.
RECALLS = SourceConfig(
    id="openfda_ketamine_recalls",
    kind="openfda_recalls",
    url='https://api.fda.gov/drug/enforcement.json?search=product_description:"ketamine"&limit=2',
    tier="T2",
)
FR_BASE = "https://www.federalregister.gov"


def api_spider(cls: type[ApiSpider], source: SourceConfig) -> ApiSpider:
    settings = {
        "FDAWATCH_SOURCES": {source.id: source.to_dict()},
        "FDAWATCH_VALIDATORS": {},
        "FDAWATCH_SETTINGS": Settings(),
    }
    return cls.from_crawler(get_crawler(cls, settings), source="all")


def answer(request: Request, body: bytes, headers: dict[str, str] | None = None) -> Response:
    request.meta.setdefault("download_latency", 0.1)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return TextResponse(request.url, status=200, headers=all_headers, body=body, request=request)


def recalls_page(n: int, **meta: int) -> bytes:
    """Page `n` of the SYNTHETIC recalls, its `meta.results` (skip, total) overridden."""
    data = json.loads((OPENFDA / f"SYNTHETIC-ketamine-recalls-page{n}.json").read_text())
    data["meta"]["results"].update(meta)
    return json.dumps(data).encode()


def fr_page(n: int, **fields: Any) -> bytes:
    """Page `n` of the SYNTHETIC Federal Register documents, top-level fields overridden."""
    path = FEDERAL_REGISTER / f"SYNTHETIC-documents-ketamine-page{n}.json"
    data = json.loads(path.read_text(encoding="utf-8").replace("{base}", FR_BASE))
    data.update(fields)
    return json.dumps(data).encode()


def incomplete_recalls() -> list[Any]:
    """One fetch of the recalls with `max_pages = 1`: page 1 of 2, then the set's end."""
    recalls = api_spider(OpenfdaRecallsSpider, RECALLS)
    recalls.max_pages = 1  # type: ignore[misc]
    [first] = start_requests(recalls)
    return list(recalls.parse(answer(first, recalls_page(1))))
