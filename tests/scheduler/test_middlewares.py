"""The downloader middlewares on their own: Retry-After parsing, waiting, giving up; redirect loops.

Real crawls through them are in test_source_health.py; here every branch is driven directly, with
the wait recorded instead of slept.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from scrapy import Request, Spider
from scrapy.http import HtmlResponse, Response
from scrapy.utils.test import get_crawler

from spiders.middlewares import (
    LegacyCharsetMiddleware,
    OffsiteRedirect,
    RateLimited,
    RedirectLoop,
    RedirectLoopMiddleware,
    RetryAfterMiddleware,
    retry_after_seconds,
)

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
URL = "https://www.fda.gov/drugs/human-drug-compounding/compounding-risk-alerts"


def http_date(seconds_from_now: float) -> str:
    return format_datetime(NOW + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (b"5", 5.0),
        (" 30 ", 30.0),
        (http_date(90), 90.0),
        (http_date(-600), 0.0),  # a date already past: retry now
        ("Mon, 02 Nov 2026 09:02:00", 120.0),  # a date without a zone is read as UTC
        ("soon", None),
        ("-5", None),
        ("1.5", None),  # delay-seconds is a whole number (RFC 9110 §10.2.3)
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    header: str | bytes | None, expected: float | None
) -> None:
    assert retry_after_seconds(header, NOW) == expected


class Recorder:
    """Stands in for the reactor sleep: records each wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def retry_after_middleware(retry_times: int = 2) -> tuple[RetryAfterMiddleware, Recorder]:
    crawler = get_crawler(Spider, {"RETRY_TIMES": retry_times, "RETRY_AFTER_MAX_DELAY": 120})
    crawler.spider = Spider.from_crawler(crawler, name="page")
    sleep = Recorder()
    return RetryAfterMiddleware(crawler, sleep=sleep, clock=lambda: NOW), sleep


def answer(status: int, headers: dict[str, str], meta: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    request = Request(URL, meta=dict(meta or {}))
    return request, Response(URL, status=status, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "retry_after", "waits"),
    [
        (429, "2", [2.0]),
        (503, http_date(30), [30.0]),
        (429, "0", []),  # "now": retried without waiting
        (429, "120", [120.0]),  # exactly the cap is still waited for
    ],
)
def test_a_short_retry_after_is_waited_for_then_retried(
    status: int, retry_after: str, waits: list[float]
) -> None:
    middleware, sleep = retry_after_middleware()
    request, response = answer(status, {"Retry-After": retry_after})
    result = asyncio.run(middleware.process_response(request, response))
    assert isinstance(result, Request)
    assert result.url == URL and result.meta["retry_times"] == 1
    assert sleep.waits == waits


@pytest.mark.parametrize(
    ("status", "headers", "meta"),
    [
        (429, {}, {}),  # no Retry-After: Scrapy's RetryMiddleware retries it as usual
        (429, {"Retry-After": "whenever"}, {}),
        (500, {"Retry-After": "2"}, {}),  # Retry-After only counts on 429 and 503
        (200, {"Retry-After": "2"}, {}),
        (429, {"Retry-After": "2"}, {"dont_retry": True}),
    ],
)
def test_other_responses_pass_through_untouched(
    status: int, headers: dict[str, str], meta: dict[str, object]
) -> None:
    middleware, sleep = retry_after_middleware()
    request, response = answer(status, headers, meta)
    assert asyncio.run(middleware.process_response(request, response)) is response
    assert sleep.waits == []


def test_a_wait_beyond_the_cap_fails_at_once_saying_when_to_come_back() -> None:
    middleware, sleep = retry_after_middleware()
    request, response = answer(429, {"Retry-After": "3600"})
    with pytest.raises(RateLimited) as raised:
        asyncio.run(middleware.process_response(request, response))
    message = str(raised.value)
    assert "HTTP 429" in message and URL in message
    assert "retry after 3600 s (at 2026-11-02 10:00:00 UTC)" in message
    assert "120 s" in message  # the cap the user can raise
    assert sleep.waits == []


def test_retries_are_shared_with_retry_times_and_end_in_a_dated_error() -> None:
    middleware, sleep = retry_after_middleware(retry_times=2)
    request, response = answer(503, {"Retry-After": "10"}, {"retry_times": 2})
    with pytest.raises(RateLimited) as raised:
        asyncio.run(middleware.process_response(request, response))
    assert "gave up after 2 retries: try again after 2026-11-02 09:00:10 UTC" in str(raised.value)
    assert sleep.waits == []


