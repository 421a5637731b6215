"""Digest emails: who gets one for which period, never twice, and how the outbox delivers it."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.engine import open_database
from db.installation import install_id
from db.models import Alert
from monitor.config import Recipient, Settings
from monitor.delivery import alerts, outbox
from monitor.delivery.plain import TIER_MEANINGS
from monitor.site import digest
from tests.support import digest_history as data
from tests.support.digest_history import History
from tests.support.mailers import Capture

OWNER = Recipient(email="owner@clinic.example", name="Clinic owner", digest="weekly")
DAILY = Recipient(email="nurse@clinic.example", digest="daily", min_severity="T1")
SPRAVATO_ONLY = Recipient(email="rems@clinic.example", digest="weekly", tags=("spravato",))
RECALLS_ONLY = Recipient(email="recalls@clinic.example", digest="weekly", sources=("nope",))
NO_DIGEST = Recipient(email="alerts@clinic.example")


def settings(*recipients: Recipient) -> Settings:
    return Settings(
        recipients=recipients,
        mail_from="fdawatch <fdawatch@clinic.example>",
        site_url="https://fdawatch.clinic.example/",
    )


def digest_rows(engine: Engine) -> list[Alert]:
    with Session(engine) as session:
        query = select(Alert).where(Alert.kind == "digest").order_by(col(Alert.id))
        return list(session.exec(query).all())


@pytest.mark.parametrize(
    ("frequency", "now", "key", "start", "end"),
    [
        ("weekly", "2026-11-30T09:00", "weekly:2026-W48", "2026-11-23", "2026-11-30"),
        ("weekly", "2026-12-06T23:59", "weekly:2026-W48", "2026-11-23", "2026-11-30"),
        ("weekly", "2027-01-04T00:00", "weekly:2026-W53", "2026-12-28", "2027-01-04"),
        ("daily", "2026-11-28T00:30", "daily:2026-11-27", "2026-11-27", "2026-11-28"),
        ("daily", "2026-03-01T12:00", "daily:2026-02-28", "2026-02-28", "2026-03-01"),
    ],
)
def test_the_period_is_the_last_completed_day_or_iso_week(
    frequency: str, now: str, key: str, start: str, end: str
) -> None:
    period = digest.completed_period(frequency, datetime.fromisoformat(now).replace(tzinfo=UTC))
    assert period.key == key
    assert (period.start.date().isoformat(), period.end.date().isoformat()) == (start, end)
    assert digest.parse_period(key) == period


@pytest.mark.parametrize("bad", ["weekly:2026-W99", "monthly:2026-11", "daily:yesterday", ""])
def test_a_bad_period_key_names_itself_and_the_expected_form(bad: str) -> None:
    with pytest.raises(ValueError, match="weekly:2026-W48") as raised:
        digest.parse_period(bad)
    assert repr(bad) in str(raised.value)


@pytest.mark.parametrize(
    ("recipients", "now", "expected"),
    [
        ((OWNER,), data.NOW, [("digest:weekly:2026-W48:owner@clinic.example", "T1")]),
        ((NO_DIGEST,), data.NOW, []),
        # the day of the T2 edit only; min_severity governs instant alerts, not the digest
        (
            (DAILY,),
            datetime(2026, 11, 27, 7, tzinfo=UTC),
            [("digest:daily:2026-11-26:nurse@clinic.example", "T2")],
        ),
        ((DAILY,), datetime(2026, 11, 30, 7, tzinfo=UTC), []),  # nothing changed on Sunday
        ((SPRAVATO_ONLY,), data.NOW, [("digest:weekly:2026-W48:rems@clinic.example", "T1")]),
        ((RECALLS_ONLY,), data.NOW, []),  # follows nothing that changed
        ((OWNER,), datetime(2026, 12, 7, 9, tzinfo=UTC), []),  # W49 had no changes
    ],
)
def test_queue_due_digests_queues_one_row_per_subscriber_with_changes(
    history_db: tuple[Engine, History],
    recipients: tuple[Recipient, ...],
    now: datetime,
    expected: list[tuple[str, str]],
) -> None:
    engine, _ = history_db
    keys = digest.queue_due_digests(engine, settings(*recipients), data.SOURCES, now)
    rows = digest_rows(engine)
    assert keys == [key for key, _ in expected]
    assert [(r.dedup_key, r.severity, r.status) for r in rows] == [
        (key, tier, "pending") for key, tier in expected
    ]
    assert all(
        r.notice == r.dedup_key.split(":", 1)[1].rsplit(":", 1)[0] for r in rows if r.dedup_key
    )


def test_running_again_in_the_same_period_queues_nothing(
    history_db: tuple[Engine, History],
) -> None:
    engine, _ = history_db
    config = settings(OWNER, OWNER)  # listed twice in fdawatch.toml: still one digest
    assert len(digest.queue_due_digests(engine, config, data.SOURCES, data.NOW)) == 1
    later = data.NOW.replace(hour=17)
    assert digest.queue_due_digests(engine, config, data.SOURCES, later) == []
    assert len(digest_rows(engine)) == 1


def test_concurrent_runs_queue_one_digest_the_unique_key_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    data.build(open_database(url))
    # Both schedulers pass the "already queued?" check before either inserts.
    monkeypatch.setattr(outbox, "is_queued", lambda engine, key: False)
    engines = [open_database(url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    results: list[list[str]] = []

    def run(engine: Engine) -> None:
        barrier.wait()
        results.append(digest.queue_due_digests(engine, settings(OWNER), data.SOURCES, data.NOW))

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert len(digest_rows(engines[0])) == 1
    for engine in engines:
        engine.dispose()


def test_outbox_delivers_the_digest_grouped_by_severity_with_site_links(
    history_db: tuple[Engine, History],
) -> None:
    engine, history = history_db
    config = settings(OWNER)
    digest.queue_due_digests(engine, config, data.SOURCES, data.NOW)
    mailer = Capture()

    report = alerts.send_pending(engine, config, data.SOURCES, data.NOW, mailer)

    assert (report.emails, report.alerts, report.retry_emails) == (1, 1, 0), report.errors
    message = mailer.messages[0]
    assert message["To"] == OWNER.email
    assert message["Subject"] == (
        "[fdawatch] Weekly digest, week 2026-W48 (Nov 23 – Nov 29, 2026): 4 changes "
        "(T1: 1, T2: 1, T3: 1, T4: 1)"
    )
    with Session(engine) as session:
        installation = install_id(session)
    assert message["Message-ID"] == outbox.message_id(
        OWNER.email, ["digest:weekly:2026-W48:owner@clinic.example"], installation, "clinic.example"
    )
    text = str(message.get_body(("plain",)).get_content())
    html = str(message.get_body(("html",)).get_content())
    order = [text.index(f"== {tier}") for tier in ("T1", "T2", "T3", "T4")]
    assert order == sorted(order)
    assert data.REMS_ADDED[:60] in text
    assert f"https://fdawatch.clinic.example/changes/{history.rems}.html" in html
    page = f"https://fdawatch.clinic.example/changes/{history.rems}.html"
    assert f"    View change & evidence: {page}\n" in text.replace("\r\n", "\n")
    assert "fdawatch show" not in text and "fdawatch show" not in html
    assert f"  T1 {TIER_MEANINGS['T1']}\n" in text.replace("\r\n", "\n")  # the legend
    assert "FDA Compounding Risk Alerts index (SYNTHETIC): failing" in text
    assert "<script>" not in html and "&lt;script&gt;" in html
    tags = BeautifulSoup(html, "lxml").find_all(True)
    links = [str(tag.get("href") or tag.get("src") or "") for tag in tags]
    assert [link for link in links if "javascript:" in link.lower()] == []
    assert '&lt;a href="javascript:alert(2)"&gt;click&lt;/a&gt;' in html  # quoted page text
    assert [r.status for r in digest_rows(engine)] == ["sent"]


def test_digest_and_change_alerts_go_out_as_separate_emails(
    history_db: tuple[Engine, History],
) -> None:
    engine, history = history_db
    config = settings(OWNER)
    with Session(engine) as session:
        from db.models import Change

        change = session.get(Change, history.rems)
        assert change is not None
        outbox.enqueue(session, change, [OWNER], ("spravato",), data.NOW)
        session.commit()
    digest.queue_due_digests(engine, config, data.SOURCES, data.NOW)
    mailer = Capture()

    report = alerts.send_pending(engine, config, data.SOURCES, data.NOW, mailer)

    assert report.emails == 2
    subjects = sorted(str(m["Subject"]) for m in mailer.messages)
    assert subjects[0] == (
        "[fdawatch] T1 Spravato REMS: Added “Outpatient healthcare settings must have a…”"
    )
    assert subjects[1].startswith("[fdawatch] Weekly digest")


def test_a_settings_change_does_not_resend_a_sent_digest(
    history_db: tuple[Engine, History],
) -> None:
    engine, _ = history_db
    digest.queue_due_digests(engine, settings(OWNER), data.SOURCES, data.NOW)
    alerts.send_pending(engine, settings(OWNER), data.SOURCES, data.NOW, Capture())
    renamed = replace(OWNER, name="New name")
    assert digest.queue_due_digests(engine, settings(renamed), data.SOURCES, data.NOW) == []
