"""The one loopback HTTP server of the tests (and `make demo`): scripted answers, recorded files.

A request is answered, in this order, by
1. a *script*: ``script(target, *answers)`` makes a path + query answer these `Answer`s in turn,
   repeating the last. Targets are compared as routes (`route_of`: query pairs sorted, openFDA's
   ``api_key`` left out and logged apart), so ``?a=1&b=2`` and ``?b=2&a=1`` are one target. An
   `Answer` can misbehave on purpose: a delay before the status line, a body that drips in, a
   Content-Length it never delivers, a 50 MB stream, headers that never end;
2. a *fixture folder* replayed by version (`tests.support.replay`; ``set_version(n)``), with
   conditional GET, and per-path ``faults`` (a status, a delay, a truncated body, a redirect, a
   body override; ``{"status": 503, "times": 2}``) switched on at run time;
3. else 404.
Every answer is logged as a `Hit`. Binds 127.0.0.1 only; stdlib only. ``python -m
tests.support.loopback ROOT`` serves a fixture folder and prints its URL (the first stdout line).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.message import Message
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from tests.support.replay import (
    FixtureTree,
    Recorded,
    content_type_for,
    last_modified_for,
    make_etag,
    not_modified,
)

__all__ = ["Answer", "Hit", "LoopbackServer", "main", "route_of"]

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
CONTROL_VERSION = "/__version"
CONTROL_SET_VERSION = "/__set_version/"
TEXT = {"Content-Type": "text/plain; charset=utf-8"}
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """One response. `length` overrides Content-Length (None: the body's length; -1: none, the
    body ends when the connection closes)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between single body bytes
    length: int | None = None
    stream: int = 0  # send this many filler bytes after `body` (a huge response)
    header_flood: int = 0  # send this many 8 KB header lines and never end the headers


class Hit(NamedTuple):
    """One answered request. ``headers`` are the request's (case-insensitive look-ups)."""

    method: str
    target: str  # the raw request target, query string included
    status: int
    headers: Message
    route: str  # `route_of(target)`
    api_key: str | None  # the api_key query parameter sent, if any
    at: float  # time.monotonic() when it was answered


def route_of(target: str) -> tuple[str, str | None]:
    """(route, the api_key sent) of a request target: query pairs sorted, ``api_key`` left out."""
    path, _, query = unquote(target).partition("?")
    pairs = [pair for pair in query.split("&") if pair]
    key = next((p.split("=", 1)[1] for p in pairs if p.startswith("api_key=")), None)
    kept = sorted(p for p in pairs if not p.startswith("api_key="))
    return (f"{path}?{'&'.join(kept)}" if kept else path), key


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


