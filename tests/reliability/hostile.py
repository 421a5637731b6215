"""A loopback HTTP server that misbehaves on purpose: the reliability tests' network faults.

`tests.support.fixture_server.FixtureServer` replays recorded files with a few faults; this one
answers each path (query string included) with scripted `Answer`s, in turn, repeating the last — so
one server can play a whole crawl's worth of broken sources at once: a body that drips in slower
than the download timeout, a Content-Length it never delivers, a 304 that carries a body anyway, a
50 MB stream, a redirect to another host, headers that never end. Stdlib only, 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """One scripted response. `length` overrides Content-Length (None: the body's length;
    -1: no Content-Length, the body ends when the connection closes)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    drip: float = 0.0  # seconds between single body bytes
    length: int | None = None
    stream: int = 0  # send this many filler bytes after `body` (a huge response)
    header_flood: int = 0  # send this many 8 KB header lines and never end the headers


@dataclass
class Hit:
    target: str
    status: int
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # one crawl opens every source's connection at once
    hostile: HostileServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A crawler hanging up on a drip or a huge body is the point, not an error."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: `HostileServer.hits` is the log."""

    def do_GET(self) -> None:
        answer = self.server.hostile.next_answer(self.path, dict(self.headers.items()))
        if answer is None:
            answer = Answer(404, b"not scripted\n", {"Content-Type": "text/plain"})
        if answer.delay:
            time.sleep(answer.delay)
        if answer.header_flood:
            self._flood_headers(answer)
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        length = answer.length
        if length is None:
            length = len(answer.body) + answer.stream
        if length >= 0:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client gave up: that is what the fault is for
            self._body(answer)

    def _flood_headers(self, answer: Answer) -> None:
        """A status line, then header lines until the count runs out or the client hangs up."""
        self.close_connection = True
        line = b"X-Filler: " + b"v" * 8180 + b"\r\n"
        with contextlib.suppress(OSError):
            self.wfile.write(b"HTTP/1.1 %d OK\r\n" % answer.status)
            for _ in range(answer.header_flood):
                self.wfile.write(line)
            self.wfile.flush()

    def _body(self, answer: Answer) -> None:
        if answer.drip:
            for byte in answer.body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(answer.drip)
            return
        self.wfile.write(answer.body)
        remaining = answer.stream
        filler = b"<p>filler</p>\n" * (CHUNK // 14)
        while remaining > 0:
            piece = filler[: min(len(filler), remaining)]
            self.wfile.write(piece)
            remaining -= len(piece)
        self.wfile.flush()


class HostileServer:
    """`script(target, *answers)` sets what `target` (path + query) answers, in turn."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Answer]] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def script(self, target: str, *answers: Answer) -> None:
        with self._lock:
            self.routes[target] = list(answers)

    def next_answer(self, target: str, headers: dict[str, str]) -> Answer | None:
        with self._lock:
            queue = self.routes.get(target)
            if not queue:
                self.hits.append(Hit(target, 404, headers))
                return None
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            self.hits.append(Hit(target, answer.status, headers))
            return answer

    def hits_for(self, target: str) -> Iterator[Hit]:
        return (hit for hit in list(self.hits) if hit.target == target)

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start the server first"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HostileServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.hostile = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: the port then refuses connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
