"""Draining the outbox against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from db.models import Change
from monitor.config import SmtpSettings
from monitor.delivery import alerts, compose, outbox, reading
from monitor.delivery.mailer import EmlMailer, SmtpMailer
from monitor.errors import DeliveryError
from tests.support import alert_history as factory
from tests.support.alert_history import NOW, SOURCES, queue_change, queue_numbered
from tests.support.ports import free_port
from tests.support.readback import expected_message_id, outbox_rows, parts, utc
from tests.support.smtp import SmtpServer


def send(
    engine: Engine, server: SmtpServer, now: datetime = NOW, **overrides: object
) -> alerts.SendReport:
    settings = factory.settings(smtp=server.settings, **overrides)
    return alerts.send_pending(engine, settings, SOURCES, now, SmtpMailer(server.settings))


def test_alert_arrives_as_text_and_html_with_the_changed_sentence(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    change_id = queue_change(engine, [factory.ALICE, factory.BOB])

    report = send(engine, smtp_server)

    assert (report.emails, report.alerts, report.retry_emails, report.failed_emails) == (2, 2, 0, 0)
    assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == [
        factory.ALICE.email,
        factory.BOB.email,
    ]
    received = next(m for m in smtp_server.messages if m.rcpt_tos == [factory.ALICE.email])
    message = received.message
    assert message["To"] == factory.ALICE.email
    assert message["From"] == "fdawatch <fdawatch@pharmacy.example>"
    assert message["Subject"] == factory.SUBJECT
    assert message["Message-ID"] == expected_message_id(
        engine, factory.ALICE.email, [f"change:{change_id}"]
    )
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    removed = f"    Removed:   {factory.OLD_SENTENCE}"
    added = f"    Added:     {factory.NEW_SENTENCE}"
    assert f"\r\n{removed}\r\n{added}\r\n" in text
    assert "@@" not in text and "\n---" not in text.replace("\n----", "")
    assert ", and lower urinary tract symptoms</ins>" in html
    assert "fdawatch show" not in text and "fdawatch show" not in html
    page = f"https://fdawatch.pharmacy.example/changes/{change_id}.html"
    assert f"View change & evidence: {page}\r\n" in text
    assert f"Open on fda.gov: {factory.URL}\r\n" in text
    assert f"https://fdawatch.pharmacy.example/changes/{change_id}.html" in html
    rows = outbox_rows(engine)
    assert {(r.status, utc(r.sent_at), r.message_id is not None) for r in rows} == {
        ("sent", NOW, True)
    }

    assert send(engine, smtp_server, now=NOW + timedelta(days=1)).nothing_due
    assert len(smtp_server.messages) == 2  # sent rows are never sent again


def test_smtp_down_keeps_alerts_pending_then_delivers_once_when_back(
    engine: Engine, smtp_down: SmtpServer
) -> None:
    queue_change(engine)
    queue_change(engine, [factory.BOB])  # the page is edited again

    report = send(engine, smtp_down)

    assert (report.emails, report.retry_emails, report.retry_alerts) == (0, 2, 2)
    rows = outbox_rows(engine)
    assert [r.status for r in rows] == ["pending", "pending"]
    assert all(r.sent_at is None and r.attempts == 1 for r in rows)
    assert all(utc(r.next_attempt_at) == NOW + timedelta(minutes=5) for r in rows)
    assert all("cannot connect" in (r.last_error or "") for r in rows)

    smtp_down.start()
    assert send(engine, smtp_down, now=NOW + timedelta(minutes=1)).nothing_due  # not due yet
    later = NOW + timedelta(minutes=6)
    assert send(engine, smtp_down, now=later).emails == 2
    assert send(engine, smtp_down, now=later + timedelta(hours=1)).nothing_due
    assert sorted(m.rcpt_tos[0] for m in smtp_down.messages) == [
        factory.ALICE.email,
        factory.BOB.email,
    ]
    assert {(r.status, r.last_error) for r in outbox_rows(engine)} == {("sent", None)}


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("DATA", "451 4.3.0 Try again later"),
        ("DATA", "421 4.7.0 Service shutting down"),
        ("RCPT", "450 4.2.1 Mailbox busy"),
    ],
)
def test_temporary_reply_backs_off_then_succeeds(
    engine: Engine, smtp_server: SmtpServer, stage: str, reply: str
) -> None:
    queue_change(engine)
    smtp_server.replies[stage].append(reply)

    first = send(engine, smtp_server)

    assert (first.emails, first.retry_emails, first.failed_emails) == (0, 1, 0)
    [row] = outbox_rows(engine)
    assert (row.status, row.attempts, utc(row.next_attempt_at)) == (
        "pending",
        1,
        NOW + timedelta(minutes=5),
    )
    assert reply.split()[0] in (row.last_error or "")
    second = send(engine, smtp_server, now=NOW + timedelta(minutes=5))
    assert second.emails == 1
    [row] = outbox_rows(engine)
    assert (row.status, row.attempts, len(smtp_server.messages)) == ("sent", 2, 1)


def test_backoff_grows_with_each_temporary_failure(engine: Engine, smtp_down: SmtpServer) -> None:
    queue_change(engine)
    now = NOW
    waits = []
    for _ in range(4):
        send(engine, smtp_down, now=now)
        [row] = outbox_rows(engine)
        next_at = utc(row.next_attempt_at)
        assert next_at is not None
        waits.append(next_at - now)
        now = next_at
    assert waits == [timedelta(minutes=m) for m in (5, 10, 20, 40)]


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("RCPT", "550 5.1.1 <alice@pharmacy.example>: Recipient address rejected"),
        ("DATA", "554 5.7.1 Message rejected as spam"),
    ],
)
def test_permanent_reply_marks_failed_with_the_reply(
    engine: Engine, smtp_server: SmtpServer, stage: str, reply: str
) -> None:
    queue_change(engine)
    smtp_server.replies[stage].append(reply)

    report = send(engine, smtp_server)

    assert (report.emails, report.retry_emails, report.failed_emails) == (0, 0, 1)
    [row] = outbox_rows(engine)
    assert (row.status, row.last_error, row.next_attempt_at) == ("failed", reply, None)
    assert send(engine, smtp_server, now=NOW + timedelta(days=2)).nothing_due
    assert smtp_server.messages == []


def test_storm_guard_lists_the_cap_in_full_and_summarises_the_rest(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    queue_numbered(engine, 25)

    report = send(engine, smtp_server, storm_cap=20)

    assert (report.emails, report.alerts) == (1, 25)
    [received] = smtp_server.messages
    text, html = parts(received.message)
    for number in range(1, 21):
        assert f"Update {number}: ketamine labelling note revised." in text
    for number in range(21, 26):
        assert f"Update {number}: ketamine labelling note revised." not in text
        assert f"- T3 {factory.SOURCE_TITLE}: Ketamine notice {number}\r\n" in text
        assert f"Ketamine notice {number}" in html
    assert "…and 5 more changes (T3: 5):" in text
    assert "…and 5 more changes</strong> (T3: 5)" in html
    assert received.message["Subject"].endswith("(+24 more)")
    assert {r.status for r in outbox_rows(engine)} == {"sent"}


def test_storm_diffs_only_the_changes_shown_in_full(
    engine: Engine, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storm of 25: the 20 shown in full are diffed; the other 5 are only listed."""
    ids = queue_numbered(engine, 25)
    with Session(engine) as session:  # a change stored without a title is listed by its page's
        untitled = session.get(Change, ids[-1])
        assert untitled is not None
        untitled.title = ""
        session.add(untitled)
        session.commit()
    diffed: list[str] = []
    real = reading.hunks

    def counted(old: str, new: str, levels: object) -> list[object]:
        diffed.append(new)
        return list(real(old, new, levels))  # type: ignore[arg-type]

    monkeypatch.setattr(reading, "hunks", counted)
    monkeypatch.setattr(compose, "CLAIM_BATCH", 7)  # loaded in 4 batches

    report = send(engine, smtp_server, storm_cap=20)

    assert (report.emails, report.alerts) == (1, 25)
    shown = sorted(int(re.search(r"Update (\d+):", text)[1]) for text in diffed)  # type: ignore[index]
    assert shown == list(range(1, 21))
    text, _ = parts(smtp_server.messages[0].message)
    assert f"- T3 {factory.SOURCE_TITLE}: Ketamine notice 25\r\n" in text


