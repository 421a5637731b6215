"""A tiny loopback API server for the API spider tests: answers by path *and* query string.

`tests.support.fixture_server.FixtureServer` serves files by path only (the query string is
ignored), so it cannot serve openFDA's `skip=` pages or Federal Register `page=` pages. Here a route
is the request target with its query pairs sorted and `api_key` removed; each route answers its
queued responses in turn and repeats the last one. Every request is logged with its time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hit:
    at: float  # time.monotonic()
    route: str
    status: int
    api_key: str | None
    headers: dict[str, str] = field(default_factory=dict)  # the request's, names lower-cased


def route_of(target: str) -> tuple[str, str | None]:
    """(normalized route, the api_key sent, if any) of a raw request target."""
    path, _, query = unquote(target).partition("?")
    pairs = [pair for pair in query.split("&") if pair]
    key = next((p.split("=", 1)[1] for p in pairs if p.startswith("api_key=")), None)
    kept = sorted(p for p in pairs if not p.startswith("api_key="))
    return (f"{path}?{'&'.join(kept)}" if kept else path), key


class ApiServer:
    """Use as a context manager; `.url` is the base, `.add(target, …)` queues answers."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Answer]] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add(self, target: str, body: bytes | str = b"", status: int = 200, **headers: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        answer = Answer(status, data, {k.replace("_", "-"): v for k, v in headers.items()})
        self.routes.setdefault(route_of(target)[0], []).append(answer)

    def reset(self) -> None:
        with self._lock:
            self.routes.clear()
            self.hits.clear()

    def hits_for(self, target: str) -> list[Hit]:
        route = route_of(target)[0]
        return [hit for hit in self.hits if hit.route == route]

    def _answer(
        self, target: str, headers: dict[str, str] | None = None
    ) -> tuple[Answer, str, str | None]:
        route, key = route_of(target)
        with self._lock:
            queue = self.routes.get(route)
            if not queue:
                answer = Answer(404, b"not found\n")
            elif len(queue) > 1:
                answer = queue.pop(0)
            else:
                answer = queue[0]
            self.hits.append(Hit(time.monotonic(), route, answer.status, key, headers or {}))
        return answer, route, key

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> ApiServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: `ApiServer.hits` is the log."""

            def do_GET(self) -> None:
                sent = {name.lower(): value for name, value in self.headers.items()}
                answer, _, _ = server._answer(self.path, sent)
                self.send_response(answer.status)
                headers = {"Content-Type": "application/json", **answer.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer.body)

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
        self._thread.join()
