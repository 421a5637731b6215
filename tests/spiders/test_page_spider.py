"""The page spider, plus what every spider shares: source selection, requests, errors."""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from scrapy import Request
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import ConnectionLost, ConnectionRefusedError, DNSLookupError
from twisted.internet.error import TimeoutError as TxTimeoutError
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived
from twisted.web.http import _DataLoss

from monitor.items import DRIFT, FAILED, GONE, NOT_MODIFIED, OK
from monitor.sources import SourceConfig
from spiders.feed import FeedSpider
from spiders.page import PageSpider
from tests.support.paths import PAGES, ROOT

PAGE_HTML = b"""<!DOCTYPE html>
<html lang="en"><head><title>Compounded ketamine | FDA</title></head>
<body>
  <nav><a href="/">Home</a> <a href="/drugs">Drugs</a></nav>
  <main id="main-content">
    <h1 class="content-title">FDA warns patients and health care providers about
      <em>compounded</em> ketamine</h1>
    <p>Compounded oral formulations of ketamine are not FDA approved.</p>
  </main>
  <footer>Content current as of 10/10/2023</footer>
</body></html>"""

ORAL_ALERT_TITLE = (
    "FDA warns patients and health care providers about potential risks associated with "
    "compounded ketamine products, including oral formulations, for the treatment of "
    "psychiatric disorders"
)

VALIDATOR_HEADERS = {
    "Content-Type": "text/html; charset=UTF-8",
    "ETag": '"v1-abc"',
    "Last-Modified": "Tue, 10 Oct 2023 14:00:00 GMT",
    "Date": "Mon, 02 Nov 2026 09:00:00 GMT",
    "X-Cache": "HIT",
}


def page(source: SourceConfig, **changes: Any) -> SourceConfig:
    values = {**source.to_dict(), **changes}
    return SourceConfig(**values)


# --- a 200 page ------------------------------------------------------------------------------


def test_page_yields_region_then_ok_record(make_spider, respond, drain, page_source) -> None:
    spider = make_spider(PageSpider, source=page_source.id)
    moved = page_source.url + "-2023"  # the response after a redirect
    response = respond(page_source, PAGE_HTML, headers=VALIDATOR_HEADERS, url=moved)

    observations, fetch = drain(spider.parse(response))

    assert len(observations) == 1
    seen = observations[0]
    assert seen.key == page_source.url  # stable across redirects
    assert seen.url == moved
    assert seen.title == "FDA warns patients and health care providers about compounded ketamine"
    assert seen.content.startswith('<main id="main-content">')
    assert "not FDA approved" in seen.content
    assert "Home" not in seen.content and "Content current" not in seen.content
    assert seen.content_type == "html"
    assert seen.body == PAGE_HTML
    assert seen.http_status == 200
    assert seen.headers == {
        "content-type": "text/html; charset=UTF-8",
        "etag": '"v1-abc"',
        "last-modified": "Tue, 10 Oct 2023 14:00:00 GMT",
        "date": "Mon, 02 Nov 2026 09:00:00 GMT",
    }
    assert (fetch.outcome, fetch.http_status, fetch.documents) == (OK, 200, 1)
    assert fetch.etag == '"v1-abc"'
    assert fetch.last_modified == "Tue, 10 Oct 2023 14:00:00 GMT"
    assert fetch.document_keys == [page_source.url]
    assert fetch.bytes == len(PAGE_HTML)
    assert fetch.duration_ms == 250
    assert fetch.fetched_at == seen.fetched_at
    assert fetch.fetched_at.utcoffset() is not None


NO_MAIN_HTML = PAGE_HTML.replace(b"<main", b"<div").replace(b"</main>", b"</div>")


@pytest.mark.parametrize(
    ("body", "outcome", "documents"), [(PAGE_HTML, OK, 1), (NO_MAIN_HTML, DRIFT, 0)]
)
def test_a_parsed_page_is_freed_as_soon_as_the_spider_is_done(
    make_spider, respond, drain, page_source, body, outcome, documents
) -> None:
    """No reference cycle keeps a page alive: its body, text and libxml2 tree go at once.

    `response.css` caches a Selector that points back at the response; such cycles waited for
    Python's rare full collection and made a 1,000-page crawl peak at ~230 MB instead of ~120.
    """
    spider = make_spider(PageSpider, source=page_source.id)
    response = respond(page_source, body, headers=VALIDATOR_HEADERS)
    freed = weakref.ref(response)
    gc.disable()  # only reference counting may free it
    try:
        observations, fetch = drain(spider.parse(response))
        del response
        assert freed() is None
    finally:
        gc.enable()
    assert (fetch.outcome, len(observations)) == (outcome, documents)


