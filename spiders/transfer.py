"""Only a complete transfer is a version: bodies cut short become failed fetches.

Scrapy already fails a body shorter than its Content-Length (DOWNLOAD_FAIL_ON_DATALOSS). Two cuts
get through it, and each would be recorded as a real version ("Removed: …" at T1, then "Added: …"
when the page comes back):

* a response with neither Content-Length nor chunked encoding ends when the connection closes,
  so a connection lost half-way looks like the end; Scrapy flags such a response `partial`.
  `CutShortMiddleware` (588, after decompression) accepts it only when the body visibly ends:
  `</html>` for HTML, the root's end tag for a feed, a closed JSON value, `%%EOF` for a PDF;
* a compressed body cut short whose Content-Length equals the cut: Scrapy's decoders return
  whatever the truncated stream gave. `CompressedStreamMiddleware` (595, before decompression)
  checks that the gzip / deflate / brotli / zstd stream reaches its end marker.

Both raise `TruncatedBody`, which the spiders record as a FAILED fetch ("data loss: …").
"""

from __future__ import annotations

import re
import sys
import zlib
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

CHUNK = 64 * 1024
#: How far from the end of a body its closing mark is looked for.
TAIL_BYTES = 4096
HTML_END = re.compile(rb"</html\s*>", re.IGNORECASE)
FEED_END = re.compile(rb"</(?:rss|feed|rdf:RDF)\s*>", re.IGNORECASE)


class TruncatedBody(Exception):
    """The body is not all there: recorded as a failed fetch, never as a version."""


def stream_complete(encoding: str, body: bytes) -> bool | None:
    """Whether a compressed body reaches its end marker; None for an encoding we do not know.

    The output is thrown away chunk by chunk, so a large body costs time, not memory.
    """
    if encoding in ("gzip", "x-gzip"):
        return _zlib_complete(body, zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        # RFC 9110 deflate is zlib-wrapped; some servers send it raw.
        return _zlib_complete(body, zlib.MAX_WBITS) or _zlib_complete(body, -zlib.MAX_WBITS)
    if encoding == "br":
        return _brotli_complete(body)
    if encoding == "zstd":
        return _zstd_complete(body)
    return None


def _zlib_complete(body: bytes, wbits: int) -> bool:
    decompressor = zlib.decompressobj(wbits)
    data = body
    try:
        while data and not decompressor.eof:
            decompressor.decompress(data, CHUNK)
            data = decompressor.unconsumed_tail
    except zlib.error:
        return False
    return decompressor.eof


def _brotli_complete(body: bytes) -> bool:
    try:
        import brotli
    except ImportError:  # Scrapy then never asked for br
        return True
    decompressor = brotli.Decompressor()
    try:
        decompressor.process(body, output_buffer_limit=CHUNK)
        while not decompressor.is_finished():
            if not decompressor.process(b"", output_buffer_limit=CHUNK):
                break
    except brotli.error:
        return False
    return bool(decompressor.is_finished())


def _zstd_complete(body: bytes) -> bool:
    try:
        if sys.version_info >= (3, 14):
            from compression import zstd
        else:
            from backports import zstd
    except ImportError:  # Scrapy then never asked for zstd
        return True
    decompressor = zstd.ZstdDecompressor()
    try:
        decompressor.decompress(body, CHUNK)
        while not decompressor.eof and decompressor.needs_input is False:
            decompressor.decompress(b"", CHUNK)
    except zstd.ZstdError:
        return False
    return bool(decompressor.eof)


def visible_end_problem(response: Response) -> str | None:
    """Why a connection-delimited body cannot be shown to be whole, or None when it ends well."""
    content_type = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
    body = response.body
    tail = body[-TAIL_BYTES:]
    head = body[:512].lstrip().lower()
    if "html" in content_type or head.startswith((b"<!doctype html", b"<html")):
        return None if HTML_END.search(tail) else "the HTML ends before </html>"
    if "xml" in content_type or "rss" in content_type or "atom" in content_type:
        if FEED_END.search(tail) or (
            head.startswith(b"<?xml") and re.search(rb"</[\w:.-]+\s*>\s*$", tail)
        ):
            return None
        return "the XML ends before its closing root tag"
    if "json" in content_type:
        return None if tail.rstrip()[-1:] in (b"}", b"]") else "the JSON ends before it closes"
    if "pdf" in content_type or body.startswith(b"%PDF"):
        return None if b"%%EOF" in tail else "the PDF ends before %%EOF"
    return f"its end cannot be verified ({content_type or 'no content-type'})"


class CompressedStreamMiddleware:
    """A compressed body must reach its stream's end marker (priority 595)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls()

    def process_response(self, request: Request, response: Response) -> Response:
        if request.method == "HEAD" or not response.body:
            return response
        encodings = (response.headers.get("Content-Encoding") or b"").decode("latin-1")
        outer = encodings.split(",")[-1].strip().lower()
        if not outer or outer == "identity":
            return response
        if stream_complete(outer, response.body) is False:
            raise TruncatedBody(
                f"the {outer} stream from {response.url} ends before its end marker "
                f"({len(response.body)} compressed bytes): the transfer was cut short"
            )
        return response


class CutShortMiddleware:
    """A body that ended with the connection must visibly end (priority 588)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls()

    def process_response(self, request: Request, response: Response) -> Response:
        if "partial" not in response.flags or not 200 <= response.status < 300:
            return response
        problem = visible_end_problem(response)
        if problem:
            raise TruncatedBody(
                f"{response.url} came without a length and the connection closed after "
                f"{len(response.body)} bytes; {problem}: the transfer was cut short"
            )
        return response
