"""Bounded response headers: a server that never ends its headers fails the fetch, fast.

DOWNLOAD_MAXSIZE bounds bodies only. Twisted's HTTP/1.1 client keeps every header line it is
sent until the blank line that ends them, so a server streaming 8 KB header lines forever grows
the crawl by gigabytes in seconds (until the download timeout, or the OOM killer, ends it).
Neither Scrapy nor Twisted has a setting for this, so `BoundedHeadersDownloadHandler` (Scrapy's
HTTP/1.1 handler, enabled for http and https in `spiders/settings.py`) parses responses with
`BoundedHeadersParser`: Scrapy's lenient parser, counting header lines and bytes as they come.
Past `FDAWATCH_MAX_RESPONSE_HEADERS` headers or `FDAWATCH_MAX_RESPONSE_HEADER_BYTES` bytes (also
the longest single line) the connection is dropped and the fetch fails with "response headers
exceed …": a source-health problem, never a content change.

The hook uses Scrapy's private classes (`http11._LenientHTTP11ClientFactory` and friends), the
same way Scrapy itself swaps Twisted's parser. They are looked up, not assumed: on a Scrapy
without them the handler logs a warning and runs unbounded, and
`tests/spiders/test_http_limits.py` (a loopback server streaming headers) fails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from scrapy.core.downloader.handlers import http11
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from twisted.web._newclient import HEADER, STATUS

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.internet.interfaces import IAddress
    from twisted.web._newclient import HTTP11ClientProtocol
    from twisted.web._newclient import Request as TxRequest

logger = logging.getLogger(__name__)

MAX_HEADERS_SETTING = "FDAWATCH_MAX_RESPONSE_HEADERS"
MAX_HEADER_BYTES_SETTING = "FDAWATCH_MAX_RESPONSE_HEADER_BYTES"
DEFAULT_MAX_HEADERS = 100
DEFAULT_MAX_HEADER_BYTES = 64 * 1024

#: The Scrapy internals the hook builds on (present in Scrapy 2.13 – 2.19).
_HOOK_NAMES = (
    "_LenientHTTPClientParser",
    "_LenientHTTP11ClientProtocol",
    "_LenientHTTP11ClientFactory",
)
HOOK_AVAILABLE = all(hasattr(http11, name) for name in _HOOK_NAMES)


class ResponseHeadersTooLarge(Exception):
    """The server sent more header lines or bytes than the limits allow."""


@dataclass(frozen=True)
class HeaderLimits:
    count: int = DEFAULT_MAX_HEADERS
    size: int = DEFAULT_MAX_HEADER_BYTES


def header_limits(crawler: Crawler) -> HeaderLimits:
    settings = crawler.settings
    return HeaderLimits(
        count=settings.getint(MAX_HEADERS_SETTING, DEFAULT_MAX_HEADERS),
        size=settings.getint(MAX_HEADER_BYTES_SETTING, DEFAULT_MAX_HEADER_BYTES),
    )


if HOOK_AVAILABLE:
    _Parser: Any = http11._LenientHTTPClientParser
    _Protocol: Any = http11._LenientHTTP11ClientProtocol
    _Factory: Any = http11._LenientHTTP11ClientFactory
else:  # pragma: no cover - only on a Scrapy whose internals moved
    _Parser = _Protocol = _Factory = object


class BoundedHeadersParser(_Parser):  # type: ignore[misc]
    """Scrapy's lenient response parser that stops at the header limits.

    Installed on a parser Twisted already made (by assigning `__class__`, as Scrapy does), so
    it has no `__init__`: `limit` sets its limits and counters. Raising from `lineReceived`
    makes Twisted drop the connection and fail the response with `ResponseFailed`.
    """

    limits: HeaderLimits
    header_count: int
    header_bytes: int

    def limit(self, limits: HeaderLimits) -> None:
        self.limits = limits
        self.header_count = 0
        self.header_bytes = 0
        self.MAX_LENGTH = limits.size  # the longest line LineReceiver buffers

    def lineReceived(self, line: bytes) -> None:
        if self.state in (STATUS, HEADER):
            self.header_bytes += len(line) + 1
            if self.state == HEADER and line.strip(b"\r") and line[:1] not in (b" ", b"\t"):
                self.header_count += 1
            if self.header_count > self.limits.count:
                raise ResponseHeadersTooLarge(
                    f"response headers exceed {self.limits.count} headers "
                    f"({MAX_HEADERS_SETTING}); the response is not recorded"
                )
            if self.header_bytes > self.limits.size:
                raise self.too_many_bytes()
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        """One header line (or the unfinished rest) longer than the whole allowance."""
        raise self.too_many_bytes()

    def too_many_bytes(self) -> ResponseHeadersTooLarge:
        return ResponseHeadersTooLarge(
            f"response headers exceed {self.limits.size} bytes "
            f"({MAX_HEADER_BYTES_SETTING}); the response is not recorded"
        )


class BoundedHeadersProtocol(_Protocol):  # type: ignore[misc]
    """Scrapy's HTTP/1.1 client protocol, parsing each response with `BoundedHeadersParser`."""

    limits: HeaderLimits

    def request(self, request: TxRequest) -> Any:
        result = super().request(request)
        parser = self._parser
        if parser is not None:  # None only when the request was refused outright
            parser.__class__ = BoundedHeadersParser
            parser.limit(self.limits)
        return result


class BoundedHeadersFactory(_Factory):  # type: ignore[misc]
    """Builds `BoundedHeadersProtocol`s; the pool calls it as (quiescentCallback, metadata)."""

    def __init__(self, quiescentCallback: Any, metadata: Any, *, limits: HeaderLimits) -> None:
        super().__init__(quiescentCallback, metadata)
        self.limits = limits

    def buildProtocol(self, addr: IAddress | None) -> HTTP11ClientProtocol:
        protocol = BoundedHeadersProtocol(self._quiescentCallback)
        protocol.limits = self.limits
        return protocol  # type: ignore[no-any-return]


class BoundedHeadersDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 download handler with bounded response headers."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.limits = header_limits(crawler)
        pool = getattr(self, "_pool", None)
        if not HOOK_AVAILABLE or getattr(pool, "_factory", None) is not _Factory:
            logger.warning(
                "response header limits are OFF: this Scrapy's HTTP/1.1 handler no longer has "
                "the internals spiders/http_limits.py hooks into; update it"
            )
            self.bounded = False
            return
        pool._factory = partial(BoundedHeadersFactory, limits=self.limits)  # type: ignore[union-attr]
        self.bounded = True
