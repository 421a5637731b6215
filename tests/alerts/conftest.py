"""Fixtures for the alert tests: a real SMTP server on loopback that can be told to refuse.

`SmtpServer.replies` queues forced replies per SMTP stage ("RCPT" or "DATA"); each queued reply
is used once, then the server goes back to accepting. Accepted messages land in `.messages`.
"""

from __future__ import annotations

import email
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from monitor.config import SmtpSettings


def free_port() -> int:
    """A loopback port nothing listens on (bound and released; good enough for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Recorder:
    """aiosmtpd handler: stores what it accepts, answers with queued replies on demand."""

    messages: list[Received] = field(default_factory=list)
    replies: dict[str, list[str]] = field(default_factory=lambda: {"RCPT": [], "DATA": []})
    #: Called with each accepted message (e.g. to SIGKILL the sender: accepted, never committed).
    on_accept: Callable[[Received], None] | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.replies["RCPT"]:
            return self.replies["RCPT"].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.replies["DATA"]:
            return self.replies["DATA"].pop(0)
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), message)
        self.messages.append(received)
        if self.on_accept is not None:
            self.on_accept(received)
        return "250 Message accepted for delivery"


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.recorder = Recorder()
        self._controller: Controller | None = None

    @property
    def settings(self) -> SmtpSettings:
        return SmtpSettings(host="127.0.0.1", port=self.port, timeout=5)

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages

    @property
    def replies(self) -> dict[str, list[str]]:
        return self.recorder.replies

    def start(self) -> None:
        self._controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_down() -> Iterator[SmtpServer]:
    """A server object whose port has no listener until the test calls `.start()`."""
    server = SmtpServer(free_port())
    yield server
    server.stop()
