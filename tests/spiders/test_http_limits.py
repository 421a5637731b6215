"""Bounded response headers, driven through the real Twisted client protocol without a network.

`BoundedHeadersProtocol` is fed bytes as a server would send them (Twisted's StringTransport
stands in for the socket): a normal answer passes, too many or too large headers fail the
response with the limit named and drop the connection. A real crawl against a loopback server
that streams headers forever is `test_network.py::…[endless_headers]`.
"""

from __future__ import annotations

import pytest
from scrapy.settings import Settings
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web._newclient import Request as TxRequest
from twisted.web._newclient import ResponseFailed
from twisted.web.http_headers import Headers

from spiders.base import describe_failure
from spiders.http_limits import (
    HOOK_AVAILABLE,
    BoundedHeadersDownloadHandler,
    BoundedHeadersParser,
    BoundedHeadersProtocol,
    HeaderLimits,
    ResponseHeadersTooLarge,
)

LIMITS = HeaderLimits(count=100, size=64 * 1024)
STATUS = b"HTTP/1.1 200 OK\r\n"


class Exchange:
    """One request on a fresh connection, and what became of its response."""

    def __init__(self, limits: HeaderLimits = LIMITS) -> None:
        self.transport = StringTransport()
        self.protocol = BoundedHeadersProtocol()
        self.protocol.limits = limits
        self.protocol.makeConnection(self.transport)
        request = TxRequest(b"GET", b"/", Headers({b"Host": [b"127.0.0.1"]}), None)
        self.results: list[object] = []
        self.protocol.request(request).addBoth(self.results.append)
        self.fed = 0

    def feed(self, data: bytes, chunk: int = 4096) -> None:
        """Deliver `data` as the socket would, stopping once the connection is being closed."""
        for start in range(0, len(data), chunk):
            if self.transport.disconnecting:
                return
            self.protocol.dataReceived(data[start : start + chunk])
            self.fed += len(data[start : start + chunk])

    def failure(self) -> Failure:
        (result,) = self.results
        assert isinstance(result, Failure), result
        return result


def headers(count: int, size: int = 20) -> bytes:
    return b"".join(b"X-Filler-%d: %s\r\n" % (n, b"v" * size) for n in range(count))


def test_an_answer_at_the_limit_passes_with_its_headers() -> None:
    exchange = Exchange()
    exchange.feed(STATUS + headers(99) + b"Content-Length: 2\r\n\r\nok")  # 100 headers
    (response,) = exchange.results
    assert response.code == 200  # type: ignore[attr-defined]
    assert response.headers.getRawHeaders(b"x-filler-98") == [b"v" * 20]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            STATUS + headers(101),
            "response headers exceed 100 headers (FDAWATCH_MAX_RESPONSE_HEADERS); "
            "the response is not recorded",
        ),
        (  # 8 KB lines without end: the probe's case, stopped after 64 KiB
            STATUS + headers(10_000, size=8192),
            "response headers exceed 65536 bytes (FDAWATCH_MAX_RESPONSE_HEADER_BYTES); "
            "the response is not recorded",
        ),
        (  # one line that never ends
            STATUS + b"X-Endless: " + b"v" * 10_000_000,
            "response headers exceed 65536 bytes (FDAWATCH_MAX_RESPONSE_HEADER_BYTES); "
            "the response is not recorded",
        ),
        (  # folded continuation lines count as bytes, not as headers
            STATUS + b"X-Folded: a\r\n" + b" continued line of forty-something bytes\r\n" * 5000,
            "response headers exceed 65536 bytes (FDAWATCH_MAX_RESPONSE_HEADER_BYTES); "
            "the response is not recorded",
        ),
    ],
    ids=["too_many", "endless_8kb_lines", "endless_line", "endless_folding"],
)
def test_headers_past_a_limit_fail_the_response_naming_it_and_drop_the_connection(
    data: bytes, message: str
) -> None:
    exchange = Exchange()
    exchange.feed(data)

    failure = exchange.failure()
    assert failure.check(ResponseFailed)
    (reason,) = failure.value.reasons  # type: ignore[attr-defined]
    assert isinstance(reason.value, ResponseHeadersTooLarge)
    assert describe_failure(failure) == f"response failed: {message}"
    assert exchange.transport.disconnecting  # no more bytes are read
    assert exchange.fed <= 64 * 1024 + 2 * 4096 + len(STATUS)  # memory stayed bounded


def test_the_limits_come_from_the_settings() -> None:
    exchange = Exchange(HeaderLimits(count=3, size=1000))
    exchange.feed(STATUS + headers(4))
    assert "exceed 3 headers" in describe_failure(exchange.failure())
    parser = exchange.protocol._parser
    assert parser is None or isinstance(parser, BoundedHeadersParser)


def test_the_project_settings_use_the_bounded_handler_for_http_and_https() -> None:
    """If Scrapy's internals move, HOOK_AVAILABLE turns False and the limits would be off."""
    assert HOOK_AVAILABLE
    settings = Settings()
    settings.setmodule("spiders.settings", priority="project")
    handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
    handler = "spiders.http_limits.BoundedHeadersDownloadHandler"
    assert (handlers["http"], handlers["https"]) == (handler, handler)
    assert BoundedHeadersDownloadHandler.__module__ == "spiders.http_limits"
    assert settings.getint("FDAWATCH_MAX_RESPONSE_HEADERS") == 100
    assert settings.getint("FDAWATCH_MAX_RESPONSE_HEADER_BYTES") == 65536