@pytest.mark.parametrize(
    ("retry_after", "asked", "when"),
    [
        ("99999999999999999999999", "1e+23", "more than a year from now"),
        ("9" * 400, "inf", "more than a year from now"),  # float() of it is infinite
        (str(400 * 86400), "34560000", "more than a year from now"),
        (str(300 * 86400), "25920000", "at 2027-08-29 09:00:00 UTC"),
    ],
)
def test_an_absurd_retry_after_reads_as_rate_limited_not_an_overflow(
    retry_after: str, asked: str, when: str
) -> None:
    middleware, sleep = retry_after_middleware()
    request, response = answer(503, {"Retry-After": retry_after})
    with pytest.raises(RateLimited) as raised:
        asyncio.run(middleware.process_response(request, response))
    assert str(raised.value) == (
        f"HTTP 503 from {URL} asks to retry after {asked} s ({when}), longer than this crawl "
        "waits (120 s); the next scheduled crawl tries again"
    )
    assert sleep.waits == []


def redirect(location: str, meta: dict[str, object] | None = None, url: str = URL):  # type: ignore[no-untyped-def]
    request = Request(url, meta=dict(meta or {}))
    return request, Response(url, status=302, headers={"Location": location}, request=request)


@pytest.mark.parametrize(
    ("location", "meta", "url", "chain"),
    [
        (URL, {}, URL, f"{URL} -> {URL}"),
        ("/drugs/human-drug-compounding/compounding-risk-alerts", {}, URL, f"{URL} -> {URL}"),
        (
            URL,
            {"redirect_urls": [URL], "redirect_times": 1},
            "https://www.fda.gov/moved",
            f"{URL} -> https://www.fda.gov/moved -> {URL}",
        ),
    ],
)
def test_a_redirect_back_to_a_visited_url_fails_naming_the_loop(
    location: str, meta: dict[str, object], url: str, chain: str
) -> None:
    middleware = RedirectLoopMiddleware(get_crawler(Spider, {"REDIRECT_MAX_TIMES": 10}))
    request, response = redirect(location, meta, url)
    with pytest.raises(RedirectLoop, match="comes back to a URL already visited") as raised:
        middleware.process_response(request, response)
    assert str(raised.value).startswith(chain + " ")


def test_a_chain_longer_than_redirect_max_times_fails_with_its_start() -> None:
    middleware = RedirectLoopMiddleware(get_crawler(Spider, {"REDIRECT_MAX_TIMES": 2}))
    visited = [f"https://www.fda.gov/hop{n}" for n in range(2)]
    request, response = redirect(
        "https://www.fda.gov/hop3", {"redirect_urls": visited}, "https://www.fda.gov/hop2"
    )
    with pytest.raises(RedirectLoop, match=r"more than 2 redirects starting at .*/hop0"):
        middleware.process_response(request, response)


@pytest.mark.parametrize(
    ("status", "headers"),
    [(302, {"Location": "https://www.fda.gov/new-home"}), (200, {}), (302, {})],
)
def test_an_ordinary_redirect_or_answer_passes_to_scrapy(
    status: int, headers: dict[str, str]
) -> None:
    middleware = RedirectLoopMiddleware(get_crawler(Spider, {"REDIRECT_MAX_TIMES": 10}))
    request = Request(URL)
    response = Response(URL, status=status, headers=headers, request=request)
    assert middleware.process_response(request, response) is response


def test_the_project_settings_enable_both_in_front_of_scrapys_own() -> None:
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("spiders.settings", priority="project")
    order = settings.getwithbase("DOWNLOADER_MIDDLEWARES")
    assert order["spiders.middlewares.RetryAfterMiddleware"] > 550  # RetryMiddleware
    assert order["spiders.middlewares.RedirectLoopMiddleware"] > 600  # RedirectMiddleware


@pytest.mark.parametrize(
    ("url", "location", "reason"),
    [
        ("http://127.0.0.1:8000/x", "http://127.0.0.1:8001/meta/secret", "to another port"),
        ("https://www.fda.gov/x", "https://www.fda.gov:8443/x", "to another port"),
        ("https://www.fda.gov/x", "http://www.fda.gov/x", "from https to plain http"),
        ("https://www.fda.gov/x", "http://fda.gov/x", "from https to plain http"),
        ("http://127.0.0.1:8000/x", "http://localhost:8000/x", "to another host"),
        ("https://www.fda.gov/x", "https://www.fda.gov:99999/x", "to another port"),
    ],
)
def test_a_redirect_to_another_port_or_down_to_plain_http_is_refused_like_another_host(
    url: str, location: str, reason: str
) -> None:
    middleware = RedirectLoopMiddleware(get_crawler(Spider, {"REDIRECT_MAX_TIMES": 10}))
    request, response = redirect(location, {}, url)
    with pytest.raises(OffsiteRedirect) as raised:
        middleware.process_response(request, response)
    assert str(raised.value) == (
        f"redirected {reason}, not followed (if the page really moved there, set the source's "
        f"url to it): {url} -> {location}"
    )


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("https://fda.gov/x", "https://www.fda.gov/x"),
        ("http://www.fda.gov/x", "https://www.fda.gov/x"),  # upgrade to https
        ("http://www.fda.gov:80/x", "https://www.fda.gov/x"),  # default ports are no port
        ("https://www.fda.gov/x", "https://www.fda.gov:443/y"),
        ("http://127.0.0.1:8000/x", "/y"),
    ],
)
def test_a_redirect_on_the_same_site_and_port_is_left_to_scrapy(url: str, location: str) -> None:
    middleware = RedirectLoopMiddleware(get_crawler(Spider, {"REDIRECT_MAX_TIMES": 10}))
    request, response = redirect(location, {}, url)
    assert middleware.process_response(request, response) is response