class LoopbackServer:
    """Serve scripts and (optionally) the fixture folder ``root`` on 127.0.0.1, in a thread.

    Use as a context manager (or ``start()``/``stop()``; both idempotent, and a stopped server's
    port refuses connections). ``.url`` is the base URL, ``.hits`` the log.
    """

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        version: int = 1,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the loopback server binds to loopback only, not {host!r}")
        self.tree = FixtureTree(root) if root is not None else None
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.routes: dict[str, list[Answer]] = {}
        self.faults: dict[str, dict[str, Any]] = {}
        self.hits: list[Hit] = []
        self.errors: list[BaseException] = []  # unexpected handler errors (not hang-ups)
        self._version = 1
        self._lock = threading.Lock()
        self._fault_hits: dict[str, tuple[object, int]] = {}
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.set_version(version)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        """Bind and serve in a background thread; returns self so ``start()`` chains."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server((self.host, self.port), _Handler)
        httpd.loopback = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"loopback-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut short delays and drips, join the request threads, close the socket."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        if self._httpd is None:
            raise RuntimeError("the loopback server is not running; use it as a context manager")
        return f"http://{self.host}:{self.port}"

    # -- scripts, versions, the log ----------------------------------------------------------------

    def script(self, target: str, *answers: Answer) -> None:
        """`target` (path + query) answers `answers` in turn from now on, repeating the last."""
        with self._lock:
            self.routes[route_of(target)[0]] = list(answers)

    def reset(self) -> None:
        """Forget every script and the log."""
        with self._lock:
            self.routes.clear()
            self.hits.clear()

    @property
    def version(self) -> int:
        return self._version

    def set_version(self, version: int) -> None:
        """Replay version ``version`` from now on (files fall back to earlier versions)."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"version must be a whole number ≥ 1, not {version!r}")
        with self._lock:
            self._version = version

    def hits_for(self, target: str) -> list[Hit]:
        """The logged requests of one route (path + query, compared as `route_of` does)."""
        route = route_of(target)[0]
        return [hit for hit in list(self.hits) if hit.route == route]

    def hits_on(self, path: str) -> list[Hit]:
        """The logged requests of one path, whatever their query string."""
        return [hit for hit in list(self.hits) if urlsplit(hit.target).path == path]

    def clear_hits(self) -> None:
        with self._lock:
            self.hits.clear()

    # -- answering ---------------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: Message) -> Answer:
        """The answer to one request (logged as a `Hit`); the handler only writes it out."""
        route, key = route_of(target)
        answer = self._decide(method, target, route, headers)
        with self._lock:
            hit = Hit(method, target, answer.status, headers, route, key, time.monotonic())
            self.hits.append(hit)
        return answer

    def _decide(self, method: str, target: str, route: str, headers: Message) -> Answer:
        path = urlsplit(target).path or "/"
        if path == CONTROL_VERSION or path.startswith(CONTROL_SET_VERSION):
            return self._control(path)
        if method == "POST":
            return Answer(405, b"method not allowed\n", {**TEXT, "Allow": "GET, HEAD"})
        with self._lock:
            queue = self.routes.get(route)
            if queue:
                return queue.pop(0) if len(queue) > 1 else queue[0]
        if self.tree is None:
            return Answer(404, b"not found\n", dict(TEXT))
        return self._replay(target, path, headers)

    def _control(self, path: str) -> Answer:
        if path.startswith(CONTROL_SET_VERSION):
            raw = path[len(CONTROL_SET_VERSION) :].strip("/")
            try:
                self.set_version(int(raw))
            except ValueError:
                return Answer(400, f"bad version {raw!r}\n".encode(), dict(TEXT))
        return Answer(200, f"{self.version}\n".encode(), {**TEXT, "Cache-Control": "no-store"})

    def _replay(self, target: str, path: str, headers: Message) -> Answer:
        """A recorded file at the current version, as changed by the path's fault (if any)."""
        assert self.tree is not None
        fault = self._active_fault(target, path)
        delay = float(fault.get("delay") or 0) if fault else 0.0
        if fault is not None:
            replaced = self._fault_answer(fault)
            if replaced is not None:
                return replace(replaced, delay=delay)
        recorded = self.tree.resolve(path, self.version)
        if recorded is None and fault is not None and "body" in fault:
            recorded = Recorded(0, 200, b"", None, None)  # a body fault can invent a page
        if recorded is None:
            return Answer(404, b"not found\n", dict(TEXT), delay=delay)
        if fault is not None and "body" in fault:
            recorded = recorded._replace(body=_as_bytes(fault["body"]))
        if recorded.status != 200:
            extra = {"Location": self._absolute(recorded.location)} if recorded.location else {}
            ctype = content_type_for(path, recorded.body) if recorded.file else "text/plain"
            answer = Answer(recorded.status, recorded.body, {"Content-Type": ctype, **extra})
        else:
            etag = make_etag(recorded.body)
            modified = last_modified_for(path, recorded.version)
            validators = {
                "ETag": etag,
                "Last-Modified": format_datetime(modified, usegmt=True),
                "X-Fixture-Version": str(recorded.version),
            }
            if not_modified(headers, etag, modified):
                return Answer(304, b"", validators, delay=delay, length=-1)
            ctype = content_type_for(path, recorded.body)
            answer = Answer(200, recorded.body, {"Content-Type": ctype, **validators})
        if fault is not None and fault.get("truncate"):
            answer = _truncated(answer)
        return replace(answer, delay=delay)

    def _fault_answer(self, fault: Mapping[str, Any]) -> Answer | None:
        """The answer a fault puts in place of the file (a redirect or an error), if it does."""
        if "redirect" in fault:
            status = int(fault.get("status", 302))
            if status not in REDIRECT_STATUSES:
                status = 302
            location = self._absolute(str(fault["redirect"]))
            body = f"moved to {location}\n".encode()
            return Answer(status, body, {**TEXT, "Location": location})
        status = fault.get("status")
        if status is None or int(status) == 200:
            return None
        retry_after = fault.get("retry_after")
        extra = {} if retry_after is None else {"Retry-After": str(retry_after)}
        body = _as_bytes(fault["body"]) if "body" in fault else f"fault: {int(status)}\n".encode()
        answer = Answer(int(status), body, {**TEXT, **extra})
        return _truncated(answer) if fault.get("truncate") else answer

    def _active_fault(self, target: str, path: str) -> Mapping[str, Any] | None:
        """The fault for this request, counting hits for ``times``-limited faults.

        Matched by exact path (the raw target with its query string first, then the bare path).
        Replacing a path's spec with a new dict restarts its ``times`` count.
        """
        key = target if target in self.faults else path
        spec = self.faults.get(key)
        if spec is None:
            return None
        with self._lock:
            previous, hits = self._fault_hits.get(key, (None, 0))
            if previous is not spec:
                hits = 0
            hits += 1
            self._fault_hits[key] = (spec, hits)
        times = spec.get("times")
        if times is not None and hits > int(times):
            return None
        return spec

    def _absolute(self, location: str | None) -> str:
        location = location or "/"
        return self.url + location if location.startswith("/") else location


