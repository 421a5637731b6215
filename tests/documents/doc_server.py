"""A loopback server for the linked-document tests: a page and its documents, with ETags.

Each path answers what was last `put` there (body, content type, status); a GET carrying the
current ETag in If-None-Match is answered 304, as fda.gov's CDN does. Every request is logged.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Served:
    body: bytes
    content_type: str
    status: int = 200

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass(frozen=True)
class Hit:
    path: str
    status: int
    if_none_match: str | None


class DocumentServer:
    """Use as a context manager; `.url` is the base."""

    def __init__(self) -> None:
        self.paths: dict[str, Served] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def put(self, path: str, body: bytes, content_type: str, status: int = 200) -> None:
        with self._lock:
            self.paths[path] = Served(body, content_type, status)

    def hits_for(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    def clear_hits(self) -> None:
        with self._lock:
            self.hits.clear()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def _answer(self, path: str, if_none_match: str | None) -> tuple[int, Served | None]:
        with self._lock:
            served = self.paths.get(path)
            if served is None:
                status = 404
            elif served.status == 200 and if_none_match == served.etag:
                status = 304
            else:
                status = served.status
            self.hits.append(Hit(path, status, if_none_match))
        return status, served

    def __enter__(self) -> DocumentServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: `DocumentServer.hits` is the log."""

            def do_GET(self) -> None:
                status, served = server._answer(self.path, self.headers.get("If-None-Match"))
                body = served.body if served is not None and status != 304 else b""
                if served is None:
                    body = b"not found\n"
                self.send_response(status)
                if served is not None:
                    self.send_header("Content-Type", served.content_type)
                    self.send_header("ETag", served.etag)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
