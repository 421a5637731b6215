"""Downloader middlewares that keep a struggling server from turning into a wrong answer.

`RetryAfterMiddleware` honours `Retry-After` on 429 / 503: it waits as long as the server asks
(without blocking the reactor) and retries, within `RETRY_TIMES` shared with Scrapy's own
RetryMiddleware; a wait longer than `RETRY_AFTER_MAX_DELAY` gives up for this run with an error
saying when the server wants us back. `RedirectLoopMiddleware` stops a redirect loop at the first
repeated URL (or after `REDIRECT_MAX_TIMES`) with an error naming the loop, instead of Scrapy's
terse "max redirections reached", and refuses a redirect to another site: another site's page
recorded as this source would be a false "everything changed". `DownloadSizeMiddleware` names the
size limit when a body without Content-Length grows past `DOWNLOAD_MAXSIZE` (Scrapy cancels it
without a word). All end in the spider's errback, so the source records one FAILED fetch and
never a content change. `LegacyCharsetMiddleware` reads an HTML page that names no charset and is
not UTF-8 as windows-1252, as browsers do, instead of a statistical guess that can turn "ó" into
"µ" (and into a false change once the server starts naming its charset).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Self
from urllib.parse import urljoin, urlsplit

from scrapy import signals
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse
from scrapy.utils.defer import maybe_deferred_to_future
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

#: Statuses whose Retry-After we obey (RFC 9110 §10.2.3: 503 and 429 are where it is meaningful).
RETRY_AFTER_STATUSES = frozenset({429, 503})
DEFAULT_MAX_DELAY = 120.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class RateLimited(Exception):
    """The server asked us to come back later than this crawl is willing to wait."""


class RedirectLoop(Exception):
    """A redirect chain came back to a URL it had already visited, or never ended."""


class OffsiteRedirect(IgnoreRequest):
    """A redirect to another site: not followed, so its page is never recorded as this source."""


class ResponseTooLarge(DownloadCancelledError):
    """A body without a (truthful) Content-Length grew past DOWNLOAD_MAXSIZE."""


#: Two-letter country domains whose registrable names sit one level deeper (fda.gov.uk-style
#: `co.uk`, `gov.au`, `com.br`): the second-level labels that are really public suffixes.
_SECOND_LEVEL_SUFFIXES = frozenset({"ac", "co", "com", "edu", "gov", "net", "org"})


def site_of(host: str) -> str:
    """The registrable part of a host (`www.accessdata.fda.gov` → `fda.gov`); an IP is itself."""
    host = host.lower().rstrip(".")
    labels = host.split(".")
    if host.replace(".", "").isdigit() or ":" in host or len(labels) <= 2:
        return host
    keep = 3 if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def same_site(first_url: str, other_url: str) -> bool:
    """True when both URLs are on one site: `fda.gov` → `www.fda.gov` is, `localhost` → IP not."""
    first, other = urlsplit(first_url).hostname or "", urlsplit(other_url).hostname or ""
    return first == other or site_of(first) == site_of(other)


def retry_after_seconds(value: str | bytes | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or an HTTP-date); None if unusable.

    A date in the past means "now" (0). Garbage is ignored rather than guessed at.
    """
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


async def reactor_sleep(seconds: float) -> None:
    """Wait without blocking the reactor (other sources keep downloading meanwhile)."""
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))  # type: ignore[arg-type]


