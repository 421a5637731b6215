"""Downloader middlewares that keep a struggling server from turning into a wrong answer.

`RetryAfterMiddleware` honours `Retry-After` on 429 / 503: it waits as long as the server asks
(without blocking the reactor) and retries, within `RETRY_TIMES` shared with Scrapy's own
RetryMiddleware; a wait longer than `RETRY_AFTER_MAX_DELAY` gives up for this run with an error
saying when the server wants us back. `RedirectLoopMiddleware` stops a redirect loop at the first
repeated URL (or after `REDIRECT_MAX_TIMES`) with an error naming the loop, instead of Scrapy's
terse "max redirections reached". Both end in the spider's errback, so the source records one
FAILED fetch and never a content change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Self
from urllib.parse import urljoin

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future

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
