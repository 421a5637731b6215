"""A loopback HTTP server that replays recorded sources, so tests and `make demo` never go online.

Layout: ``root/v1/<path>``, ``root/v2/<path>``, … hold what each recorded version looked like.
``GET /<path>`` at version V answers with ``root/vK/<path>`` for the largest K ≤ V that has
it, so a later version only needs the files that changed. ``root/vK/<path>.status`` (e.g.
``410``, or ``301 /new/path``) makes that path answer with that status from version K on — how a
page is retired.

Conditional GET is honoured (strong ETag from the body, a deterministic Last-Modified per path
and served version) so the crawler's 304 handling can be exercised, and per-path *faults* (server
errors, rate limits, truncated bodies, delays, redirects, body overrides) can be switched on at
run time to test source health. Stdlib only: the demo runs it as
``python -m tests.support.fixture_server ROOT``.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import mimetypes
import posixpath
import signal
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_ROBOTS", "FixtureServer", "RequestRecord", "main"]

DEFAULT_ROBOTS = b"User-agent: *\nAllow: /\n"
#: Last-Modified of a file first served from version K is this + K days (+ a per-path offset).
LAST_MODIFIED_BASE = datetime(2026, 1, 1, tzinfo=UTC)
ETAG_HEX_CHARS = 16
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_CONTROL_VERSION = "/__version"
_CONTROL_SET_VERSION = "/__set_version/"
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
}


class RequestRecord(NamedTuple):
    """One answered request, for assertions: ``method, path, status, headers``.

    ``path`` is the raw request target (query string included); ``headers`` is the request's
    ``http.client.HTTPMessage``, so look-ups are case-insensitive (``headers["if-none-match"]``).
    """

    method: str
    path: str
    status: int
    headers: Message


class _Resolved(NamedTuple):
    version: int  # the K whose file answered
    status: int
    body: bytes
    location: str | None
    file: Path | None  # None for built-ins (default robots.txt)


def content_type_for(path: str, body: bytes) -> str:
    """Content-Type by extension; ``.xml`` is sniffed so feeds say they are feeds."""
    suffix = posixpath.splitext(path)[1].lower()
    if suffix == ".xml":
        head = body[:1024].lower()
        if b"<rss" in head:
            return "application/rss+xml; charset=utf-8"
        if b"<feed" in head:
            return "application/atom+xml; charset=utf-8"
        return "application/xml; charset=utf-8"
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


def make_etag(body: bytes) -> str:
    """A strong validator: the quoted start of the body's sha256."""
    return '"' + hashlib.sha256(body).hexdigest()[:ETAG_HEX_CHARS] + '"'


def last_modified_for(path: str, version: int) -> datetime:
    """Deterministic per (path, served version): base + K days + a stable per-path offset < 1 day.

    The offset keeps different paths distinguishable while ordering by K is preserved, so a
    file changed in a later version is always "newer" than its previous copy.
    """
    offset_minutes = int(hashlib.sha256(path.encode("utf-8")).hexdigest()[:8], 16) % (24 * 60)
    return LAST_MODIFIED_BASE + timedelta(days=version, minutes=offset_minutes)


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): ``W/`` prefixes are ignored."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        candidate = candidate.removeprefix("W/")
        if candidate == etag:
            return True
    return False


