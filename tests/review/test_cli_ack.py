"""`fdawatch ack` and `fdawatch changes --open --json` through the real command group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from db.engine import open_database
from monitor.cli import cli
from tests.support.alert_history import queue_change


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A history file with two alerted edits of the ketamine alert page (changes 1 and 2)."""
    monkeypatch.setenv("FDAWATCH_CONFIG", "")
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = open_database(url)
    queue_change(engine)
    queue_change(engine)
    engine.dispose()
    return url


def run(database: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--database", database, *args])


def reviews(database: str, *options: str) -> dict[int, dict]:
    output = run(database, "changes", "--json", *options).output
    return {record["id"]: record["review"] for record in map(json.loads, output.splitlines())}


def test_ack_records_the_review_that_changes_json_shows(database: str) -> None:
    result = run(
        database, "ack", "1", "--by", "qa@pharmacy.example", "--disposition", "action-needed",
        "--note", 'leaflet, "v4", due Friday',
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == "change 1: acknowledged by qa@pharmacy.example (action-needed)\n"

    found = reviews(database)
    assert found[2]["state"] == "open"
    assert {k: v for k, v in found[1].items() if k != "at"} == {
        "state": "acknowledged",
        "by": "qa@pharmacy.example",
        "disposition": "action-needed",
        "note": 'leaflet, "v4", due Friday',
    }
    assert list(reviews(database, "--open")) == [2]
    table = run(database, "changes").output.splitlines()
    assert table[0].split()[:7] == ["id", "detected", "(UTC)", "tier", "kind", "source", "review"]
    assert "action-needed (qa@pharmacy.example)" in table[2]
    assert " open " in table[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["7", "--by", "qa@pharmacy.example", "--disposition", "done"],
            "fdawatch: error: no change with id 7: nothing recorded; `fdawatch changes` lists "
            "them\n",
        ),
        (
            ["1", "--by", "qa", "--disposition", "done"],
            "fdawatch: error: --by 'qa' is not an email address: give the reviewer's, like "
            "qa@pharmacy.example\n",
        ),
    ],
)
def test_bad_input_is_named_with_exit_2_and_records_nothing(
    database: str, args: list[str], message: str
) -> None:
    result = run(database, "ack", *args)
    assert result.exit_code == 2
    assert result.stderr == message
    assert reviews(database)[1]["state"] == "open"


def test_an_unknown_disposition_is_refused_by_its_choices(database: str) -> None:
    result = run(database, "ack", "1", "--by", "qa@pharmacy.example", "--disposition", "ok")
    assert result.exit_code == 2
    assert "'ok' is not one of 'no-action', 'action-needed', 'done'" in result.stderr
