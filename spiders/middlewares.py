"""Downloader middlewares that keep a struggling server from turning into a wrong answer.

`RetryAfterMiddleware` honours `Retry-After` on 429 / 503: it waits as long as the server asks
(without blocking the reactor) and retries, within `RETRY_TIMES` shared with Scrapy's own
RetryMiddleware; a wait longer than `RETRY_AFTER_MAX_DELAY` gives up for this run with an error
saying when the server wants us back. `RedirectLoopMiddleware` stops a redirect loop at the first
repeated URL (or after `REDIRECT_MAX_TIMES`) with an error naming the loop, instead of Scrapy's
terse "max redirections reached", and refuses a redirect to another site, another port or from
https to plain http: another server's page recorded as this source would be a false "everything
changed". `DownloadSizeMiddleware` names the
size limit when a body without Content-Length grows past `DOWNLOAD_MAXSIZE` (Scrapy cancels it
without a word). All end in the spider's errback, so the source records one FAILED fetch and
never a content change. `LegacyCharsetMiddleware` reads an HTML page that names no charset and is
not UTF-8 as windows-1252, as browsers do, instead of a statistical guess that can turn "ó" into
"µ" (and into a false change once the server starts naming its charset), and so reads a page that
declares UTF-8 but holds windows-1252.
"""

from __future__ import annotations

import codecs
import logging
import re
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

logger = logging.getLogger(__name__)

#: Statuses whose Retry-After we obey (RFC 9110 §10.2.3: 503 and 429 are where it is meaningful).
RETRY_AFTER_STATUSES = frozenset({429, 503})
DEFAULT_MAX_DELAY = 120.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
#: A Retry-After beyond this is not turned into a date (the arithmetic would overflow).
RETRY_AFTER_DATE_LIMIT = 366 * 86400


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
    """True when a redirect from `first_url` to `other_url` stays on the source's site."""
    return offsite_reason(first_url, other_url) is None


def offsite_reason(first_url: str, other_url: str) -> str | None:
    """Why `other_url` is not on `first_url`'s site, or None when it is.

    `fda.gov` → `www.fda.gov` and http → https stay on the site; `localhost` → its IP, another
    port of the same host (another server, possibly not FDA's) and https → plain http do not.
    """
    first, other = urlsplit(first_url), urlsplit(other_url)
    first_host, other_host = first.hostname or "", other.hostname or ""
    if first_host != other_host and site_of(first_host) != site_of(other_host):
        return "to another host"
    if first.scheme.lower() == "https" and other.scheme.lower() == "http":
        return "from https to plain http"
    if explicit_port(first_url) != explicit_port(other_url):
        return "to another port"
    return None


def explicit_port(url: str) -> int | None:
    """The URL's port unless it is its scheme's default (None); -1 for a port that is invalid."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return -1
    return None if port == DEFAULT_PORTS.get(parts.scheme.lower()) else port


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


def seconds_text(seconds: float) -> str:
    """A wait as the server gave it: whole seconds, or `1e+23` for absurd values."""
    return f"{seconds:.0f}" if seconds < 1e12 else f"{seconds:.3g}"


def retry_time(now: datetime, seconds: float) -> str | None:
    """When to come back, in UTC; None beyond a year (where the date arithmetic overflows)."""
    if seconds > RETRY_AFTER_DATE_LIMIT:
        return None
    return f"{now + timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S} UTC"


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
        asked = (
            f"HTTP {response.status} from {response.url} asks to retry after "
            f"{seconds_text(delay)} s"
        )
        retry_at = retry_time(now, delay)
        if delay > self.max_delay:
            when = f"at {retry_at}" if retry_at else "more than a year from now"
            raise RateLimited(
                f"{asked} ({when}), longer than this crawl waits "
                f"({self.max_delay:.0f} s); the next scheduled crawl tries again"
            )
        assert self.crawler.spider is not None
        retry = get_retry_request(
            request, spider=self.crawler.spider, reason=f"{response.status} Retry-After"
        )
        if retry is None:
            tries = request.meta.get("retry_times", 0)
            raise RateLimited(
                f"{asked}; gave up after {tries} retries: try again after {retry_at or 'a year'}"
            )
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
        reason = offsite_reason(visited[0], target) or offsite_reason(request.url, target)
        if reason:
            raise OffsiteRedirect(
                f"redirected {reason}, not followed (if the page really moved there, set "
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
    """An HTML page with no declared charset that is not UTF-8 is read as windows-1252; so is one
    that declares UTF-8 but holds no UTF-8 at all.

    Declared means: a charset in Content-Type, a byte-order mark or a <meta> charset. Otherwise
    Scrapy guesses statistically (charset_normalizer), which on a short Latin-1 page can pick
    hp-roman8; browsers, and the WHATWG encoding standard, fall back to windows-1252, a superset
    of Latin-1's printable characters.

    A server that says UTF-8 but sends windows-1252 (a misconfigured CMS, the same text as
    before) would otherwise turn every "ó" into U+FFFD: a false change. When the body is not
    UTF-8, holds not one valid multi-byte UTF-8 sequence and is valid windows-1252, it is read
    as windows-1252 (with a warning). A UTF-8 body with a few broken bytes keeps its UTF-8
    reading: there the bytes did change.
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
        if read_bom(body)[0]:
            return response
        declared = http_content_type_encoding(content_type) or html_body_declared_encoding(body)
        if declared is None:
            return response if is_utf8(body) else response.replace(encoding=self.FALLBACK)
        if codec_name(declared) == "utf-8" and is_single_byte_text(body, self.FALLBACK):
            logger.warning(
                "%s declares UTF-8 but its body is windows-1252 (no UTF-8 sequence in it): "
                "read as windows-1252",
                response.url,
            )
            return response.replace(encoding=self.FALLBACK)
        return response


#: One well-formed multi-byte UTF-8 sequence (RFC 3629): text in a legacy single-byte encoding
#: almost never contains one by accident.
UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def codec_name(encoding: str) -> str | None:
    """Python's canonical name of an encoding label (`UTF8` → `utf-8`); None if unknown."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return None


def is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_single_byte_text(body: bytes, encoding: str) -> bool:
    """A body that is not UTF-8, holds no UTF-8 sequence at all, and decodes as `encoding`."""
    if is_utf8(body) or UTF8_MULTIBYTE.search(body):
        return False
    try:
        body.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True