def test_several_matches_are_joined_and_title_falls_back_to_title_tag(
    make_spider, respond, drain, page_source
) -> None:
    source = page(page_source, selector="div.alert")
    html = (
        b"<html><head><title>  Spravato\n REMS </title></head><body>"
        b'<div class="alert">First warning</div><p>ignored</p><div class="alert">Second</div>'
        b"</body></html>"
    )
    spider = make_spider(PageSpider, sources=[source], source=source.id)

    observations, fetch = drain(spider.parse(respond(source, html)))

    assert observations[0].content == (
        '<div class="alert">First warning</div>\n<div class="alert">Second</div>'
    )
    assert observations[0].title == "Spravato REMS"
    assert fetch.outcome == OK


# --- synthetic fda.gov pages ----------------------------------------------------------------


def crawl_fixture(make_spider, respond, drain, source: SourceConfig, name: str) -> Any:
    spider = make_spider(PageSpider, sources=[source], source=source.id)
    html = (PAGES / name).read_bytes()
    return drain(spider.parse(respond(source, html, headers={"Content-Type": "text/html"})))


def test_fda_page_watches_main_content_only(make_spider, respond, drain, page_source) -> None:
    (seen,), fetch = crawl_fixture(
        make_spider, respond, drain, page_source, "ketamine_oral_alert_synthetic_v1.html"
    )
    (nav_edited,), _ = crawl_fixture(
        make_spider, respond, drain, page_source, "ketamine_oral_alert_synthetic_v3_nav_footer.html"
    )

    assert seen.title == ORAL_ALERT_TITLE
    assert seen.content.startswith('<main role="main" id="main-content"')
    assert "Ketamine is not FDA approved for the treatment of any psychiatric disorder" in (
        seen.content
    )
    assert 'class="lcds-main-menu"' not in seen.content
    assert 'class="lcds-footer"' not in seen.content
    assert nav_edited.content == seen.content  # menu / footer edits are not changes
    assert (fetch.outcome, fetch.documents) == (OK, 1)


def test_fda_page_redesign_is_drift(make_spider, respond, drain, page_source) -> None:
    observations, fetch = crawl_fixture(
        make_spider,
        respond,
        drain,
        page_source,
        "ketamine_oral_alert_synthetic_v6_layout_drift.html",
    )

    assert observations == []
    assert (fetch.outcome, fetch.http_status) == (DRIFT, 200)
    assert fetch.error.startswith(f"selector 'main' matched nothing on {page_source.url} (")
    assert re.search(r"\(the page has \d{2,} elements\)$", fetch.error)


# --- statuses and drift ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (304, NOT_MODIFIED),
        (404, GONE),
        (410, GONE),
        (403, FAILED),
        (429, FAILED),
        (500, FAILED),
        (503, FAILED),
    ],
)
def test_page_status_gives_only_a_fetch_record(
    make_spider, respond, drain, page_source, status: int, outcome: str
) -> None:
    spider = make_spider(PageSpider, source=page_source.id)
    body = b"" if status == 304 else b"<html><body><main>error page</main></body></html>"

    observations, fetch = drain(spider.parse(respond(page_source, body, status=status)))

    assert observations == []
    assert (fetch.outcome, fetch.http_status, fetch.source_id) == (outcome, status, page_source.id)
    assert fetch.etag is None and fetch.documents == 0


def test_selector_matching_nothing_is_drift_not_a_change(
    make_spider, respond, drain, page_source
) -> None:
    spider = make_spider(PageSpider, source=page_source.id)
    html = b"<html><body><div id='new-layout'><h1>Ketamine</h1></div></body></html>"

    observations, fetch = drain(spider.parse(respond(page_source, html)))

    assert observations == []
    assert fetch.outcome == DRIFT
    assert fetch.error == (
        f"selector 'main' matched nothing on {page_source.url} (the page has 4 elements)"
    )


