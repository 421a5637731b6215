"""Mailers for delivery tests: one that keeps what it is given, one that a server refuses."""

from __future__ import annotations

from email.message import EmailMessage

from monitor.errors import DeliveryError


class Capture:
    """A mailer that keeps what it is given (the messages exactly as the outbox built them)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    def describe(self) -> str:
        return "capture"

    def send(self, message: EmailMessage) -> str:
        self.messages.append(message)
        return "capture"


class Refuses:
    """A mail server refusing every message: 451 (try later) or, `permanent`, 550."""

    def __init__(self, permanent: bool = False) -> None:
        self.permanent = permanent

    def describe(self) -> str:
        return "refuses"

    def send(self, message: EmailMessage) -> str:
        if self.permanent:
            raise DeliveryError("550 5.7.1 message refused", temporary=False)
        raise DeliveryError("451 4.3.0 try again later", temporary=True)