def _truncated(answer: Answer) -> Answer:
    """The same answer promising more bytes than it sends: the connection closes early."""
    return replace(answer, length=len(answer.body) + max(len(answer.body), 64))


class _Server(ThreadingHTTPServer):
    """Joins its request threads on close, so a stopped server leaves no thread or socket behind."""

    daemon_threads = False
    block_on_close = True
    request_queue_size = 128  # one crawl opens every source's connection at once
    loopback: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet on stderr; keep the error for tests (a client hanging up is not an error)."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        if error is not None:
            self.loopback.errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    """Writes the server's `Answer`: one request per connection, so stopping never waits."""

    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "fdawatch-loopback/1"
    sys_version = ""
    timeout = 10  # a client that connects and says nothing cannot hold stop() forever

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request stderr noise: `LoopbackServer.hits` is the log."""

    def do_GET(self) -> None:
        self._write(self.server.loopback.answer("GET", self.path, self.headers), head=False)

    def do_HEAD(self) -> None:
        self._write(self.server.loopback.answer("HEAD", self.path, self.headers), head=True)

    def do_POST(self) -> None:
        self._write(self.server.loopback.answer("POST", self.path, self.headers), head=False)

    def _write(self, answer: Answer, head: bool) -> None:
        stopping = self.server.loopback._stopping
        self.close_connection = True
        if answer.delay:
            stopping.wait(answer.delay)
        with contextlib.suppress(OSError):  # the client gave up: that is what a fault is for
            if answer.header_flood:
                self._flood_headers(answer, stopping)
                return
            self.send_response_only(answer.status)
            self.send_header("Date", self.date_time_string())
            if not any(name.lower() == "server" for name in answer.headers):
                self.send_header("Server", self.version_string())
            for name, value in answer.headers.items():
                self.send_header(name, value)
            length = len(answer.body) + answer.stream if answer.length is None else answer.length
            if length >= 0:
                self.send_header("Content-Length", str(length))
            self.send_header("Connection", "close")
            self.end_headers()
            if not head:
                self._body(answer, stopping)
            self.wfile.flush()

    def _flood_headers(self, answer: Answer, stopping: threading.Event) -> None:
        """A status line, then header lines until the count runs out or the client hangs up."""
        line = b"X-Filler: " + b"v" * 8180 + b"\r\n"
        self.wfile.write(b"HTTP/1.1 %d OK\r\n" % answer.status)
        for _ in range(answer.header_flood):
            if stopping.is_set():
                break
            self.wfile.write(line)
        self.wfile.flush()

    def _body(self, answer: Answer, stopping: threading.Event) -> None:
        if answer.drip:
            for byte in answer.body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if stopping.wait(answer.drip):
                    return
            return
        self.wfile.write(answer.body)
        remaining = answer.stream
        filler = b"<p>filler</p>\n" * (_CHUNK // 14)
        while remaining > 0 and not stopping.is_set():
            piece = filler[: min(len(filler), remaining)]
            self.wfile.write(piece)
            remaining -= len(piece)


def main(argv: list[str] | None = None) -> int:
    """Serve ROOT until killed; the URL is the first line of stdout so a parent can read it."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.loopback",
        description="Replay recorded sources (ROOT/v1, ROOT/v2, …) on a loopback port.",
    )
    parser.add_argument("root", type=Path, help="directory holding v1/, v2/, …")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    parser.add_argument("--version", type=int, default=1, help="version to serve at start")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    args = parser.parse_args(argv)
    try:
        server = LoopbackServer(args.root, host=args.host, port=args.port, version=args.version)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    done = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with server:
        print(server.url, flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