def test_one_email_per_recipient_holds_all_their_changes(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    first = queue_change(engine, [factory.ALICE], tier="T3")
    second = queue_change(engine, [factory.ALICE, factory.BOB])

    send(engine, smtp_server)

    by_recipient = {m.rcpt_tos[0]: m.message for m in smtp_server.messages}
    assert set(by_recipient) == {factory.ALICE.email, factory.BOB.email}
    alice = by_recipient[factory.ALICE.email]
    assert alice["X-Fdawatch-Changes"] == f"{second} {first}"  # most severe first
    assert alice["Subject"].startswith("[fdawatch] T2 ") and alice["Subject"].endswith("(+1 more)")
    assert alice["Message-ID"] == expected_message_id(
        engine, factory.ALICE.email, [f"change:{first}", f"change:{second}"]
    )


class Crash(BaseException):
    """The sender process dies (kill -9, power cut): nothing after this line runs."""


class DiesAfterDelivery:
    """Hands the message to the real server, then the process 'dies' before recording it."""

    def __init__(self, inner: SmtpMailer) -> None:
        self.inner = inner

    def describe(self) -> str:
        return self.inner.describe()

    def send(self, message: EmailMessage) -> str:
        self.inner.send(message)
        raise Crash


def test_crashed_sender_is_retried_after_the_lease_with_the_same_message_id(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    queue_change(engine)
    settings = factory.settings(smtp=smtp_server.settings)
    with pytest.raises(Crash):
        alerts.send_pending(
            engine, settings, SOURCES, NOW, DiesAfterDelivery(SmtpMailer(smtp_server.settings))
        )
    [row] = outbox_rows(engine)
    assert (row.status, utc(row.sending_since)) == ("sending", NOW)
    stored_id = row.message_id
    assert stored_id is not None

    queue_change(engine)  # a newer edit of the page must not join the re-sent email
    within_lease = send(engine, smtp_server, now=NOW + timedelta(minutes=9))
    assert (within_lease.emails, within_lease.alerts) == (1, 1)  # only the newer change
    after_lease = send(engine, smtp_server, now=NOW + timedelta(minutes=11))
    assert (after_lease.emails, after_lease.alerts) == (1, 1)

    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert ids.count(stored_id) == 2  # the one possible duplicate, recognisable as such
    assert len(ids) == 3
    assert {r.status for r in outbox_rows(engine)} == {"sent"}


def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out(engine: Engine) -> None:
    """Claims one after another; two claimers racing are in tests/delivery/test_outbox_race.py."""
    queue_change(engine, [factory.ALICE, factory.BOB])
    first = outbox.claim_due(engine, NOW)
    assert len(first) == 2
    assert outbox.claim_due(engine, NOW + timedelta(minutes=1)) == []  # still leased
    assert sorted(outbox.claim_due(engine, NOW + timedelta(minutes=11))) == sorted(first)


def test_health_notices_are_sent_in_their_own_email(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    with Session(engine) as session:
        factory.add_source(session)
        outbox.enqueue_notice(
            session,
            factory.SOURCE_ID,
            "source_failing",
            "FDA: compounded ketamine alert failed 3 times in a row; last error: HTTP 503.",
            [factory.ALICE],
            NOW,
        )
        session.commit()
    queue_change(engine)

    send(engine, smtp_server)

    subjects = [m.message["Subject"] for m in smtp_server.messages]
    assert len(subjects) == 2
    assert f"[fdawatch] T2 {factory.SOURCE_TITLE}: source is failing" in subjects
    assert factory.SUBJECT in subjects
    health = next(m.message for m in smtp_server.messages if "failing" in m.message["Subject"])
    text, html = parts(health)
    assert "last error: HTTP 503." in text and "last error: HTTP 503." in html
    status = "https://fdawatch.pharmacy.example/index.html#sources"
    assert f"See every source's status: {status}\n" in text and f'href="{status}"' in html


def test_without_smtp_emails_are_written_as_eml_files(engine: Engine, tmp_path: Path) -> None:
    queue_change(engine, [factory.ALICE, factory.BOB])
    settings = factory.settings(outbox_dir=tmp_path / "outbox")

    report = alerts.send_pending(engine, settings, SOURCES, NOW)

    assert report.via == f"{tmp_path / 'outbox'}/"
    assert report.emails == 2
    files = sorted((tmp_path / "outbox").iterdir())
    assert [str(f) for f in files] == sorted(report.delivered)
    assert all(f.name.startswith("20231010T143500Z-") and f.suffix == ".eml" for f in files)
    assert {r.status for r in outbox_rows(engine)} == {"sent"}


def test_eml_resend_of_the_same_message_replaces_its_file(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Message-ID"] = "<fdawatch.0123456789abcdef@fdawatch>"
    message["Date"] = "Tue, 10 Oct 2023 14:35:00 +0000"
    message.set_content("hello")
    mailer = EmlMailer(tmp_path)
    assert (
        mailer.send(message)
        == mailer.send(message)
        == str(tmp_path / "20231010T143500Z-0123456789abcdef.eml")
    )
    assert [p.name for p in tmp_path.iterdir()] == ["20231010T143500Z-0123456789abcdef.eml"]


def test_auth_failure_names_the_user_but_never_the_password(smtp_server: SmtpServer) -> None:
    secret = "hunter2-Secret!"
    settings = SmtpSettings(
        host="127.0.0.1",
        port=smtp_server.port,
        user="alerts@pharmacy.example",
        password=secret,
        timeout=5,
    )
    message = EmailMessage()
    message["From"] = "fdawatch@pharmacy.example"
    message["To"] = factory.ALICE.email
    message.set_content("x")
    with pytest.raises(DeliveryError) as caught:
        SmtpMailer(settings).send(message)
    assert "authentication failed for user alerts@pharmacy.example" in caught.value.reason
    assert secret not in caught.value.reason and secret not in repr(caught.value)
    assert caught.value.temporary  # fixing the password lets the queued alerts go out
    assert smtp_server.messages == []


def test_nothing_listening_is_a_temporary_connection_error() -> None:
    mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2))
    message = EmailMessage()
    message["From"] = "fdawatch@pharmacy.example"
    message["To"] = factory.ALICE.email
    message.set_content("x")
    with pytest.raises(DeliveryError) as caught:
        mailer.send(message)
    assert caught.value.temporary and caught.value.connection
