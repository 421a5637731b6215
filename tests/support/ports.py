"""Loopback ports for servers a test starts in another process (SMTP, Scrapyd)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on (bound and released; good enough for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