@pytest.mark.parametrize(
    ("response_cls", "body", "content_type", "error_start"),
    [
        (
            Response,
            b"%PDF-1.7 binary",
            "application/pdf",
            "expected an HTML page, got application/",
        ),
        (TextResponse, b"plain words", "text/plain", "expected an HTML page, got text/plain"),
        (HtmlResponse, b"   \n", "text/html", "empty body (text/html)"),
    ],
)
def test_unreadable_200_body_fails_clearly(
    make_spider,
    respond,
    drain,
    page_source,
    response_cls: type[Response],
    body: bytes,
    content_type: str,
    error_start: str,
) -> None:
    spider = make_spider(PageSpider, source=page_source.id)
    response = respond(
        page_source, body, headers={"Content-Type": content_type}, response_cls=response_cls
    )

    observations, fetch = drain(spider.parse(response))

    assert observations == []
    assert fetch.outcome == FAILED
    assert fetch.error is not None and fetch.error.startswith(error_start)


def test_invalid_selector_fails_that_source(make_spider, respond, drain, page_source) -> None:
    source = page(page_source, selector="main >>> p[")
    spider = make_spider(PageSpider, sources=[source], source=source.id)

    _, fetch = drain(spider.parse(respond(source, PAGE_HTML)))

    assert fetch.outcome == FAILED
    assert fetch.error is not None and "invalid CSS selector 'main >>> p['" in fetch.error


# --- network errors (the errback) ------------------------------------------------------------


def caused(outer: type[Exception], inner: Exception) -> Exception:
    """`outer` raised `from inner`, the way Scrapy wraps Twisted errors."""
    try:
        raise outer(str(inner)) from inner
    except outer as error:
        return error


def http_error(status: int) -> HttpError:
    response = Response(
        "https://www.fda.gov/x", status=status, request=Request("https://www.fda.gov/x")
    )
    return HttpError(response, "Ignoring non-200 response")


@pytest.mark.parametrize(
    ("exception", "error_start", "http_status"),
    [
        (CannotResolveHostError("www.fda.gov"), "dns: www.fda.gov", None),
        (DNSLookupError("no such host"), "dns: DNS lookup failed: no such host", None),
        (ConnectionRefusedError(), "connection refused: Connection was refused", None),
        (DownloadTimeoutError("Getting x took longer than 30 s"), "timeout: Getting x", None),
        (TxTimeoutError(), "timeout: User timeout caused connection failure", None),
        (
            ResponseNeverReceived([Failure(ConnectionLost("peer went away"))]),
            "no response: Connection to the other side was lost",
            None,
        ),
        (
            caused(DownloadFailedError, ResponseNeverReceived([Failure(ConnectionLost())])),
            "no response: Connection to the other side was lost",
            None,
        ),
        (ResponseFailed([Failure(_DataLoss())]), "data loss:", None),
        (ResponseDataLossError("Got data loss in x"), "data loss: Got data loss in x", None),
        (DownloadCancelledError("size 30000000 larger than 20971520"), "cancelled: size", None),
        (IgnoreRequest("Forbidden by robots.txt"), "ignored: Forbidden by robots.txt", None),
        (http_error(502), "http error: HTTP 502 for https://www.fda.gov/x", 502),
    ],
)
def test_network_errors_become_failed_records(
    make_spider, page_source, exception: Exception, error_start: str, http_status: int | None
) -> None:
    spider = make_spider(PageSpider, source=page_source.id)
    failure = Failure(exception)
    failure.request = spider.build_request(page_source, {})  # type: ignore[attr-defined]

    (fetch,) = list(spider.on_error(failure))

    assert (fetch.outcome, fetch.source_id, fetch.url) == (FAILED, page_source.id, page_source.url)
    assert fetch.error is not None and fetch.error.startswith(error_start), fetch.error
    assert "Failure" not in fetch.error and len(fetch.error) <= 300
    assert fetch.http_status == http_status
    assert fetch.documents == 0


# --- requests and source selection -----------------------------------------------------------


