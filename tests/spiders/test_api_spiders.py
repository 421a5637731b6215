"""The API spiders on recorded responses: paging, one fetch record per set, keys kept secret."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import Response, TextResponse
from scrapy.utils.test import get_crawler

from monitor.config import Settings
from monitor.items import FAILED, OK, Observation, SourceFetch
from monitor.sources import SourceConfig
from spiders.api import RedactApiKeys, strip_api_key, with_api_key
from spiders.openfda import OpenfdaRecallsSpider
from tests.support.paths import OPENFDA
from tests.support.spiders import start_requests

KEY = "SECRET-KEY-123"
RECALLS = SourceConfig(
    id="openfda_ketamine_recalls",
    kind="openfda_recalls",
    url='https://api.fda.gov/drug/enforcement.json?search=product_description:"ketamine"&limit=2',
)


def spider(key: str | None = KEY) -> OpenfdaRecallsSpider:
    settings = {
        "FDAWATCH_SOURCES": {RECALLS.id: RECALLS.to_dict()},
        "FDAWATCH_VALIDATORS": {},
        "FDAWATCH_SETTINGS": Settings(openfda_api_key=key),
    }
    crawler = get_crawler(OpenfdaRecallsSpider, settings)
    return OpenfdaRecallsSpider.from_crawler(crawler, source="all")


def answer(request: Request, body: bytes, status: int = 200) -> Response:
    request.meta.setdefault("download_latency", 0.1)
    headers = {"Content-Type": "application/json"}
    return TextResponse(request.url, status=status, headers=headers, body=body, request=request)


def page(n: int) -> bytes:
    return (OPENFDA / f"SYNTHETIC-ketamine-recalls-page{n}.json").read_bytes()


def drain(items: Iterable[Any]) -> list[Any]:
    return list(items)


def test_two_pages_give_every_recall_and_one_ok_record_without_the_key() -> None:
    recalls = spider()
    [first] = start_requests(recalls)
    assert first.url.startswith("https://api.fda.gov/drug/enforcement.json?api_key=" + KEY + "&")

    [next_request] = drain(recalls.parse(answer(first, page(1))))
    assert isinstance(next_request, Request)
    assert next_request.url.endswith("&limit=2&skip=2") and f"api_key={KEY}" in next_request.url
    *observations, fetch = drain(recalls.parse(answer(next_request, page(2))))

    assert all(isinstance(o, Observation) for o in observations)
    assert [o.key for o in observations] == ["D-0101-2026", "D-0102-2026", "D-0103-2026"]
    assert isinstance(fetch, SourceFetch)
    assert (fetch.outcome, fetch.documents, fetch.document_keys) == (
        OK,
        3,
        [o.key for o in observations],
    )
    assert len({o.fetched_at for o in observations} | {fetch.fetched_at}) == 1
    assert fetch.bytes == len(page(1)) + len(page(2))
    stored = [fetch.url, *(o.url for o in observations)]
    assert not [url for url in stored if KEY in url], stored
    assert observations[2].url == (
        'https://api.fda.gov/drug/enforcement.json?search=recall_number:"D-0103-2026"'
    )
    assert observations[0].content_type == "record"


def test_openfda_not_found_is_an_empty_result_not_an_outage() -> None:
    recalls = spider()
    [first] = start_requests(recalls)
    body = b'{"error": {"code": "NOT_FOUND", "message": "No matches found!"}}'

    [fetch] = drain(recalls.parse(answer(first, body, status=404)))

    assert (fetch.outcome, fetch.documents, fetch.document_keys, fetch.error) == (OK, 0, [], None)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, b"oops", "HTTP 500"),
        (200, b"<html>maintenance</html>", "parse error: ValueError: expected JSON from"),
        (404, b'{"error": {"code": "SERVER_ERROR"}}', "HTTP 404"),
    ],
)
def test_a_failed_later_page_drops_the_partial_set(status: int, body: bytes, error: str) -> None:
    recalls = spider()
    [first] = start_requests(recalls)
    [next_request] = drain(recalls.parse(answer(first, page(1))))

    [fetch] = drain(recalls.parse(answer(next_request, body, status=status)))

    assert fetch.outcome == FAILED and fetch.error.startswith(error)
    assert KEY not in fetch.url and KEY not in fetch.error


def test_without_a_key_no_api_key_parameter_is_sent() -> None:
    [first] = start_requests(spider(key=None))
    assert "api_key" not in first.url
    assert first.url.startswith("https://api.fda.gov/drug/enforcement.json?search=")


def test_key_helpers_and_log_redaction() -> None:
    url = with_api_key("https://api.fda.gov/drug/label.json?search=x&limit=1", KEY)
    assert url == f"https://api.fda.gov/drug/label.json?api_key={KEY}&search=x&limit=1"
    assert strip_api_key(url) == "https://api.fda.gov/drug/label.json?search=x&limit=1"
    record = logging.LogRecord(
        "scrapy.downloadermiddlewares.retry", logging.ERROR, __file__, 1,
        "Gave up retrying %(request)s (failed %(retry_times)d times): %(reason)s",
        ({"request": f"<GET {url}>", "retry_times": 2, "reason": "429"},), None,
    )  # fmt: skip
    RedactApiKeys().filter(record)
    assert KEY not in record.getMessage()
    assert "api_key=REDACTED&search=x" in record.getMessage()


# --- the key goes only to the source's own origin (scheme, host, port) ---------------------------

NEXT_SAME = "https://api.fda.gov/drug/enforcement.json?search=x&limit=2&search_after=0%3DD-0102"


def linked(request: Request, link: str) -> Response:
    """Page 1 with openFDA's search_after paging header pointing at `link`."""
    request.meta.setdefault("download_latency", 0.1)
    headers = {"Content-Type": "application/json", "Link": f'<{link}>; rel="next"'}
    return TextResponse(request.url, headers=headers, body=page(1), request=request)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (NEXT_SAME, NEXT_SAME.replace("?", f"?api_key={KEY}&", 1)),
        (  # a relative Link is resolved against the page, then keyed
            "/drug/enforcement.json?search=x&search_after=1",
            f"https://api.fda.gov/drug/enforcement.json?api_key={KEY}&search=x&search_after=1",
        ),
    ],
)
def test_a_next_page_on_the_sources_origin_carries_the_key(link: str, expected: str) -> None:
    recalls = spider()
    [first] = start_requests(recalls)

    [next_request] = drain(recalls.parse(linked(first, link)))

    assert isinstance(next_request, Request) and next_request.url == expected