def _not_modified(headers: Message, etag: str, last_modified: datetime) -> bool:
    """True when the client's validators say its copy is current (If-None-Match wins if sent)."""
    inm = headers.get("If-None-Match")
    if inm is not None:
        return _etag_matches(inm, etag)
    ims = headers.get("If-Modified-Since")
    if ims is None:
        return False
    try:
        since = parsedate_to_datetime(ims)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since >= last_modified


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    """Joins its request threads on close, so a stopped server leaves no thread or socket behind."""

    daemon_threads = False
    request_queue_size = 64  # a crawler's burst of connections must not be dropped
    block_on_close = True
    fixture: FixtureServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet on stderr; keep the error for tests (a client hanging up is not an error)."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        self.fixture.errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    """One request per connection (HTTP/1.0 semantics), so shutdown never waits on keep-alive."""

    server: _Server
    server_version = "fdawatch-fixtures/1"
    sys_version = ""
    timeout = 10  # a client that connects and says nothing cannot hold stop() forever

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request stderr noise; `FixtureServer.requests` is the log."""

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith(_CONTROL_SET_VERSION):
            self._answer(head=False)
        else:
            self._send(
                405,
                b"method not allowed\n",
                "text/plain; charset=utf-8",
                head=False,
                extra={"Allow": "GET, HEAD"},
            )

    # -- the answer ---------------------------------------------------------------------------

    def _answer(self, head: bool) -> None:
        fixture = self.server.fixture
        target = self.path
        path = urlsplit(target).path or "/"
        if path == _CONTROL_VERSION or path.startswith(_CONTROL_SET_VERSION):
            self._control(path, head)
            return
        fault = fixture._active_fault(target, path)
        if fault is not None and self._fault(fault, path, head):
            return
        resolved = fixture.resolve(path)
        if resolved is None and fault is not None and "body" in fault:
            resolved = _Resolved(0, 200, b"", None, None)  # a body fault can invent a page
        if resolved is None:
            self._send(404, b"not found\n", "text/plain; charset=utf-8", head)
            return
        if fault is not None and "body" in fault:
            resolved = resolved._replace(body=_as_bytes(fault["body"]))
        truncate = bool(fault and fault.get("truncate"))
        if resolved.status != 200:
            extra = {"Location": fixture._absolute(resolved.location)} if resolved.location else {}
            ctype = content_type_for(path, resolved.body) if resolved.file else "text/plain"
            self._send(resolved.status, resolved.body, ctype, head, extra=extra, truncate=truncate)
            return
        etag = make_etag(resolved.body)
        modified = last_modified_for(path, resolved.version)
        validators = {
            "ETag": etag,
            "Last-Modified": format_datetime(modified, usegmt=True),
            "X-Fixture-Version": str(resolved.version),
        }
        if _not_modified(self.headers, etag, modified):
            self._send(304, b"", None, head=True, extra=validators)
            return
        ctype = content_type_for(path, resolved.body)
        self._send(200, resolved.body, ctype, head, extra=validators, truncate=truncate)

    def _control(self, path: str, head: bool) -> None:
        fixture = self.server.fixture
        if path.startswith(_CONTROL_SET_VERSION):
            raw = path[len(_CONTROL_SET_VERSION) :].strip("/")
            try:
                fixture.set_version(int(raw))
            except ValueError:
                message = f"bad version {raw!r}\n".encode()
                self._send(400, message, "text/plain; charset=utf-8", head)
                return
        body = f"{fixture.version}\n".encode()
        self._send(
            200, body, "text/plain; charset=utf-8", head, extra={"Cache-Control": "no-store"}
        )

    def _fault(self, fault: Mapping[str, Any], path: str, head: bool) -> bool:
        """Apply the parts of a fault that replace the answer; False lets normal serving go on."""
        fixture = self.server.fixture
        delay = fault.get("delay")
        if delay:
            time.sleep(float(delay))
        if "redirect" in fault:
            status = int(fault.get("status", 302))
            if status not in REDIRECT_STATUSES:
                status = 302
            location = fixture._absolute(str(fault["redirect"]))
            self._send(
                status,
                f"moved to {location}\n".encode(),
                "text/plain; charset=utf-8",
                head,
                extra={"Location": location},
            )
            return True
        status = fault.get("status")
        if status is not None and int(status) != 200:
            extra = {}
            if fault.get("retry_after") is not None:
                extra["Retry-After"] = str(fault["retry_after"])
            default = f"fault: {int(status)}\n".encode()
            body = _as_bytes(fault["body"]) if "body" in fault else default
            self._send(
                int(status),
                body,
                "text/plain; charset=utf-8",
                head,
                extra=extra,
                truncate=bool(fault.get("truncate")),
            )
            return True
        return False

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        head: bool,
        extra: Mapping[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        """Write one response and log it; a truncated one promises more bytes than it sends."""
        self.server.fixture._log(self.command, self.path, status, self.headers)
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if status != 304:
            length = len(body) + (max(len(body), 64) if truncate else 0)
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        if not head and status != 304 and body:
            self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


class FixtureServer:
    """Serve ``root/v1``, ``root/v2``, … on 127.0.0.1 from a background thread.

    Use as a context manager (or ``start()``/``stop()``). ``.url`` is the base URL,
    ``.set_version(n)`` picks the recorded version, ``.requests`` logs every answer, and
    ``.faults`` maps an exact path to a fault spec, e.g. ``{"status": 503, "times": 2}``.
    """

    def __init__(
        self, root: Path | str, host: str = "127.0.0.1", port: int = 0, version: int = 1
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"fixture server binds to loopback only, not {host!r}")
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"fixture root {self.root} is not a directory")
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.requests: list[RequestRecord] = []
        self.faults: dict[str, dict[str, Any]] = {}
        self.errors: list[BaseException] = []
        self._version = 1
        self._lock = threading.Lock()
        self._fault_hits: dict[str, tuple[object, int]] = {}
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.set_version(version)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FixtureServer:
        """Bind and serve in a background thread; returns self so ``start()`` chains."""
        if self._httpd is not None:
            return self
        httpd = _Server((self.host, self.port), _Handler)
        httpd.fixture = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fixture-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, join the request threads and close the listening socket (idempotent)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> FixtureServer:
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
            raise RuntimeError("fixture server is not running; use it as a context manager")
        return f"http://{self.host}:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + "/" + path.lstrip("/")

    # -- versions and the log ---------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    def set_version(self, version: int) -> None:
        """Serve version ``version`` from now on (files fall back to earlier versions)."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"version must be a whole number ≥ 1, not {version!r}")
        with self._lock:
            self._version = version

    def requests_for(self, path: str) -> list[RequestRecord]:
        """The logged requests whose path (query ignored) is ``path``."""
        return [r for r in list(self.requests) if urlsplit(r.path).path == path]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def _log(self, method: str, target: str, status: int, headers: Message) -> None:
        with self._lock:
            self.requests.append(RequestRecord(method, target, status, headers))

    def _absolute(self, location: str | None) -> str:
        location = location or "/"
        return self.url + location if location.startswith("/") else location

    # -- faults ---------------------------------------------------------------------------------

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

    # -- files ------------------------------------------------------------------------------------

    def _versions(self) -> list[int]:
        found = []
        for child in self.root.iterdir():
            name = child.name
            if child.is_dir() and name.startswith("v") and name[1:].isdigit():
                found.append(int(name[1:]))
        return sorted(found)

    def resolve(self, path: str, version: int | None = None) -> _Resolved | None:
        """What ``path`` answers at ``version`` (default: current); None means 404."""
        version = self._version if version is None else version
        relative = _safe_relative(path)
        if relative is None:
            return None
        if relative == "robots.txt" and (self.root / "robots.txt").is_file():
            return _Resolved(
                0, 200, (self.root / "robots.txt").read_bytes(), None, self.root / "robots.txt"
            )
        if relative.endswith(".status"):
            return None  # status files steer answers; they are never served themselves
        for k in sorted((v for v in self._versions() if v <= version), reverse=True):
            base = self.root / f"v{k}"
            status_file = base / (relative + ".status")
            file = base / relative
            if status_file.is_file():
                status, location = _parse_status(status_file)
                body = file.read_bytes() if file.is_file() else f"{status}\n".encode()
                return _Resolved(k, status, body, location, file if file.is_file() else None)
            if file.is_file():
                return _Resolved(k, 200, file.read_bytes(), None, file)
        if relative == "robots.txt":
            return _Resolved(0, 200, DEFAULT_ROBOTS, None, None)
        return None


def _safe_relative(path: str) -> str | None:
    """The request path as a path under a version directory, or None if it escapes or is empty."""
    decoded = unquote(path)
    if "\x00" in decoded or "\\" in decoded:
        return None
    parts = [p for p in decoded.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    relative = "/".join(parts)
    if decoded.endswith("/"):
        relative += "/index.html"
    return relative


def _parse_status(file: Path) -> tuple[int, str | None]:
    """``410`` or ``301 /new/path`` → (status, location)."""
    words = file.read_text(encoding="utf-8").split()
    if not words or not words[0].isdigit():
        raise ValueError(f"{file}: expected a status code like 410 or '301 /new/path'")
    status = int(words[0])
    HTTPStatus(status)  # reject nonsense early, with the file named in the traceback
    return status, (words[1] if len(words) > 1 else None)


def main(argv: list[str] | None = None) -> int:
    """Serve ROOT until killed; the URL is the first line of stdout so a parent can read it."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fixture_server",
        description="Replay recorded sources (ROOT/v1, ROOT/v2, …) on a loopback port.",
    )
    parser.add_argument("root", type=Path, help="directory holding v1/, v2/, …")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    parser.add_argument("--version", type=int, default=1, help="version to serve at start")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    args = parser.parse_args(argv)
    try:
        server = FixtureServer(args.root, host=args.host, port=args.port, version=args.version)
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