def test_start_sends_conditional_requests_only_with_validators(
    make_spider, requests_of, page_source
) -> None:
    other = SourceConfig(id="spravato_rems", kind="page", url="https://www.fda.gov/spravato")
    validators = {
        page_source.id: {"etag": '"v1-abc"', "last_modified": "Tue, 10 Oct 2023 14:00:00 GMT"}
    }
    spider = make_spider(PageSpider, sources=[page_source, other], validators=validators)

    first, second = requests_of(spider)

    assert first.url == page_source.url and first.method == "GET"
    assert first.headers.get("If-None-Match") == b'"v1-abc"'
    assert first.headers.get("If-Modified-Since") == b"Tue, 10 Oct 2023 14:00:00 GMT"
    assert first.meta["source_id"] == page_source.id
    assert first.errback is not None and first.dont_filter
    assert second.url == other.url
    assert "If-None-Match" not in second.headers and "If-Modified-Since" not in second.headers


def test_requests_let_the_spider_see_errors_but_still_follow_redirects(
    make_spider, requests_of, page_source
) -> None:
    (request,) = requests_of(make_spider(PageSpider, source=page_source.id))

    handled = request.meta["handle_httpstatus_list"]
    assert {304, 404, 410, 429, 500, 503} <= set(handled)
    assert not {301, 302, 303, 307, 308} & set(handled)
    assert not request.meta.get("dont_redirect")
    assert not request.meta.get("handle_httpstatus_all")  # it would disable RedirectMiddleware


@pytest.mark.parametrize(
    ("spider_cls", "arg", "expected"),
    [
        (PageSpider, "all", ["ketamine_alert", "spravato_rems"]),
        (PageSpider, "spravato_rems", ["spravato_rems"]),
        (PageSpider, " spravato_rems , ketamine_alert ", ["spravato_rems", "ketamine_alert"]),
        (FeedSpider, "all", ["drug_recalls"]),
        (FeedSpider, "drug_recalls", ["drug_recalls"]),
    ],
)
def test_source_argument_selects_sources_of_the_spiders_kind(
    make_spider, requests_of, spider_cls: type, arg: str, expected: list[str]
) -> None:
    spider = make_spider(spider_cls, source=arg)

    assert [request.meta["source_id"] for request in requests_of(spider)] == expected


@pytest.mark.parametrize(
    ("spider_cls", "arg", "message"),
    [
        (PageSpider, "nope", "unknown source id 'nope'; valid page sources: ketamine_alert, spr"),
        (PageSpider, "ketamine_alert,nope", "unknown source id 'nope'"),
        (PageSpider, "drug_recalls", "'drug_recalls' is a feed source: run `scrapy crawl feed -a"),
        (FeedSpider, "ketamine_alert", "valid feed sources: drug_recalls"),
        (PageSpider, " , ", "-a source= is empty"),
    ],
)
def test_bad_source_argument_names_the_id_and_the_valid_ones(
    make_spider, requests_of, spider_cls: type, arg: str, message: str
) -> None:
    spider = make_spider(spider_cls, source=arg)

    with pytest.raises(ValueError) as raised:
        requests_of(spider)

    assert message in str(raised.value)


def test_no_configured_sources_is_an_empty_crawl_not_a_crash(
    make_spider: Callable[..., Any], requests_of
) -> None:
    assert requests_of(make_spider(PageSpider, sources=[])) == []


# --- a real crawl on loopback ----------------------------------------------------------------