class RetryAfterMiddleware:
    """On 429 / 503 with Retry-After: wait as asked (up to a cap), then retry.

    Sits just outside RetryMiddleware (priority 560 > 550), so it sees these responses first and
    RetryMiddleware never retries them a second time. Without a usable Retry-After header the
    response passes through and RetryMiddleware handles it as any other retryable status.
    """

    def __init__(
        self,
        crawler: Crawler,
        *,
        sleep: Callable[[float], Awaitable[None]] = reactor_sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        settings = crawler.settings
        if not settings.getbool("RETRY_ENABLED"):
            raise NotConfigured
        self.crawler = crawler
        self.max_delay = settings.getfloat("RETRY_AFTER_MAX_DELAY", DEFAULT_MAX_DELAY)
        self.sleep = sleep
        self.clock = clock

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status not in RETRY_AFTER_STATUSES or request.meta.get("dont_retry"):
            return response
        now = self.clock()
        delay = retry_after_seconds(response.headers.get("Retry-After"), now)
        if delay is None:
            return response
        asked = f"HTTP {response.status} from {response.url} asks to retry after {delay:.0f} s"
        retry_at = f"{now + timedelta(seconds=delay):%Y-%m-%d %H:%M:%S} UTC"
        if delay > self.max_delay:
            raise RateLimited(
                f"{asked} (at {retry_at}), longer than this crawl waits "
                f"({self.max_delay:.0f} s); the next scheduled crawl tries again"
            )
        assert self.crawler.spider is not None
        retry = get_retry_request(
            request, spider=self.crawler.spider, reason=f"{response.status} Retry-After"
        )
        if retry is None:
            tries = request.meta.get("retry_times", 0)
            raise RateLimited(f"{asked}; gave up after {tries} retries: try again after {retry_at}")
        if delay > 0:
            await self.sleep(delay)
        return retry


class RedirectLoopMiddleware:
    """Fails a redirect that returns to a URL already visited, or one past REDIRECT_MAX_TIMES.

    Sits just outside RedirectMiddleware (610 > 600) and only raises; following redirects stays
    RedirectMiddleware's job.
    """

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("REDIRECT_ENABLED"):
            raise NotConfigured
        self.max_redirects = settings.getint("REDIRECT_MAX_TIMES")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        location = response.headers.get("Location")
        if response.status not in REDIRECT_STATUSES or location is None:
            return response
        if request.meta.get("dont_redirect"):
            return response
        target = urljoin(request.url, location.decode("latin-1"))
        visited = [*request.meta.get("redirect_urls", []), request.url]
        if not same_site(visited[0], target):
            raise OffsiteRedirect(
                "redirected to another host, not followed (if the page really moved there, set "
                f"the source's url to it): {visited[0]} -> {target}"
            )
        if target in visited:
            chain = " -> ".join([*visited[visited.index(target) :], target])
            raise RedirectLoop(
                f"{chain} comes back to a URL already visited; the page cannot be fetched until "
                "the site fixes it (or point the source's url at the final address)"
            )
        if len(visited) > self.max_redirects:
            raise RedirectLoop(
                f"more than {self.max_redirects} redirects starting at {visited[0]} "
                f"(last: {request.url} -> {target}); point the source's url at the final address"
            )
        return response


class DownloadSizeMiddleware:
    """Says "too large" when Scrapy cancels a body that grew past DOWNLOAD_MAXSIZE.

    A response that announces its size is refused by Scrapy with a clear message; one that
    streams without a Content-Length is cancelled with an empty DownloadCancelledError. Counting
    the bytes each request received (the `bytes_received` signal) tells the two causes apart.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.maxsize = crawler.settings.getint("DOWNLOAD_MAXSIZE")
        if not self.maxsize:
            raise NotConfigured
        self.received: dict[int, int] = {}
        crawler.signals.connect(self.bytes_received, signal=signals.bytes_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def bytes_received(self, data: bytes, request: Request, spider: object) -> None:
        self.received[id(request)] = self.received.get(id(request), 0) + len(data)

    def process_response(self, request: Request, response: Response) -> Response:
        self.received.pop(id(request), None)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        received = self.received.pop(id(request), 0)
        if isinstance(exception, DownloadCancelledError) and received > self.maxsize:
            raise ResponseTooLarge(
                f"Received more than {received} bytes which is larger than download max size "
                f"({self.maxsize}) from {request.url}; the response is not recorded"
            ) from exception


class LegacyCharsetMiddleware:
    """An HTML page with no declared charset that is not UTF-8 is read as windows-1252.

    Declared means: a charset in Content-Type, a byte-order mark or a <meta> charset. Otherwise
    Scrapy guesses statistically (charset_normalizer), which on a short Latin-1 page can pick
    hp-roman8; browsers, and the WHATWG encoding standard, fall back to windows-1252, a superset
    of Latin-1's printable characters.
    """

    FALLBACK = "cp1252"

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls()

    def process_response(self, request: Request, response: Response) -> Response:
        if not isinstance(response, HtmlResponse):
            return response
        content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
        body = response.body
        if http_content_type_encoding(content_type) or read_bom(body)[0]:
            return response
        if html_body_declared_encoding(body):
            return response
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return response.replace(encoding=self.FALLBACK)
        return response
