"""`fdawatch alerts send | list | preview`, run through click against a small app object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine
from sqlmodel import Session

from db.engine import open_database
from db.models import Source
from monitor.cli.alerts import alerts
from monitor.config import Settings
from monitor.errors import SourcesError
from monitor.sources import SourceConfig
from tests.support import alert_history as factory
from tests.support.alert_history import NOW, SOURCES, queue_change
from tests.support.readback import outbox_rows
from tests.support.smtp import SmtpServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class App:
    """The protocol the alerts commands need (`monitor.cli.app.App`)."""

    settings: Settings
    db: Engine
    source_map: dict[str, SourceConfig] = field(default_factory=lambda: dict(SOURCES))
    clock: datetime = NOW

    def engine(self) -> Engine:
        return self.db

    def history(self) -> Engine:
        return self.db

    def sources(self) -> dict[str, SourceConfig]:
        return self.source_map

    def now(self) -> datetime:
        return self.clock


def run(app: App, *args: str) -> Result:
    return CliRunner().invoke(alerts, list(args), obj=app, catch_exceptions=True)


def test_send_over_smtp_prints_counts(engine: Engine, smtp_server: SmtpServer) -> None:
    queue_change(engine, [factory.ALICE, factory.BOB])
    app = App(factory.settings(smtp=smtp_server.settings), engine)

    result = run(app, "send")

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"sent 2 emails (2 alerts) via smtp 127.0.0.1:{smtp_server.port}; "
        "0 to retry later; 0 failed\n"
    )
    assert run(app, "send").stdout == "nothing to send: no alerts are due\n"


def test_send_without_smtp_writes_eml_files_and_says_how_to_send(
    engine: Engine, tmp_path: Path
) -> None:
    queue_change(engine)
    app = App(factory.settings(outbox_dir=tmp_path / "outbox"), engine)

    result = run(app, "send")

    assert result.exit_code == 0, result.output
    [written] = list((tmp_path / "outbox").iterdir())
    assert result.stdout == (
        f"wrote 1 email to {tmp_path / 'outbox'}/ (no SMTP configured: set FDAWATCH_SMTP_HOST "
        f"or FDAWATCH_SMTP_URL to send): {written}; 0 to retry later; 0 failed\n"
    )
    parsed = message_from_bytes(written.read_bytes(), policy=default_policy)
    assert parsed["To"] == factory.ALICE.email


def test_send_warns_of_a_failing_source_nobody_was_told_about(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            Source(
                id=factory.SOURCE_ID, kind="page", url="https://www.fda.gov/x", health="failing",
                consecutive_failures=3, last_error="HTTP 500",
            )
        )  # fmt: skip
        session.commit()
    app = App(factory.settings(recipients=()), engine)

    result = run(app, "send")

    assert result.exit_code == 0, result.output
    assert result.stdout == "nothing to send: no alerts are due\n"
    assert result.stderr == (
        f"fdawatch: warning: nobody was told that {factory.SOURCE_ID} is failing (3 failures in "
        "a row): no [[recipient]] in fdawatch.toml follows it; the notice goes out at its next "
        "failed check once one does\n"
    )


def test_list_shows_failures_with_the_server_reply(engine: Engine, smtp_server: SmtpServer) -> None:
    first = queue_change(engine)
    second = queue_change(engine, [factory.BOB])  # the page is edited again
    smtp_server.replies["RCPT"].append("550 5.1.1 Mailbox unavailable")
    app = App(factory.settings(smtp=smtp_server.settings, storm_cap=20), engine)
    sent = run(app, "send")
    assert "1 failed" in sent.stdout
    assert "550 5.1.1 Mailbox unavailable" in sent.stderr

    everything = run(app, "list").stdout.splitlines()
    failed = run(app, "list", "--failed").stdout.splitlines()

    assert everything[0].split() == [
        "id", "status", "recipient", "severity", "change", "attempts", "last", "error"
    ]  # fmt: skip
    assert len(everything) == 3
    assert len(failed) == 2
    assert failed[1].split()[:6] == ["1", "failed", factory.ALICE.email, "T2", str(first), "1"]
    assert failed[1].endswith("550 5.1.1 Mailbox unavailable")
    assert any(line.split()[:2] == ["2", "sent"] and str(second) in line for line in everything)


def test_list_json_is_one_object_per_line(engine: Engine) -> None:
    change_id = queue_change(engine, [factory.ALICE, factory.BOB])
    app = App(factory.settings(), engine)

    rows = [json.loads(line) for line in run(app, "list", "--json").stdout.splitlines()]

    assert [(r["id"], r["status"], r["recipient"], r["change_id"]) for r in rows] == [
        (2, "pending", factory.BOB.email, change_id),
        (1, "pending", factory.ALICE.email, change_id),
    ]
    assert run(app, "list", "--failed", "--json").stdout == ""
    assert run(app, "list", "--failed").stdout == "no failed alerts\n"


def test_preview_writes_an_eml_and_queues_nothing(engine: Engine, tmp_path: Path) -> None:
    change_id = queue_change(engine, recipients=[])
    app = App(factory.settings(var_dir=tmp_path / "var"), engine)

    default = run(app, "preview", str(change_id))
    chosen = run(app, "preview", str(change_id), "--out", str(tmp_path / "x.eml"))

    assert default.stdout == f"{tmp_path / 'var' / f'preview-{change_id}.eml'}\n"
    assert chosen.stdout == f"{tmp_path / 'x.eml'}\n"
    parsed = message_from_bytes((tmp_path / "x.eml").read_bytes(), policy=default_policy)
    assert parsed["To"] == factory.ALICE.email  # who would get it, from the settings
    body = parsed.get_body(("plain",))
    assert body is not None and factory.NEW_SENTENCE in body.get_content()
    assert outbox_rows(engine) == []


def test_preview_of_an_unknown_change_names_it(engine: Engine) -> None:
    result = run(App(factory.settings(), engine), "preview", "999")
    assert isinstance(result.exception, LookupError)  # the main cli turns it into exit code 2
    assert "no change with id 999" in str(result.exception)


@pytest.mark.parametrize(
    ("command", "example"),
    [
        ([], "Example: fdawatch alerts list --failed"),
        (["send"], "Example: fdawatch alerts send"),
        (["list"], "Example: fdawatch alerts list --failed"),
        (["preview"], "Example: fdawatch alerts preview 42 --out /tmp/alert-42.eml"),
    ],
)
def test_every_command_help_has_an_example(command: list[str], example: str) -> None:
    result = CliRunner().invoke(alerts, [*command, "--help"])
    assert result.exit_code == 0
    assert example in result.output


class BrokenSourcesApp(App):
    def sources(self) -> dict[str, SourceConfig]:
        raise SourcesError("sources.toml: [[source]] #2: field 'url' is missing")


def test_a_broken_sources_file_does_not_hold_alerts_back(engine: Engine, tmp_path: Path) -> None:
    queue_change(engine)
    app = BrokenSourcesApp(factory.settings(outbox_dir=tmp_path), engine)

    result = run(app, "send")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote 1 email to ")
    assert "field 'url' is missing; using the titles stored in the history" in result.stderr
    [written] = list(tmp_path.iterdir())
    parsed = message_from_bytes(written.read_bytes(), policy=default_policy)
    assert parsed["Subject"] == factory.SUBJECT  # the short name of the Source row's title


@dataclass
class CountingApp(App):
    reads: int = 0

    def sources(self) -> dict[str, SourceConfig]:
        self.reads += 1
        return self.source_map


def test_sources_are_read_only_when_an_email_is_built(engine: Engine, tmp_path: Path) -> None:
    """`crawl` and cron run `alerts send` after every check: with nothing due, no sources.toml."""
    app = CountingApp(factory.settings(outbox_dir=tmp_path), engine)

    assert run(app, "send").stdout == "nothing to send: no alerts are due\n"
    assert app.reads == 0

    queue_change(engine)
    assert run(app, "send").stdout.startswith("wrote 1 email to ")
    assert app.reads == 1


def test_a_send_with_nothing_due_loads_no_email_rendering(tmp_path: Path) -> None:
    """Jinja, the templates' helpers and the digest (~35 ms of a ~0.55 s command, and ~2.5 MB
    of every `crawl`) load only once an e-mail is built; a broken sources.toml is not read."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    open_database(url).dispose()
    (tmp_path / "sources.toml").write_text("[[source]\n", encoding="utf-8")
    probe = (
        "import sys\nfrom monitor.cli import main\nsys.argv = ['fdawatch', 'alerts', 'send']\n"
        "try:\n    main()\nexcept SystemExit as end:\n    assert not end.code, end.code\n"
        "print([name for name in ('jinja2', 'monitor.delivery.render', 'monitor.site.digest')"
        " if name in sys.modules])"
    )
    env = {
        **os.environ,
        "FDAWATCH_DATABASE_URL": url,
        "FDAWATCH_SOURCES": str(tmp_path / "sources.toml"),
        "FDAWATCH_CONFIG": "",
        "FDAWATCH_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "nothing to send: no alerts are due\n[]\n"
    assert result.stderr == ""
