"""`fdawatch audit` on SQLite and PostgreSQL: one row per delivery (sent or refused) with the
change's review, read back as a spreadsheet would; the evidence bundle's delivery log."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlmodel import Session

from db.engine import open_database
from monitor.cli import cli
from monitor.delivery.alerts import send_pending
from monitor.errors import DeliveryError
from monitor.review.audit import COLUMNS, as_csv, audit_rows
from monitor.review.records import acknowledge
from monitor.site.evidence import MANIFEST, build_bundle
from tests.support import alert_history as factory
from tests.support.alert_history import NOW, SOURCES, queue_change
from tests.support.review_history import CaughtMail, review_settings

NOTE = 'Leaflet v4, "urinary" wording\nsecond line'
REPLY = "550 5.1.1 <bob@pharmacy.example>: Recipient address rejected: User unknown"


class RefusesBob(CaughtMail):
    def send(self, message: EmailMessage) -> str:
        if message["To"] == factory.BOB.email:
            raise DeliveryError(REPLY, temporary=False)
        return super().send(message)


def delivered_and_reviewed(engine: Engine) -> tuple[int, str]:
    """Change 1 alerted to Alice (sent) and Bob (refused), then reviewed by QA."""
    change_id = queue_change(engine, [factory.ALICE, factory.BOB])
    send_pending(engine, review_settings(), SOURCES, NOW, mailer=RefusesBob())
    with Session(engine) as session:
        acknowledge(
            session, [change_id], reviewer="qa@pharmacy.example", disposition="done",
            note=NOTE, now=NOW + timedelta(hours=1),
        )  # fmt: skip
        session.commit()
    return change_id, "2023-10-10T15:35:00+00:00"


def test_the_csv_has_a_header_one_row_per_delivery_and_survives_quoting(engine: Engine) -> None:
    change_id, reviewed_at = delivered_and_reviewed(engine)
    with Session(engine) as session:
        text = as_csv(audit_rows(session, since=NOW - timedelta(days=90)))

    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(header) == COLUMNS
    assert len(rows) == 2
    alice, bob = (dict(zip(header, row, strict=True)) for row in rows)
    review = {
        "review_state": "acknowledged",
        "reviewer": "qa@pharmacy.example",
        "reviewed_at": reviewed_at,
        "disposition": "done",
        "note": NOTE,
    }
    common = {
        "change_id": str(change_id),
        "source": factory.SOURCE_ID,
        "severity": "T2",
        "detected_at": "2023-10-10T14:30:00+00:00",
        "kind": "change",
    }
    assert alice == {
        **common,
        "recipient": "alice@pharmacy.example",
        "status": "sent",
        "sent_at": "2023-10-10T14:35:00+00:00",
        "message_id": alice["message_id"],
        "smtp_reply": "",
        **review,
    }
    assert alice["message_id"].startswith("<fdawatch.")
    assert bob == {
        **common,
        "recipient": "bob@pharmacy.example",
        "status": "failed",
        "sent_at": "",
        "message_id": bob["message_id"],
        "smtp_reply": REPLY,
        **review,
    }
    assert '"Leaflet v4, ""urinary"" wording\nsecond line"' in text  # RFC 4180 quoting


def test_since_leaves_older_deliveries_out(engine: Engine) -> None:
    delivered_and_reviewed(engine)
    with Session(engine) as session:
        assert audit_rows(session, since=NOW + timedelta(days=1)) == []


def test_the_evidence_bundle_carries_the_delivery_log_and_review_history(engine: Engine) -> None:
    change_id, reviewed_at = delivered_and_reviewed(engine)
    with Session(engine) as session:
        archive = zipfile.ZipFile(io.BytesIO(build_bundle(session, change_id)))
    manifest = json.loads(archive.read(MANIFEST))
    assert [(d["recipient"], d["status"], d["smtp_reply"]) for d in manifest["deliveries"]] == [
        ("alice@pharmacy.example", "sent", None),
        ("bob@pharmacy.example", "failed", REPLY),
    ]
    assert manifest["deliveries"][0]["sent_at"] == "2023-10-10T14:35:00+00:00"
    assert manifest["reviews"] == [
        {
            "reviewer": "qa@pharmacy.example",
            "reviewed_at": reviewed_at,
            "disposition": "done",
            "note": NOTE,
            "via": "cli",
        }
    ]


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FDAWATCH_CONFIG", "")
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = open_database(url)
    delivered_and_reviewed(engine)
    engine.dispose()
    return url


def test_audit_writes_a_csv_file_a_spreadsheet_reads(database: str, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    result = CliRunner().invoke(
        cli, ["--database", database, "audit", "--since", "2023-01-01", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == f"2 deliveries since 2023-01-01 00:00 UTC: {out}\n"
    assert out.read_bytes().startswith(b"\xef\xbb\xbfchange_id,source,severity,")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["recipient"], r["status"], r["note"]) for r in rows] == [
        ("alice@pharmacy.example", "sent", NOTE),
        ("bob@pharmacy.example", "failed", NOTE),
    ]


def test_audit_json_is_one_object_per_delivery(database: str) -> None:
    result = CliRunner().invoke(
        cli, ["--database", database, "audit", "--since", "2023-01-01", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["change_id"], r["recipient"], r["sent_at"]) for r in records] == [
        (1, "alice@pharmacy.example", "2023-10-10T14:35:00+00:00"),
        (1, "bob@pharmacy.example", None),
    ]
    assert list(records[0]) == list(COLUMNS)


def test_a_bad_since_is_named(database: str) -> None:
    result = CliRunner().invoke(cli, ["--database", database, "audit", "--since", "lately"])
    assert result.exit_code == 2
    assert "'lately': use 7d, 24h, 2w or an ISO date like 2026-11-01" in result.stderr
