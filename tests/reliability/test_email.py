"""Email faults against real SMTP servers on loopback: nothing lost, nothing sent twice.

Each case drains the outbox against a server that refuses in one way, checks what the user reads
(`SendReport` errors, the outbox row's `last_error`, `fdawatch alerts list --failed`) and then,
for a temporary failure, drains again once the server behaves: the alert arrives exactly once.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.config import Recipient, SmtpSettings
from monitor.delivery import alerts
from monitor.delivery import mailer as mailer_module
from monitor.delivery.mailer import SmtpMailer
from monitor.errors import DeliveryError
from tests.support import alert_history as factory
from tests.support.alert_history import NOW, SOURCES, queue_change
from tests.support.deployment import db_bytes, fdawatch
from tests.support.ports import free_port
from tests.support.readback import outbox_rows
from tests.support.smtp import PASSWORD, USER, SmtpServer


def drain(engine: Engine, smtp: SmtpSettings, now=NOW) -> alerts.SendReport:  # type: ignore[no-untyped-def]
    settings = factory.settings(smtp=smtp, recipients=(factory.ALICE,))
    return alerts.send_pending(engine, settings, SOURCES, now, SmtpMailer(smtp))


def plain(port: int, **options: object) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, timeout=5, **options)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Refusal:
    name: str
    stage: str
    reply: str
    temporary: bool
    error: str


REFUSALS = [
    Refusal("421_service_closing", "DATA", "421 4.3.2 Service shutting down", True, "421"),
    Refusal(
        "450_mailbox_busy",
        "RCPT",
        "450 4.2.1 Mailbox busy, try later",
        True,
        "450 4.2.1 Mailbox busy",
    ),
    Refusal(
        "550_no_such_user",
        "RCPT",
        "550 5.1.1 No such user here",
        False,
        "550 5.1.1 No such user here",
    ),
    Refusal(
        "553_invalid_recipient_address",
        "RCPT",
        "553 5.1.3 Bad recipient address syntax",
        False,
        "553 5.1.3 Bad recipient address syntax",
    ),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda r: r.name)
def test_a_refusal_is_retried_or_failed_by_its_code_and_never_lost_or_doubled(
    file_engine: Engine, smtp: SmtpServer, refusal: Refusal
) -> None:
    queue_change(file_engine)
    smtp.inbox.replies[refusal.stage].append(refusal.reply)

    report = drain(file_engine, plain(smtp.port))

    (row,) = outbox_rows(file_engine)
    assert refusal.error in (row.last_error or "")
    assert any(refusal.error in e for e in report.errors)
    assert row.status == ("pending" if refusal.temporary else "failed")
    later = drain(file_engine, plain(smtp.port), now=NOW + timedelta(hours=1))
    if refusal.temporary:
        assert (later.emails, len(smtp.inbox.messages)) == (1, 1)
        assert outbox_rows(file_engine)[0].status == "sent"
    else:  # a permanent refusal is not hammered again; the user finds it in the failed list
        assert later.nothing_due and smtp.inbox.messages == []
    assert drain(file_engine, plain(smtp.port), now=NOW + timedelta(days=1)).nothing_due


def test_smtp_refused_keeps_the_alert_pending_with_the_server_named(file_engine: Engine) -> None:
    queue_change(file_engine)
    port = free_port()

    report = drain(file_engine, plain(port))

    (row,) = outbox_rows(file_engine)
    assert row.status == "pending" and row.attempts == 1
    assert f"smtp 127.0.0.1:{port}: cannot connect (ConnectionRefusedError" in (
        row.last_error or ""
    )
    assert report.retry_emails == 1 and report.emails == 0


def test_tls_required_but_not_offered_is_a_retryable_error_naming_starttls(
    file_engine: Engine, smtp: SmtpServer
) -> None:
    queue_change(file_engine)

    report = drain(file_engine, plain(smtp.port, starttls=True))

    (row,) = outbox_rows(file_engine)
    assert row.status == "pending"
    assert "STARTTLS extension not supported by server" in (row.last_error or "")
    assert smtp.inbox.messages == [] and report.retry_emails == 1


def test_tls_certificates_are_loaded_only_for_tls_and_once_per_send_run(
    file_engine: Engine, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the CA certificates costs ~20 ms and ~225,000 allocations: never for plain SMTP."""
    made: list[ssl.SSLContext] = []

    def counted() -> ssl.SSLContext:
        made.append(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        return made[-1]

    monkeypatch.setattr(mailer_module.ssl, "create_default_context", counted)
    queue_change(file_engine)
    assert drain(file_engine, plain(smtp.port)).emails == 1
    assert made == []  # the daemon sends every minute: plain SMTP reads no certificates
    tls = SmtpMailer(plain(smtp.port, starttls=True))
    for _ in range(3):  # this server offers no STARTTLS: each try fails after asking for TLS
        with pytest.raises(DeliveryError, match="STARTTLS"):
            tls.send(EmailMessage())
    assert len(made) == 1


def test_an_invalid_recipient_address_is_refused_at_load_time(tmp_path: Path) -> None:
    config = tmp_path / "fdawatch.toml"
    config.write_text('[[recipient]]\nemail = "ops@@clinic.example"\n', encoding="utf-8")
    (tmp_path / "sources.toml").write_text("", encoding="utf-8")
    result = fdawatch({"FDAWATCH_CONFIG": str(config)}, "sources", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"fdawatch: error: {config}: [[recipient]] #1: 'email' must be one address like "
        "ops@example.org, not 'ops@@clinic.example'"
    ]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_an_authentication_failure_names_the_user_and_never_the_password(
    tmp_path: Path, file_engine: Engine
) -> None:
    queue_change(file_engine, (Recipient(email="ops@clinic.example"),))
    with SmtpServer(auth=True) as server:
        env = {
            "FDAWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
            "FDAWATCH_SOURCES": str(tmp_path / "sources.toml"),
            "FDAWATCH_CONFIG": "",
            "FDAWATCH_SMTP_URL": f"smtp://{USER}:{PASSWORD}@127.0.0.1:{server.port}",
        }
        send = fdawatch(env, "alerts", "send", cwd=tmp_path)
        listed = fdawatch(env, "alerts", "list", "--json", cwd=tmp_path)
    assert send.returncode == 0, send.stderr
    assert f"authentication failed for user {USER} (535)" in send.stderr
    assert "0 to retry later" not in send.stdout  # it will be retried once the login is fixed
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["status"] == "pending" and USER in row["last_error"]
    assert server.inbox.messages == []
    for output in (send.stdout, send.stderr, listed.stdout, listed.stderr):
        assert PASSWORD not in output
    assert PASSWORD.encode() not in db_bytes(tmp_path / "history.db")
