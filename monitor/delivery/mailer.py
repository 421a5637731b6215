"""Deliver one finished `EmailMessage`: over SMTP, or as an `.eml` file when SMTP is not set up.

A mailer says only "accepted" (returns a description) or raises `DeliveryError`, which tells the
outbox whether trying again later can help (`temporary`) and whether the server was reachable at
all (`connection`: the outbox then stops trying other emails in the same run). Error texts carry
the server's reply but never the SMTP password.
"""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol

from monitor.config import Settings, SmtpSettings
from monitor.errors import DeliveryError


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> str:
        """Deliver `message`; return where it went; raise DeliveryError when not accepted."""
        ...

    def describe(self) -> str:
        """Where this mailer delivers, for the `alerts send` summary."""
        ...


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


def _classify(code: int, reply: str, *, connection: bool = False) -> DeliveryError:
    """SMTP 5xx is permanent; 4xx and anything odd is worth another try later."""
    return DeliveryError(reply, temporary=not 500 <= code < 600, connection=connection)


class SmtpMailer:
    """Delivers through one SMTP server (SSL, STARTTLS and login as configured)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._tls: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        """One TLS context per mailer, made only when the server is reached over TLS.

        Making one reads the system's CA certificates (~20 ms and ~225,000 small allocations
        here), which a plain-SMTP send never needs and a send run needs only once.
        """
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def describe(self) -> str:
        return f"smtp {self.settings.host}:{self.settings.port}"

    def _scrub(self, text: str) -> str:
        password = self.settings.password
        return text.replace(password, "***") if password else text

    def _connect(self) -> smtplib.SMTP:
        smtp = self.settings
        if smtp.ssl:
            return smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout, context=self._tls_context()
            )
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        if smtp.starttls:
            try:
                client.starttls(context=self._tls_context())
            except (OSError, smtplib.SMTPException):
                client.close()  # a server without STARTTLS must not leak the open socket
                raise
        return client

    def send(self, message: EmailMessage) -> str:
        try:
            self._deliver(message)
        except DeliveryError as error:
            raise DeliveryError(
                self._scrub(error.reason), temporary=error.temporary, connection=error.connection
            ) from None
        return self.describe()

    def _deliver(self, message: EmailMessage) -> None:
        smtp = self.settings
        where = self.describe()
        try:
            client = self._connect()
        except smtplib.SMTPConnectError as error:
            reply = _reply(error.smtp_code, error.smtp_error)
            raise _classify(error.smtp_code, f"{where}: {reply}", connection=True) from None
        except (OSError, smtplib.SMTPException) as error:
            # Refused, timed out, DNS, TLS handshake, server hung up: nobody to talk to now.
            raise DeliveryError(
                f"{where}: cannot connect ({type(error).__name__}: {error})",
                temporary=True,
                connection=True,
            ) from None
        try:
            try:
                if smtp.user and smtp.password is not None:
                    self._login(client)
                client.send_message(message)
            except DeliveryError:
                raise
            except smtplib.SMTPRecipientsRefused as error:
                code, text = next(iter(error.recipients.values()), (450, b"recipient refused"))
                raise _classify(code, _reply(code, text)) from None
            except smtplib.SMTPResponseException as error:
                # SMTPSenderRefused, SMTPDataError, SMTPHeloError: the reply decides.
                reply = _reply(error.smtp_code, error.smtp_error)
                raise _classify(error.smtp_code, reply) from None
            except (OSError, smtplib.SMTPException) as error:
                # SMTPServerDisconnected, timeouts mid-conversation, STARTTLS problems.
                raise DeliveryError(
                    f"{where}: {type(error).__name__}: {error}", temporary=True, connection=True
                ) from None
        finally:
            _quit_quietly(client)

    def _login(self, client: smtplib.SMTP) -> None:
        """Log in; a refusal names the user and the server's code, never the password.

        Bad credentials are a configuration problem, not a property of the message, so they are
        temporary: once the operator fixes the password the queued alerts still go out.
        """
        try:
            client.login(self.settings.user or "", self.settings.password or "")
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(
                f"authentication failed for user {self.settings.user} ({error.smtp_code})",
                temporary=True,
                connection=True,
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(
                f"authentication failed for user {self.settings.user} (server offers no AUTH; "
                "does it need STARTTLS?)",
                temporary=True,
                connection=True,
            ) from None


def _quit_quietly(client: smtplib.SMTP) -> None:
    """Say goodbye; once the message is accepted, a failing QUIT must not undo the success."""
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


_HASH_IN_ID = re.compile(r"fdawatch\.([0-9a-f]{8,40})@")


def eml_name(message: EmailMessage) -> str:
    """`<UTC timestamp of Date>-<Message-ID hash>.eml`: a re-sent message replaces its file."""
    message_id = str(message.get("Message-ID", ""))
    match = _HASH_IN_ID.search(message_id)
    digest = match.group(1) if match else hashlib.sha1(message_id.encode()).hexdigest()[:16]
    try:
        date = parsedate_to_datetime(str(message["Date"]))
    except (TypeError, ValueError):
        date = datetime.now(UTC)
    return f"{date.astimezone(UTC):%Y%m%dT%H%M%SZ}-{digest}.eml"


class EmlMailer:
    """Writes each message to `outbox_dir` as an .eml file (the no-SMTP fallback)."""

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = Path(outbox_dir)

    def describe(self) -> str:
        return f"{self.outbox_dir}/"

    def send(self, message: EmailMessage) -> str:
        return str(write_eml(message, self.outbox_dir / eml_name(message)))


def write_eml(message: EmailMessage, path: Path) -> Path:
    """Write `message` to `path` atomically (temp file in the same folder, then rename)."""
    temp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".eml")
        temp = Path(temp_name)
        with os.fdopen(handle, "wb") as out:
            out.write(message.as_bytes())
            out.flush()
            os.fsync(out.fileno())
        temp.replace(path)
    except OSError as error:
        if temp is not None:
            temp.unlink(missing_ok=True)
        reason = f"cannot write {path}: {error}"
        raise DeliveryError(reason, temporary=True, connection=True) from None
    return path


def mailer_for(settings: Settings) -> SmtpMailer | EmlMailer:
    """SMTP when it is configured, otherwise .eml files in the outbox folder."""
    if settings.smtp is not None:
        return SmtpMailer(settings.smtp)
    return EmlMailer(settings.outbox_dir)