def test_a_downgrade_later_in_a_chain_is_refused_too() -> None:
    """http source → https hop → back to plain http: the hop's https is not given up."""
    middleware = RedirectLoopMiddleware(get_crawler(Spider, {"REDIRECT_MAX_TIMES": 10}))
    request, response = redirect(
        "http://www.fda.gov/z", {"redirect_urls": ["http://www.fda.gov/x"]}, "https://www.fda.gov/y"
    )
    with pytest.raises(OffsiteRedirect, match=r"^redirected from https to plain http"):
        middleware.process_response(request, response)


# --- charset: a page that says UTF-8 but is windows-1252 ----------------------------------------

CHARSET_TEXT = "Información: “ketamina” – niños… Versión 2"


def html_answer(body: bytes, content_type: str) -> tuple[Request, HtmlResponse]:
    request = Request(URL)
    headers = {"Content-Type": content_type}
    return request, HtmlResponse(URL, headers=headers, body=body, request=request)


def charset_page(text: str, meta: str = "") -> str:
    return (
        f"<html><head>{meta}<title>t</title></head><body><main><p>{text}</p></main></body></html>"
    )


@pytest.mark.parametrize(
    ("body", "content_type", "encoding"),
    [
        (charset_page(CHARSET_TEXT).encode("cp1252"), "text/html; charset=utf-8", "cp1252"),
        (charset_page(CHARSET_TEXT).encode("cp1252"), "text/html; charset=UTF8", "cp1252"),
        (  # declared in a <meta> instead of the header
            charset_page(CHARSET_TEXT, '<meta charset="utf-8">').encode("cp1252"),
            "text/html",
            "cp1252",
        ),
        (charset_page(CHARSET_TEXT).encode("cp1252"), "text/html", "cp1252"),  # no charset
        (charset_page(CHARSET_TEXT).encode("utf-8"), "text/html; charset=utf-8", "utf-8"),
        (  # UTF-8 with one broken byte stays UTF-8: those bytes did change
            charset_page(CHARSET_TEXT).encode("utf-8").replace(b"2", b"\xff"),
            "text/html; charset=utf-8",
            "utf-8",
        ),
        (  # declared windows-1252 is honoured as it is
            charset_page(CHARSET_TEXT).encode("cp1252"),
            "text/html; charset=windows-1252",
            "cp1252",
        ),
        (  # a byte windows-1252 does not define: not windows-1252 either, left as declared
            charset_page(CHARSET_TEXT).encode("cp1252") + b"\x81",
            "text/html; charset=utf-8",
            "utf-8",
        ),
    ],
)
def test_a_page_declaring_utf8_that_holds_windows_1252_is_read_as_windows_1252(
    body: bytes, content_type: str, encoding: str
) -> None:
    request, response = html_answer(body, content_type)
    read = LegacyCharsetMiddleware().process_response(request, response)
    assert isinstance(read, HtmlResponse) and read.encoding == encoding


def test_a_misdeclared_charset_normalises_to_the_same_text_as_the_baseline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Case 18 of the fault matrix: the same text, mis-declared, is no change (and no U+FFFD)."""
    from monitor.core.normalize import html_to_text

    baseline = charset_page(CHARSET_TEXT).encode("utf-8")
    misdeclared = charset_page(CHARSET_TEXT).encode("cp1252")
    texts = []
    for body in (baseline, misdeclared):
        request, response = html_answer(body, "text/html; charset=utf-8")
        read = LegacyCharsetMiddleware().process_response(request, response)
        texts.append(html_to_text(read.text).text)
    assert texts == [CHARSET_TEXT, CHARSET_TEXT]
    assert f"{URL} declares UTF-8 but its body is windows-1252" in caplog.text
