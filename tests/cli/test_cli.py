"""The fdawatch CLI against a temporary database: output, errors, and documented commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlmodel import Session

from db.engine import open_database
from monitor.cli import SUMMARIES, cli
from monitor.history import queries
from monitor.history.writer import HistoryWriter
from monitor.items import OK, Observation, SourceFetch
from tests.support import alert_history as factory
from tests.support.paths import PAGES, ROOT
from tests.support.sources import make_source

SOURCE = make_source()
SOURCES_TOML = f"""
[[source]]
id = "{SOURCE.id}"
kind = "page"
url = "{SOURCE.url}"
title = "{SOURCE.title}"
tier = "T2"
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A sources.toml and a database holding one change of the SYNTHETIC Oct 2023 alert page."""
    monkeypatch.setenv("FDAWATCH_CONFIG", "")
    monkeypatch.setenv("FDAWATCH_VAR_DIR", str(tmp_path / "var"))
    sources = tmp_path / "sources.toml"
    sources.write_text(SOURCES_TOML, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = open_database(url)
    start = datetime.now(UTC) - timedelta(days=2)
    with Session(engine) as session:
        HistoryWriter([SOURCE]).sync_sources(session)
        for hours, name in enumerate(
            (
                "ketamine_oral_alert_synthetic_v1.html",
                "ketamine_oral_alert_synthetic_v5_sentence_edited.html",
            )
        ):
            now = start + timedelta(hours=hours)
            html = (PAGES / name).read_text(encoding="utf-8")
            observation = Observation(
                SOURCE.id, SOURCE.url, SOURCE.url, SOURCE.title, html, "html", now
            )
            HistoryWriter([SOURCE]).record_observation(session, observation, now)
            HistoryWriter([SOURCE]).record_fetch(
                session, SourceFetch(SOURCE.id, SOURCE.url, OK, now), now
            )
            session.commit()
    engine.dispose()
    return sources, url


def run(workspace: tuple[Path, str], *args: str) -> click.testing.Result:
    sources, url = workspace
    return CliRunner().invoke(cli, ["--sources", str(sources), "--database", url, *args])


def test_sources_lists_ids_and_health(workspace: tuple[Path, str]) -> None:
    result = run(workspace, "sources")
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()
    assert header.split() == ["id", "kind", "tier", "every", "health", "url"]
    assert row.split() == [SOURCE.id, "page", "T2", "6h", "ok", SOURCE.url]


def test_changes_json_lines_carry_the_fields_tools_need(workspace: tuple[Path, str]) -> None:
    result = run(workspace, "changes", "--since", "7d", "--json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert len(records) == 1
    record = records[0]
    assert {"id", "source", "document_key", "kind", "severity", "detected_at"} <= set(record)
    assert (record["source"], record["kind"]) == (SOURCE.id, "changed")
    assert record["severity"] == "T1"  # the source's T2, one up: ketamine with compounders
    assert run(workspace, "changes", "--since", "1h").output.startswith("no changes since")


def test_show_prints_the_diff_and_the_reasons(workspace: tuple[Path, str]) -> None:
    change_id = json.loads(run(workspace, "changes", "--json").output.splitlines()[0])["id"]
    result = run(workspace, "show", str(change_id))
    assert result.exit_code == 0, result.output
    assert "@@ -7,5 +7,5 @@" in result.output
    assert (
        "why T1:\n"
        "  - FDA alert: compounded ketamine: watched at T2\n"
        "  - raised one tier: names ketamine with compounded, compounder, telemedicine\n"
    ) in result.output
    assert f"change {change_id}: changed" in result.output


def test_history_lists_versions_changes_and_fetches(workspace: tuple[Path, str]) -> None:
    result = run(workspace, "history", SOURCE.id)
    assert result.exit_code == 0, result.output
    assert "versions (2 newest)" in result.output
    assert "changes (1 newest)" in result.output
    assert "fetches (2 newest)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "999"], "no change 999"),
        (["history", "nope"], "no source in the history 'nope'"),
        (["crawl", "nope"], "unknown source id 'nope'"),
        (["changes", "--since", "last tuesday"], "use 7d, 24h, 2w or an ISO date"),
    ],
)
def test_bad_input_is_named_with_exit_code_2(
    workspace: tuple[Path, str], args: list[str], message: str
) -> None:
    result = run(workspace, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_broken_sources_file_is_one_line_naming_the_field(workspace: tuple[Path, str]) -> None:
    sources, _ = workspace
    sources.write_text(SOURCES_TOML.replace('kind = "page"', 'kind = "webpage"'), encoding="utf-8")
    result = run(workspace, "sources")
    assert result.exit_code == 2
    assert "field 'kind' = 'webpage' is invalid" in result.output


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    """Every command and subcommand, the lazily loaded ones too."""
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found += all_commands(command, f"{prefix}{name} ")
    return found


COMMANDS = all_commands(cli)


def test_the_help_lists_each_command_by_its_own_first_sentence() -> None:
    context = click.Context(cli)
    for name in cli.list_commands(context):
        command = cli.get_command(context, name)
        assert command is not None
        assert SUMMARIES[name] == command.get_short_help_str(limit=1000), name


def test_every_command_is_checked_below() -> None:
    assert {name for name, _ in COMMANDS} >= {
        "sources", "crawl", "changes", "show", "history", "alerts send", "alerts list",
        "alerts preview", "digest", "serve", "evidence", "run", "status", "label-sections",
    }  # fmt: skip


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_command_has_help_with_an_example_and_is_in_the_readme(
    name: str, command: click.Command
) -> None:
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0
    assert "Example: fdawatch" in result.output
    if not isinstance(command, click.Group):
        assert f"fdawatch {name}" in (ROOT / "README.md").read_text(encoding="utf-8")


READERS = [
    ["changes"],
    ["show", "1"],
    ["history", SOURCE.id],
    ["status"],
    ["sources"],
    ["alerts", "list"],
    ["alerts", "send"],
    ["alerts", "preview", "1"],
    ["digest"],
    ["evidence", "1"],
]


@pytest.mark.parametrize("args", READERS, ids=[" ".join(args) for args in READERS])
def test_a_reading_command_never_creates_a_database(
    workspace: tuple[Path, str], tmp_path: Path, args: list[str]
) -> None:
    """A bare `fdawatch changes` in the wrong folder used to create an empty var/fdawatch.db
    and answer "no changes"."""
    sources, _ = workspace
    missing = tmp_path / "elsewhere" / "fdawatch.db"
    result = CliRunner().invoke(
        cli, ["--sources", str(sources), "--database", f"sqlite:///{missing}", *args]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"fdawatch: error: no database at {missing}: `fdawatch crawl` creates it; to read "
        "another one, pass --database URL (or set FDAWATCH_DATABASE_URL)\n"
    )
    assert not missing.parent.exists()


def test_a_database_without_fdawatch_tables_is_named_too(
    workspace: tuple[Path, str], tmp_path: Path
) -> None:
    sources, _ = workspace
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    result = CliRunner().invoke(
        cli, ["--sources", str(sources), "--database", f"sqlite:///{empty}", "changes"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"fdawatch: error: the database 'sqlite:///{empty}' holds no fdawatch history: "
        "`fdawatch crawl` creates it"
    )
    assert empty.read_bytes() == b""


def test_sources_warns_when_the_database_holds_sources_the_file_lacks(
    workspace: tuple[Path, str],
) -> None:
    sources, _ = workspace
    other = make_source(id="fda_spravato_rems", url="https://www.fda.gov/rems", title="REMS")
    sources.write_text(
        f'[[source]]\nid = "{other.id}"\nkind = "page"\nurl = "{other.url}"\n'
        f'title = "{other.title}"\ntier = "T1"\n',
        encoding="utf-8",
    )
    for command in ("sources", "status"):
        result = run(workspace, command)
        assert result.exit_code == 0, result.output
        assert result.stderr == (
            f"fdawatch: warning: the database holds 1 source that {sources} lacks "
            f"({SOURCE.id}); pass --sources with the file that crawled them\n"
        )
    listed = run(workspace, "sources").stdout.splitlines()
    assert listed[1].split()[:5] == [other.id, "page", "T1", "6h", "new"]
    assert listed[-1] == "1 new: never crawled into this database; `fdawatch crawl ID` checks one"
    as_json = json.loads(run(workspace, "sources", "--json").stdout)
    assert (as_json["id"], as_json["health"]) == (other.id, "new")


def test_sources_agreeing_with_the_database_give_no_warning(workspace: tuple[Path, str]) -> None:
    result = run(workspace, "sources")
    assert result.stderr == ""
    assert result.stdout.splitlines()[1].split()[4] == "ok"


def test_config_option_names_the_deployment_file(
    workspace: tuple[Path, str], tmp_path: Path
) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text(
        '[mail]\nfrom = "FDA watch <alerts@clinic.example>"\n\n'
        '[[recipient]]\nemail = "compliance@clinic.example"\n',
        encoding="utf-8",
    )
    out = tmp_path / "preview.eml"
    result = run(workspace, "--config", str(config), "alerts", "preview", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    email = out.read_text(encoding="utf-8")
    assert "From: FDA watch <alerts@clinic.example>" in email
    assert "To: compliance@clinic.example" in email
    assert re.search(r"Message-ID: <fdawatch\.[0-9a-f]{20}@clinic\.example>", email)

    missing = run(workspace, "--config", str(tmp_path / "nope.toml"), "status")
    assert missing.exit_code == 2
    assert missing.stderr == (
        f"fdawatch: error: --config {tmp_path / 'nope.toml'}: no such file; give the path of "
        "your fdawatch.toml\n"
    )


def test_changes_filters_by_severity_and_limits(workspace: tuple[Path, str]) -> None:
    [only] = [json.loads(line) for line in run(workspace, "changes", "--json").stdout.splitlines()]
    assert only["severity"] == "T1"  # a T2 source, raised one tier for naming ketamine
    assert run(workspace, "changes", "--min-severity", "T1", "--json").stdout.count("\n") == 1
    limited = run(workspace, "changes", "--limit", "1").stdout.splitlines()
    assert limited[0].split()[:4] == ["id", "detected", "(UTC)", "tier"]
    assert len(limited) == 2
    bad = run(workspace, "changes", "--min-severity", "T9")
    assert bad.exit_code == 2 and "'T9' is not one of 'T1', 'T2', 'T3', 'T4', 'T5'" in bad.output


def test_min_severity_keeps_the_changes_at_least_that_severe(engine: Engine) -> None:
    """T1 is the most severe: `--min-severity T2` keeps T1 and T2, drops T3–T5."""
    with Session(engine) as session:
        for minute, severity in enumerate(("T3", "T1", "T2", "T5")):
            factory.add_change(  # a source watched at `severity`: the writer files it there
                session,
                source_id=f"fda_page_{severity.lower()}",
                url=f"{factory.URL}-{severity.lower()}",
                tier=severity,
                detected_at=factory.DETECTED_AT + timedelta(minutes=minute),
            )
        session.commit()
        kept = queries.changes(session, min_severity="T2")
        newest = queries.changes(session, min_severity="T2", limit=1)
    assert [change.severity for change in kept] == ["T2", "T1"]
    assert [change.severity for change in newest] == ["T2"]


def test_changes_of_an_unknown_source_is_an_error(workspace: tuple[Path, str]) -> None:
    result = run(workspace, "changes", "--source", "nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("fdawatch: error: no source 'nope' in the history or in ")


def test_show_and_history_speak_json(workspace: tuple[Path, str]) -> None:
    shown = json.loads(run(workspace, "show", "1", "--json").stdout)
    assert (shown["id"], shown["source"], shown["kind"]) == (1, SOURCE.id, "changed")
    assert shown["diff"].startswith("---") and shown["severity_reasons"]
    assert shown["previous"]["sha256"] != shown["current"]["sha256"]
    history = json.loads(run(workspace, "history", SOURCE.id, "--json").stdout)
    assert (history["source"], history["health"]) == (SOURCE.id, "ok")
    assert [len(history[key]) for key in ("versions", "changes", "fetches")] == [2, 1, 2]
    assert history["changes"][0]["id"] == 1


def test_history_has_headers_and_one_time_format(workspace: tuple[Path, str]) -> None:
    lines = run(workspace, "history", SOURCE.id, "--limit", "1").stdout.splitlines()
    minute = r"\d{4}-\d\d-\d\d \d\d:\d\d"
    assert re.fullmatch(rf"health: ok, failures in a row: 0, last success: {minute}", lines[1])
    assert lines[3:6] == [
        "versions (1 newest):",
        "  fetched (UTC)     sha256        title",
        lines[5],
    ]
    assert re.fullmatch(rf"  {minute}  [0-9a-f]{{12}}  {re.escape(SOURCE.title)}", lines[5])
    assert lines[7:9] == [
        "changes (1 newest):",
        "  change  detected (UTC)    tier  kind     summary",
    ]
    assert re.fullmatch(
        rf"  1       {minute}  T1    changed  Changed: “…receive information about these "
        "potential risks or be…",
        lines[9],
    )
    assert lines[11:13] == ["fetches (1 newest):", "  fetched (UTC)     outcome  http  error"]
    assert re.fullmatch(rf"  {minute}  ok", lines[13])


@pytest.mark.parametrize(
    ("args", "not_loaded"),
    [
        (["--help"], ["sqlalchemy", "sqlmodel", "apscheduler", "scrapy", "jinja2"]),
        (["sources"], ["sqlmodel", "db.models", "apscheduler", "scrapy", "jinja2", "alembic"]),
    ],
)
def test_quick_commands_load_no_heavy_library(
    workspace: tuple[Path, str], args: list[str], not_loaded: list[str]
) -> None:
    """`fdawatch --help` and `fdawatch sources` must answer in under 0.5 s: SQLModel and the
    tables alone take longer to import on a busy machine (README "Development")."""
    sources, url = workspace
    probe = (
        "import sys; from monitor.cli import cli\n"
        f"try:\n    cli({['--sources', str(sources), '--database', url, *args]!r}, "
        "prog_name='fdawatch')\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
        f"print(sorted(m for m in {not_loaded!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_one_shot_commands_collect_garbage_less_often_and_the_daemon_as_usual(
    workspace: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that runs once (a crawl: ~600 young-generation collections for 1,050 sources,
    ~5 % of its CPU) raises the threshold; the daemon, measured over hours, keeps CPython's."""
    import gc

    import monitor.cli
    import monitor.cli.run
    from monitor.runtime import collector

    sources, url = workspace
    seen: list[tuple[int, int, int]] = []

    def serve(*_args: Any, **_kwargs: Any) -> bool:
        seen.append(gc.get_threshold())
        return True

    monkeypatch.setattr(monitor.cli.run, "serve", serve)
    saved = gc.get_threshold()
    try:
        for command in (["sources"], ["run"]):
            monkeypatch.setattr(
                sys, "argv", ["fdawatch", "--sources", str(sources), "--database", url, *command]
            )
            with pytest.raises(SystemExit) as done:
                monitor.cli.main()
            assert not done.value.code
            seen.append(gc.get_threshold())
    finally:
        gc.set_threshold(*saved)
    assert seen[0][0] == collector.YOUNG_THRESHOLD  # after `sources`
    assert seen[1] == collector.CPYTHON_THRESHOLDS  # while the daemon serves
