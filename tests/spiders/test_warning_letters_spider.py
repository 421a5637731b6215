"""The `fda_warning_letters` spider on SYNTHETIC listing answers and letter pages.

The listing answers (tests/fixtures/warning_letters/SYNTHETIC-listing-*.json) are built on the
DataTables JSON shape public code documents for FDA's warning-letter listing; the letter pages on
the fda.gov page structure. Each callback is driven by hand: the spider's requests are answered
with responses built from the fixtures, in the order the spider asks for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.utils.test import get_crawler
from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseNeverReceived

from monitor.core.normalize import html_to_text
from monitor.items import BLOCKED, FAILED, NOT_MODIFIED, OK, Observation, SourceFetch
from monitor.sources import SourceConfig
from spiders.blocks import Blocked, Evidence
from spiders.warning_letters import LISTING_PAGE, WarningLettersSpider
from tests.support.paths import WARNING_LETTERS
from tests.support.spiders import start_requests

BASE = "https://www.fda.gov/inspections-compliance-enforcement-and-criminal-investigations/warning-letters/"
KETAMINE = BASE + "synthetic-ketamine-clinic-rx-700101-03102026"
TELEHEALTH = BASE + "synthetic-slim-telehealth-700102-03032026"
SUPPLEMENT = BASE + "synthetic-herbal-supplements-700103-02202026"
SOURCE = SourceConfig(
    id="fda_warning_letters_ketamine",
    kind="fda_warning_letters",
    url=(
        "https://www.fda.gov/datatables/views/ajax?search_api_fulltext=ketamine"
        "&view_name=warning_letter_solr_index&view_display_id=warning_letter_solr_block"
        "&draw=1&start=0&length=100"
    ),
    selector="#main-content",
    tier="T1",
)


def spider(
    known: Iterable[str] | None = (),
    validators: dict[str, Any] | None = None,
    source: SourceConfig = SOURCE,
) -> Any:
    settings: dict[str, Any] = {
        "FDAWATCH_SOURCES": {source.id: source.to_dict()},
        "FDAWATCH_VALIDATORS": validators or {},
    }
    if known is not None:
        settings["FDAWATCH_KNOWN_DOCUMENTS"] = {SOURCE.id: list(known)}
    crawler = get_crawler(WarningLettersSpider, settings)
    return WarningLettersSpider.from_crawler(crawler, source="all")


def listing(name: str = "v2", **changes: Any) -> bytes:
    data = json.loads(
        (WARNING_LETTERS / f"SYNTHETIC-listing-{name}.json").read_text(encoding="utf-8")
    )
    data.update(changes)
    return json.dumps(data).encode()


def letter_page(url: str) -> bytes:
    return (WARNING_LETTERS / f"{url.rsplit('/', 1)[1]}_synthetic.html").read_bytes()


def answer(request: Request, body: bytes, status: int = 200, **headers: str) -> Response:
    request.meta.setdefault("download_latency", 0.1)
    if body.lstrip().startswith((b"{", b"[")):
        cls: type[Response] = TextResponse
        headers.setdefault("Content-Type", "application/json")
    else:
        cls = HtmlResponse
        headers.setdefault("Content-Type", "text/html; charset=UTF-8")
    return cls(request.url, status=status, headers=headers, body=body, request=request)


def run(letters: Any, first: bytes, pages: dict[str, bytes] | None = None, **kw: Any) -> list[Any]:
    """Answer the listing with `first`, then every request the spider makes, until it is done.

    `pages` maps request URLs to bodies (letter pages and later listing pages); a letter not in
    it answers its fixture page. Returns every item and request, in order.
    """
    pages = pages or {}
    [request] = start_requests(letters)
    out: list[Any] = [request]
    pending = list(letters.parse(answer(request, first, **kw)))
    while pending:
        item = pending.pop(0)
        out.append(item)
        if isinstance(item, Request):
            body = pages.get(item.url)
            if body is None:
                body = letter_page(item.url)
            callback = item.callback
            pending = list(callback(answer(item, body))) + pending
    return out


def split(out: list[Any]) -> tuple[list[Request], list[Observation], SourceFetch]:
    requests = [item for item in out if isinstance(item, Request)]
    items = [item for item in out if not isinstance(item, Request)]
    *observations, fetch = items
    assert isinstance(fetch, SourceFetch), items
    assert all(isinstance(o, Observation) for o in observations)
    return requests, observations, fetch


def test_first_fetch_fetches_every_listed_letter_once_in_listing_order() -> None:
    requests, observations, fetch = split(run(spider(known=()), listing("v1")))

    assert [r.url for r in requests[1:]] == [TELEHEALTH, SUPPLEMENT]
    assert [o.key for o in observations] == [TELEHEALTH, SUPPLEMENT]
    assert (fetch.outcome, fetch.documents, fetch.document_keys) == (
        OK,
        2,
        [TELEHEALTH, SUPPLEMENT],
    )
    assert fetch.url == SOURCE.url and fetch.http_status == 200
    assert len({o.fetched_at for o in observations} | {fetch.fetched_at}) == 1


def test_only_the_letter_not_stored_yet_is_fetched_and_observed() -> None:
    requests, observations, fetch = split(
        run(spider(known=[TELEHEALTH, SUPPLEMENT]), listing("v2"), ETag='"l2"')
    )

    assert [r.url for r in requests[1:]] == [KETAMINE]
    [letter] = observations
    text = html_to_text(letter.content)
    assert letter.key == KETAMINE and letter.url == KETAMINE
    assert letter.title == (
        "Warning letter to Synthetic Ketamine Clinic Rx LLC: "
        "Unapproved New Drugs/Misbranded/Internet Sales (Telehealth)"
    )
    assert letter.content_type == "html" and letter.published == "2026-03-17"
    assert letter.content.startswith('<div role="main" id="main-content"')
    assert text.text.splitlines()[0] == "Synthetic Ketamine Clinic Rx LLC"
    assert (
        "Compounded ketamine products are not FDA approved, and your claims suggest they are safe "
        "for at-home use without monitoring for sedation, dissociation or increased blood pressure."
    ) in text.text.splitlines()
    assert (fetch.outcome, fetch.document_keys, fetch.etag) == (OK, [KETAMINE], '"l2"')
    assert fetch.bytes == len(listing("v2")) + len(letter_page(KETAMINE))


def test_nothing_new_is_an_ok_fetch_without_documents() -> None:
    requests, observations, fetch = split(
        run(spider(known=[KETAMINE, TELEHEALTH, SUPPLEMENT]), listing("v2"))
    )

    assert len(requests) == 1 and observations == []
    assert (fetch.outcome, fetch.documents) == (OK, 0)


def test_listing_request_says_it_is_the_pages_own_and_is_conditional() -> None:
    validators = {SOURCE.id: {"etag": '"l1"', "last_modified": None}}
    [request] = start_requests(spider(validators=validators))

    assert request.url == SOURCE.url
    assert request.headers.get("X-Requested-With") == b"XMLHttpRequest"
    assert request.headers.get("Referer") == LISTING_PAGE.encode()
    assert request.headers.get("If-None-Match") == b'"l1"'

    letters = spider(validators=validators)
    [again] = start_requests(letters)
    [fetch] = list(letters.parse(answer(again, b"", status=304)))
    assert fetch.outcome == NOT_MODIFIED


def page_of(rows: list[Any], filtered: int = 3) -> bytes:
    return listing("v2", data=rows, recordsFiltered=filtered)


def test_a_listing_page_of_only_new_letters_reads_the_next_page_until_a_known_one() -> None:
    rows = json.loads(listing("v2"))["data"]
    url = SOURCE.url.replace("length=100", "length=1")
    source = SourceConfig(**{**SOURCE.to_dict(), "url": url})
    letters = spider(known=[SUPPLEMENT], source=source)
    second = url.replace("&start=0", "") + "&start=1"
    third = url.replace("&start=0", "") + "&start=2"
    out = run(
        letters,
        page_of(rows[:1]),
        pages={second: page_of(rows[1:2]), third: page_of(rows[2:])},
    )
    requests, observations, fetch = split(out)

    assert [r.url for r in requests[1:]] == [second, third, KETAMINE, TELEHEALTH]
    assert all(r.headers.get("X-Requested-With") == b"XMLHttpRequest" for r in requests[1:3])
    assert [o.key for o in observations] == [KETAMINE, TELEHEALTH]
    assert fetch.outcome == OK


def test_too_many_new_listing_pages_fail_loudly_but_keep_the_new_letters() -> None:
    rows = json.loads(listing("v2"))["data"]
    letters = spider(known=["https://www.fda.gov/some-older-letter"])
    letters.max_listing_pages = 1

    _, observations, fetch = split(run(letters, page_of(rows[:2])))

    assert [o.key for o in observations] == [KETAMINE, TELEHEALTH]
    assert fetch.outcome == FAILED
    assert fetch.error == (
        "every letter on the first 1 listing pages is new: older new letters may be missed; "
        "check the source more often"
    )


def commands() -> bytes:
    """What Drupal answers with `_wrapper_format=drupal_ajax`: a list of AJAX commands."""
    return json.dumps([{"command": "insert", "data": "<table>…</table>"}]).encode()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            b"<html><body><h1>Access Denied</h1>Reference #18.abc</body></html>",
            "parse error: ListingShapeError: expected the warning-letter listing's JSON, got "
            "text/html; charset=UTF-8",
        ),
        (
            commands(),
            "parse error: ListingShapeError: the warning-letter listing has no 'data' list: its "
            "shape changed",
        ),
        (
            listing("v2", data=[{"posted": "03/17/2026"}]),
            "parse error: ListingShapeError: warning-letter listing row 1 is not a list of 5 or "
            "more cells (got dict): the listing's shape changed",
        ),
        (
            listing("v2", data=[["03/17/2026", "03/10/2026", "Synthetic Co", "CDER", "Subject"]]),
            "parse error: ListingShapeError: warning-letter listing row 1 has no link to a warning "
            "letter in its company column (got 'Synthetic Co'): the listing's shape changed",
        ),
        (
            listing("v2", data=[], recordsFiltered=12),
            "parse error: ListingShapeError: the warning-letter listing lists no rows but says "
            "recordsFiltered 12: the request was not taken as the page's own (X-Requested-With "
            "header?) or the view changed",
        ),
        (
            listing("v2", recordsFiltered=None),
            "parse error: ListingShapeError: the warning-letter listing has no recordsFiltered "
            "count",
        ),
    ],
)
def test_a_listing_whose_shape_changed_fails_the_fetch_and_records_nothing(
    body: bytes, error: str
) -> None:
    requests, observations, fetch = split(run(spider(known=[SUPPLEMENT]), body))

    assert len(requests) == 1 and observations == []
    assert (fetch.outcome, fetch.error, fetch.documents) == (FAILED, error, 0)


def test_an_empty_search_result_is_an_ok_fetch() -> None:
    requests, observations, fetch = split(
        run(spider(known=[]), listing("v2", data=[], recordsFiltered=0))
    )

    assert (len(requests), observations, fetch.outcome) == (1, [], OK)


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (b"<html><body><h1>Page Not Found</h1></body></html>", 404, "HTTP 404"),
        (
            b"<html><body><main><h1>Redesigned</h1></main></body></html>",
            200,
            "selector '#main-content' matched nothing (layout drift?)",
        ),
    ],
)
def test_a_letter_that_cannot_be_read_fails_the_fetch_after_the_others_are_kept(
    body: bytes, status: int, problem: str
) -> None:
    letters = spider(known=[])
    [request] = start_requests(letters)
    [first_letter] = letters.parse(answer(request, listing("v1")))
    [second_letter] = letters.parse_letter(answer(first_letter, body, status=status))
    *observations, fetch = letters.parse_letter(answer(second_letter, letter_page(SUPPLEMENT)))

    assert [o.key for o in observations] == [SUPPLEMENT]
    assert fetch.outcome == FAILED
    assert fetch.error == f"letter {TELEHEALTH}: {problem}"


def test_a_letter_download_error_fails_the_fetch_and_the_others_go_on() -> None:
    letters = spider(known=[])
    [request] = start_requests(letters)
    [first_letter] = letters.parse(answer(request, listing("v1")))
    failure = Failure(ResponseNeverReceived([Failure(ConnectionLost("peer went away"))]))
    failure.request = first_letter  # type: ignore[attr-defined]
    [second_letter] = letters.letter_failed(failure)
    *observations, fetch = letters.parse_letter(answer(second_letter, letter_page(SUPPLEMENT)))

    assert [o.key for o in observations] == [SUPPLEMENT]
    assert (fetch.outcome, fetch.error) == (
        FAILED,
        f"letter {TELEHEALTH}: no response: Connection to the other side was lost in a non-clean "
        "fashion: peer went away.",
    )


def test_a_letter_page_refused_by_the_cdn_ends_the_fetch_as_blocked_keeping_earlier_letters() -> (
    None
):
    letters = spider(known=[])
    [request] = start_requests(letters)
    [first_letter] = letters.parse(answer(request, listing("v1")))
    [second_letter] = letters.parse_letter(answer(first_letter, letter_page(TELEHEALTH)))
    evidence = Evidence(403, second_letter.url, "AkamaiGHost", "blocked: access refused")
    failure = Failure(Blocked(evidence))
    failure.request = second_letter  # type: ignore[attr-defined]

    *observations, fetch = letters.letter_failed(failure)

    assert [o.key for o in observations] == [TELEHEALTH]
    assert (fetch.outcome, fetch.http_status, fetch.server) == (BLOCKED, 403, "AkamaiGHost")
    assert (
        fetch.error
        == f"blocked: access refused: HTTP 403 at {second_letter.url} (Server: AkamaiGHost)"
    )


def test_a_blocked_listing_is_a_failed_fetch_not_an_empty_listing() -> None:
    letters = spider(known=[SUPPLEMENT])
    [request] = start_requests(letters)
    body = b"<html><body>Access Denied</body></html>"

    [fetch] = list(letters.parse(answer(request, body, status=403, Server="AkamaiGHost")))

    assert (fetch.outcome, fetch.http_status, fetch.documents) == (FAILED, 403, 0)


def test_known_keys_missing_from_the_settings_mean_every_letter_is_fetched() -> None:
    """Without FDAWATCH_KNOWN_DOCUMENTS (never in a real crawl) nothing is skipped: the history
    still keys letters by URL, so a stored letter gives no change, it only costs a request."""
    _, observations, _ = split(run(spider(known=None), listing("v2")))

    assert [o.key for o in observations] == [KETAMINE, TELEHEALTH, SUPPLEMENT]