@pytest.mark.parametrize(
    "link",
    [
        "http://localhost:8123/steal?search=x",  # another host
        "https://api.fda.gov:8443/drug/enforcement.json?search=x",  # another port
        "http://api.fda.gov/drug/enforcement.json?search=x",  # plain http
        "https://api.fda.gov.evil.example/drug/enforcement.json?search=x",
    ],
)
def test_a_next_page_on_another_origin_is_never_requested_and_the_set_is_incomplete(
    link: str,
) -> None:
    recalls = spider()
    [first] = start_requests(recalls)

    *observations, fetch = drain(recalls.parse(linked(first, link)))

    assert not [item for item in observations if isinstance(item, Request)]
    assert [o.key for o in observations] == ["D-0101-2026", "D-0102-2026"]  # kept, not removed
    assert fetch.outcome == FAILED
    assert fetch.error == (
        f"the next page is on another server ({link}), not the source's "
        "https://api.fda.gov:443; not followed (the API key is sent only to the source's own "
        "origin), so the result set is incomplete: check the source's url"
    )
    assert KEY not in fetch.error and KEY not in fetch.url


def test_a_next_link_carrying_a_key_of_its_own_has_it_stripped_from_the_error() -> None:
    recalls = spider()
    [first] = start_requests(recalls)

    *_, fetch = drain(recalls.parse(linked(first, "https://evil.example/x?api_key=THEIRS&q=1")))

    assert "THEIRS" not in fetch.error and "(https://evil.example/x?q=1)" in fetch.error


def test_a_page_request_to_another_origin_never_carries_the_key() -> None:
    """Defence in depth: even a caller that skipped the origin check sends no key away."""
    recalls = spider()
    [first] = start_requests(recalls)
    state = recalls.result_set(RECALLS, answer(first, page(1)), first.meta["fdawatch_started"])

    away = recalls.page_request(RECALLS, "https://evil.example/x?search=y", state, "page")
    home = recalls.page_request(RECALLS, "https://api.fda.gov/drug/x.json?search=y", state, "page")

    assert away.url == "https://evil.example/x?search=y"
    assert home.url == f"https://api.fda.gov/drug/x.json?api_key={KEY}&search=y"


def test_a_federal_register_next_page_url_on_another_origin_ends_the_set_incomplete() -> None:
    from spiders.federal_register import FederalRegisterSpider
    from tests.support.paths import FEDERAL_REGISTER

    source = SourceConfig(
        id="fedreg",
        kind="federal_register",
        url="https://www.federalregister.gov/api/v1/documents.json?conditions%5Bterm%5D=ketamine",
    )
    settings = {"FDAWATCH_SOURCES": {source.id: source.to_dict()}, "FDAWATCH_VALIDATORS": {}}
    fedreg = FederalRegisterSpider.from_crawler(get_crawler(FederalRegisterSpider, settings))
    [first] = start_requests(fedreg)
    body = (FEDERAL_REGISTER / "SYNTHETIC-documents-ketamine-page1.json").read_text()
    body = body.replace("{base}", "http://127.0.0.1:9")

    *observations, fetch = drain(fedreg.parse(answer(first, body.encode())))

    assert len(observations) == 2 and all(isinstance(o, Observation) for o in observations)
    assert fetch.outcome == FAILED
    assert fetch.error.startswith("the next page is on another server (http://127.0.0.1:9/api/")
