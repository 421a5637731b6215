"""An API result set the spider cannot complete ends FAILED, with its documents and a way out.

Too many pages (`max_pages`), openFDA's skip limit without a `Link: rel="next"`, or a Federal
Register result window smaller than its count: the documents received are real (yielded), but
the set is not the whole set, so the fetch record is FAILED with "narrow the query …" and lists
no document keys. The history then infers no removal from it
(`tests/history/test_signal_paths.py::test_an_incomplete_result_set_removes_nothing`).
Responses are the SYNTHETIC openFDA and Federal Register pages of `tests/fixtures`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from scrapy import Request

from monitor.items import FAILED, OK, SourceFetch
from monitor.sources import load_sources
from spiders.federal_register import FederalRegisterSpider
from spiders.openfda import SKIP_LIMIT, OpenfdaRecallsSpider
from tests.support.api_answers import (
    RECALLS,
    answer,
    api_spider,
    fr_page,
    incomplete_recalls,
    recalls_page,
)
from tests.support.paths import ROOT
from tests.support.spiders import split as drain
from tests.support.spiders import start_requests

#: The shipped source without its linked PDFs: the set's end is what these tests look at.
FEDERAL_REGISTER = replace(
    load_sources(ROOT / "sources.toml")["federal_register_ketamine"], follow_documents=False
)
NARROW_PAGES = (
    "stopped after 1 pages (2 results) before the end of the result set; narrow the query in "
    "the source's url"
)


def split(items: list[Any]) -> tuple[list[str], SourceFetch]:
    """The document keys, in order, and the fetch record that ends the callback's output."""
    observations, fetch = drain(items)
    return [o.key for o in observations], fetch


def test_more_pages_than_max_pages_keeps_the_documents_and_fails_the_set() -> None:
    keys, fetch = split(incomplete_recalls())

    assert keys == ["D-0101-2026", "D-0102-2026"]
    assert (fetch.outcome, fetch.error) == (FAILED, NARROW_PAGES)
    assert (fetch.document_keys, fetch.documents) == ([], 0)  # nothing to infer removals from


def test_the_same_pages_within_max_pages_are_one_complete_set() -> None:
    """The contrast: with room for page 2 the set completes and lists all three keys."""
    recalls = api_spider(OpenfdaRecallsSpider, RECALLS)
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
    recalls = api_spider(OpenfdaRecallsSpider, RECALLS)
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
    register = api_spider(FederalRegisterSpider, FEDERAL_REGISTER)
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
    register = api_spider(FederalRegisterSpider, FEDERAL_REGISTER)
    [first] = start_requests(register)
    [second] = list(register.parse(answer(first, fr_page(1))))

    keys, fetch = split(list(register.parse(answer(second, fr_page(2)))))

    assert (fetch.outcome, fetch.document_keys) == (OK, keys)
    assert keys == ["2025-24123", "2025-01099", "2023-07237"]
