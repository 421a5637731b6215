"""Running the review app on waitress: a production WSGI server in pure Python.

waitress has no C extension to build and no process model to configure, runs on every platform
fdawatch runs on, and serves a handful of reviewers with its thread pool; behind a reverse proxy
(README) it takes `X-Forwarded-*` from that proxy only.
"""

from __future__ import annotations

import errno
import threading
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from monitor.errors import CommandError

TICK = 0.2  # seconds: how soon `shutdown` is noticed


class AppServer:
    """A bound waitress server: `serve_forever` in this thread, `shutdown` from another."""

    def __init__(self, app: Any, host: str, port: int, *, proxied: bool = False) -> None:
        options: dict[str, Any] = {"threads": 4, "ident": "fdawatch"}
        if proxied:  # trust the proxy on this machine for the scheme and host it was asked for
            options.update(trusted_proxy="127.0.0.1", trusted_proxy_headers={"x-forwarded-proto"})
        try:
            self._server = create_server(app, host=host, port=port, **options)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {port} on {host} is in use; pick another with --port"
                ) from None
            raise CommandError(
                f"cannot listen on {host}:{port}: {error.strerror or error}; pick another "
                "--host or --port"
            ) from None
        self.server_address = (self._server.effective_host, self._server.effective_port)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._serving: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://{host}:{port}/"

    def serve_forever(self) -> None:
        """Answer requests until `shutdown` (waitress' own loop cannot be stopped from outside
        without closing its sockets under it, so this runs it a tick at a time)."""
        self._serving = threading.current_thread()
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=TICK, map=self._server._map, count=1)
        finally:
            self._close()

    def shutdown(self) -> None:
        self._stop.set()
        serving = self._serving
        if serving is None or serving is threading.current_thread() or not serving.is_alive():
            self._close()
            return
        self._server.pull_trigger()  # wakes the loop now rather than after its tick
        serving.join(timeout=10)

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._server.task_dispatcher.shutdown()
            wasyncore.close_all(self._server._map)

    def server_close(self) -> None:
        """Nothing left to close after `shutdown` (kept for the callers of the old server)."""


def serve_in_thread(server: AppServer) -> AppServer:
    threading.Thread(target=server.serve_forever, daemon=True, name="fdawatch-serve").start()
    return server
