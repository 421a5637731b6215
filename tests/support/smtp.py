"""The one SMTP server of the tests: aiosmtpd on 127.0.0.1 that records, refuses, or wants a login.

`SmtpServer.inbox` stores what the server accepts (`.messages`) and answers with queued replies
on demand: ``replies["RCPT"]`` / ``replies["DATA"]`` are used once each, then it accepts again.
It can be stopped and started again on the same port (an SMTP server that goes down and comes
back), and can require a login that always fails (``auth=True``) or always succeeds
(``auth=True, accept=True``).
"""

from __future__ import annotations

import email
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from monitor.config import SmtpSettings
from tests.support.ports import free_port

#: The login the tests give fdawatch for servers that want one; the password must never show up
#: in any output, log, database row or email.
USER = "fdawatch-mailer"
PASSWORD = "s3cret-Pa55word-7f1c"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Inbox:
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


def _refuse_login(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    return AuthResult(success=False, handled=False)


def _accept_login(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    return AuthResult(success=True)


class SmtpServer:
    """An SMTP server on 127.0.0.1 (`port`: a free one by default); a context manager."""

    def __init__(
        self, port: int | None = None, *, auth: bool = False, accept: bool = False
    ) -> None:
        self.port = port or free_port()
        self.inbox = Inbox()
        login = _accept_login if accept else _refuse_login
        self._options: dict[str, Any] = (
            {"auth_required": True, "auth_require_tls": False, "authenticator": login}
            if auth
            else {}
        )
        self._controller: Controller | None = None

    @property
    def settings(self) -> SmtpSettings:
        """fdawatch's SMTP settings for this server (no login, no TLS)."""
        return SmtpSettings(host="127.0.0.1", port=self.port, timeout=5)

    @property
    def messages(self) -> list[Received]:
        return self.inbox.messages

    @property
    def replies(self) -> dict[str, list[str]]:
        return self.inbox.replies

    def start(self) -> SmtpServer:
        if self._controller is None:
            controller = Controller(
                self.inbox, hostname="127.0.0.1", port=self.port, **self._options
            )
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening (the port then refuses connections); start() again serves it again."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