CRAWL_CHILD = r'''
"""Serve a tiny site on loopback, crawl it with both spiders, print every item as JSON."""
import json, socket, sys, threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from monitor.sources import SourceConfig

HITS = {}
PAGE = b"<html><body><main><h1>Ketamine</h1><p>Not approved.</p></main></body></html>"
FEED = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>f</title>"
        b"<item><title>Esketamine</title><link>/a</link></item></channel></rss>")
ROUTES = {  # path: (status, headers, body)
    "/old-page": (301, {"Location": "/new-page"}, b""),
    "/new-page": (200, {"Content-Type": "text/html", "ETag": '"p1"'}, PAGE),
    "/feed.xml": (200, {"Content-Type": "application/rss+xml"}, FEED),
    "/boom": (500, {}, b""),
}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        HITS[self.path] = HITS.get(self.path, 0) + 1
        if self.path == "/cached" and self.headers.get("If-None-Match") == '"c1"':
            self.send_response(304)
            self.end_headers()
        elif self.path == "/truncated":  # promises 1000 bytes, sends 16
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"<html><main>half")
            self.close_connection = True
        else:
            status, headers, body = ROUTES.get(self.path.split("?")[0], (404, {}, b""))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_port}"
closed = socket.socket()
closed.bind(("127.0.0.1", 0))
refused_port = closed.getsockname()[1]
closed.close()
sources = [
    SourceConfig(id="moved", kind="page", url=f"{base}/old-page"),
    SourceConfig(id="cached", kind="page", url=f"{base}/cached"),
    SourceConfig(id="boom", kind="page", url=f"{base}/boom"),
    SourceConfig(id="cut", kind="page", url=f"{base}/truncated"),
    SourceConfig(id="refused", kind="page", url=f"http://127.0.0.1:{refused_port}/x"),
    SourceConfig(id="news", kind="feed", url=f"{base}/feed.xml"),
    # an API-style query longer than the 2,083 characters Scrapy's UrlLengthMiddleware drops:
    SourceConfig(id="long_query", kind="page", url=f"{base}/new-page?q=" + "ketamine+" * 300),
]
settings = Settings()
settings.setmodule("spiders.settings", priority="project")
settings.setdict({
    "ADDONS": {},  # no sources.toml / database here: the test says what the add-on would
    "FDAWATCH_SOURCES": {s.id: s.to_dict() for s in sources},
    "FDAWATCH_VALIDATORS": {"cached": {"etag": '"c1"', "last_modified": None}},
    "DOWNLOAD_DELAY": 0, "RETRY_TIMES": 1, "DOWNLOAD_TIMEOUT": 10, "LOG_LEVEL": "WARNING",
}, priority="cmdline")
process = CrawlerProcess(settings)
items = []


def collect(item, **_):
    items.append(item)


for name in ("page", "feed"):
    crawler = process.create_crawler(name)
    crawler.signals.connect(collect, signal=signals.item_scraped)
    process.crawl(crawler, source="all")
process.start()
for item in items:
    row = {"type": type(item).__name__, **asdict(item)}
    row.pop("body", None)
    print(json.dumps(row, default=str))
print(json.dumps({"type": "hits", **HITS}))
'''


@pytest.mark.slow
def test_real_crawl_follows_redirects_and_reports_every_source_once() -> None:
    """Both spiders through Scrapy's real middlewares: redirect, 304, retry, data loss."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", CRAWL_CHILD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    hits = rows.pop()
    fetches = {row["source_id"]: row for row in rows if row["type"] == "SourceFetch"}
    seen = {row["source_id"]: row for row in rows if row["type"] == "Observation"}

    assert sorted(fetches) == ["boom", "cached", "cut", "long_query", "moved", "news", "refused"]
    assert len([row for row in rows if row["type"] == "SourceFetch"]) == 7
    for source_id, observation in seen.items():  # documents first, then the fetch record
        assert rows.index(observation) < rows.index(fetches[source_id])
    assert seen["moved"]["key"].endswith("/old-page")
    assert seen["moved"]["url"].endswith("/new-page")
    assert (fetches["moved"]["outcome"], fetches["moved"]["etag"]) == (OK, '"p1"')
    assert fetches["cached"]["outcome"] == NOT_MODIFIED and "cached" not in seen
    assert fetches["long_query"]["outcome"] == OK and len(seen["long_query"]["url"]) > 2083
    assert (fetches["boom"]["outcome"], fetches["boom"]["http_status"]) == (FAILED, 500)
    assert hits["/boom"] == 2  # RETRY_TIMES=1: retried once before giving up
    assert fetches["cut"]["outcome"] == FAILED
    assert fetches["cut"]["error"].startswith("data loss")
    assert fetches["refused"]["outcome"] == FAILED
    assert fetches["refused"]["error"].startswith("connection refused")
    assert seen["news"]["title"] == "Esketamine"
    assert (fetches["news"]["outcome"], fetches["news"]["documents"]) == (OK, 1)
