"""The fdawatch CLI against a temporary database: output, errors, and documented commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlmodel import Session

from db.engine import open_database
from monitor.cli import cli
from monitor.history.writer import HistoryWriter
from monitor.items import OK, Observation, SourceFetch
from tests.conftest import make_source

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "tests" / "fixtures" / "pages"
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
    found = []
    for name, command in group.commands.items():
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found += all_commands(command, f"{prefix}{name} ")
    return found


COMMANDS = all_commands(cli)


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_command_has_help_with_an_example_and_is_in_the_readme(
    name: str, command: click.Command
) -> None:
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0
    assert "Example: fdawatch" in result.output
    if not isinstance(command, click.Group):
        assert f"fdawatch {name}" in (ROOT / "README.md").read_text(encoding="utf-8")
