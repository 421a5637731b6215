"""An API result set the spider cannot complete ends FAILED, with its documents and a way out.

Too many pages (`max_pages`), openFDA's skip limit without a `Link: rel="next"`, or a Federal
Register result window smaller than its count: the documents received are real (yielded), but
the set is not the whole set, so the fetch record is FAILED with "narrow the query …" and lists
no document keys. The history then infers no removal from it
(`tests/history/test_signal_paths.py::test_an_incomplete_result_set_removes_nothing`).
Responses are the SYNTHETIC openFDA and Federal Register pages of `tests/fixtures`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import Response, TextResponse
from scrapy.utils.test import get_crawler

from monitor.config import Settings
from monitor.items import FAILED, OK, Observation, SourceFetch
from monitor.sources import SourceConfig, load_sources
from spiders.api import ApiSpider
from spiders.federal_register import FederalRegisterSpider
from spiders.openfda import SKIP_LIMIT, OpenfdaRecallsSpider
from tests.spiders.conftest import start_requests

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SHIPPED = load_sources(ROOT / "sources.toml")
RECALLS = SourceConfig(
    id="openfda_ketamine_recalls",
    kind="openfda_recalls",
    url='https://api.fda.gov/drug/enforcement.json?search=product_description:"ketamine"&limit=2',
    tier="T2",
)
FEDERAL_REGISTER = SHIPPED["federal_register_ketamine"]
FR_BASE = "https://www.federalregister.gov"
NARROW_PAGES = (
    "stopped after 1 pages (2 results) before the end of the result set; narrow the query in "
    "the source's url"
)


def spider(cls: type[ApiSpider], source: SourceConfig) -> ApiSpider:
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
    data = json.loads(
        (FIXTURES / "openfda" / f"SYNTHETIC-ketamine-recalls-page{n}.json").read_text()
    )
    data["meta"]["results"].update(meta)
    return json.dumps(data).encode()


def fr_page(n: int, **fields: Any) -> bytes:
    path = FIXTURES / "federal_register" / f"SYNTHETIC-documents-ketamine-page{n}.json"
    data = json.loads(path.read_text(encoding="utf-8").replace("{base}", FR_BASE))
    data.update(fields)
    return json.dumps(data).encode()


def split(items: list[Any]) -> tuple[list[str], SourceFetch]:
    *observations, fetch = items
    assert all(isinstance(o, Observation) for o in observations), items
    assert isinstance(fetch, SourceFetch), items
    return [o.key for o in observations], fetch


def incomplete_recalls() -> list[Any]:
    """One fetch of the recalls with `max_pages = 1`: page 1 of 2, then the set's end."""
    recalls = spider(OpenfdaRecallsSpider, RECALLS)
    recalls.max_pages = 1  # type: ignore[misc]
    [first] = start_requests(recalls)
    return list(recalls.parse(answer(first, recalls_page(1))))


def test_more_pages_than_max_pages_keeps_the_documents_and_fails_the_set() -> None:
    keys, fetch = split(incomplete_recalls())

    assert keys == ["D-0101-2026", "D-0102-2026"]
    assert (fetch.outcome, fetch.error) == (FAILED, NARROW_PAGES)
    assert (fetch.document_keys, fetch.documents) == ([], 0)  # nothing to infer removals from


def test_the_same_pages_within_max_pages_are_one_complete_set() -> None:
    """The contrast: with room for page 2 the set completes and lists all three keys."""
    recalls = spider(OpenfdaRecallsSpider, RECALLS)
    recalls.max_pages = 2  # type: ignore[misc]
    [first] = start_requests(recalls)
    [second] = list(recalls.parse(answer(first, recalls_page(1))))
    assert isinstance(second, Request)

    keys, fetch = split(list(recalls.parse(answer(second, recalls_page(2)))))

    assert keys == ["D-0101-2026", "D-0102-2026", "D-0103-2026"]
    assert (fetch.outcome, fetch.error, fetch.document_keys) == (OK, None, keys)


@pytest.mark.parametrize(
    ("meta", "link", "outcome"),
    [
        # 24999 + 2 passes the limit, and openFDA sent no Link header to page on with.
        ({"skip": SKIP_LIMIT - 1, "total": 30000}, None, FAILED),
        # Exactly at the limit: the next `skip` is still allowed.
        ({"skip": SKIP_LIMIT - 2, "total": 30000}, None, "next"),
        # A Link header (search_after paging) goes on past the skip limit.
        ({"skip": SKIP_LIMIT - 1, "total": 30000}, "<https://api.fda.gov/drug/enforcement.json?"
         'search_after=0%3DD-0102-2026&limit=2>; rel="next"', "next"),
    ],
)  # fmt: skip
def test_past_the_openfda_skip_limit_without_a_link_the_set_fails(
    meta: dict[str, int], link: str | None, outcome: str
) -> None:
    recalls = spider(OpenfdaRecallsSpider, RECALLS)
    [first] = start_requests(recalls)

    items = list(
        recalls.parse(answer(first, recalls_page(1, **meta), {"Link": link} if link else {}))
    )

    if outcome == "next":
        [next_request] = items
        assert isinstance(next_request, Request)
        return
    keys, fetch = split(items)
    assert keys == ["D-0101-2026", "D-0102-2026"]
    assert fetch.outcome == FAILED
    assert fetch.error == (
        f"openFDA has 30000 results but allows skip only up to {SKIP_LIMIT} and sent no "
        'Link: rel="next" header; narrow the search in the source\'s url'
    )
    assert fetch.document_keys == []


def test_a_federal_register_window_smaller_than_its_count_fails_the_set() -> None:
    register = spider(FederalRegisterSpider, FEDERAL_REGISTER)
    [first] = start_requests(register)
    [second] = list(register.parse(answer(first, fr_page(1, count=2500))))
    assert isinstance(second, Request)

    keys, fetch = split(list(register.parse(answer(second, fr_page(2, count=2500)))))

    assert keys == ["2025-24123", "2025-01099", "2023-07237"]
    assert fetch.outcome == FAILED
    assert fetch.error == (
        "the Federal Register gave 3 of 2500 documents (its result window is limited); narrow "
        "the query, e.g. with conditions[publication_date][gte]"
    )
    assert fetch.document_keys == []


def test_a_federal_register_set_that_reaches_its_count_is_complete() -> None:
    register = spider(FederalRegisterSpider, FEDERAL_REGISTER)
    [first] = start_requests(register)
    [second] = list(register.parse(answer(first, fr_page(1))))

    keys, fetch = split(list(register.parse(answer(second, fr_page(2)))))

    assert (fetch.outcome, fetch.document_keys) == (OK, keys)
    assert keys == ["2025-24123", "2025-01099", "2023-07237"]
