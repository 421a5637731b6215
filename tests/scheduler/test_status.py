"""`fdawatch status`: each source's health and next run, as a table or JSON lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from db import leases
from db.models import Source
from monitor.cli.run import run_command, status_command
from monitor.config import Settings
from monitor.runtime.scheduler import LEASE_NAME
from monitor.runtime.status import status_rows
from monitor.sources import SourceConfig
from tests.conftest import T0, make_source
from tests.support.cli_app import FixedApp
from tests.support.cli_app import invoke as run_commands

NOW = T0  # Monday 2026-11-02 09:00 UTC
#: jitter 0: fire times on the plain clock grid (test_timetable covers the offset).
SETTINGS = Settings(database_url="sqlite://", failure_threshold=3, scheduler_jitter=0)

# (source, its history row or None, expected state, fails column, next check): a 6h source is
# due at 00:00, 06:00, 12:00 and 18:00, skipping a time less than 3 h after its last check.
ROWS: list[tuple[SourceConfig, dict[str, Any] | None, str, str, datetime]] = [
    (make_source(id="never_checked"), None, "new", "0/3", NOW),
    (
        make_source(id="healthy", interval="6h"),
        {"health": "ok", "last_checked_at": NOW - timedelta(hours=1)},
        "ok",
        "0/3",
        NOW + timedelta(hours=3),  # 12:00, three hours after its check at 08:00
    ),
    (
        make_source(id="overdue", interval="6h"),
        {"health": "ok", "last_checked_at": NOW - timedelta(hours=7)},
        "ok",
        "0/3",
        NOW - timedelta(hours=3),  # 06:00 passed without a check: due now
    ),
    (
        make_source(id="one_failure", interval="1h"),
        {"health": "ok", "consecutive_failures": 1, "last_checked_at": NOW},
        "degraded",
        "1/3",
        NOW + timedelta(hours=1),
    ),
    (
        make_source(id="failing", interval="1h"),
        {"health": "failing", "consecutive_failures": 4, "last_checked_at": NOW},
        "failing",
        "4/3",
        NOW + timedelta(hours=1),
    ),
    (
        make_source(id="drifted", interval="1h", failure_threshold=5),
        {"health": "drift", "consecutive_failures": 5, "last_checked_at": NOW},
        "drift",
        "5/5",
        NOW + timedelta(hours=1),
    ),
    (
        make_source(id="weekly", cron="0 6 * * 1"),
        {"health": "ok", "last_checked_at": NOW - timedelta(hours=3)},
        "ok",
        "0/3",
        datetime(2026, 11, 9, 6, 0, tzinfo=UTC),
    ),
]
SOURCES = {source.id: source for source, *_ in ROWS}


@pytest.fixture
def history(engine: Engine) -> Engine:
    with Session(engine) as session:
        for source, row, *_ in ROWS:
            if row is not None:
                session.add(Source(id=source.id, kind=source.kind, url=source.url, **row))
        session.commit()
    return engine


@pytest.mark.parametrize(("source", "row", "state", "fails", "next_run"), ROWS, ids=SOURCES)
def test_each_source_shows_its_state_failures_and_next_run(
    history: Engine,
    source: SourceConfig,
    row: dict[str, Any] | None,
    state: str,
    fails: str,
    next_run: datetime,
) -> None:
    with Session(history) as session:
        rows = {r.source_id: r for r in status_rows(session, SOURCES, SETTINGS, NOW)}
    shown = rows[source.id]
    assert shown.state == state
    assert f"{shown.failures_in_row}/{shown.failure_threshold}" == fails
    assert shown.next_run_at == next_run


def App(engine: Engine, sources: dict[str, SourceConfig], tmp: Path) -> FixedApp:
    return FixedApp(engine, sources, tmp, SETTINGS, NOW)


def invoke(app: FixedApp, *args: str) -> Any:
    return run_commands(app, [status_command, run_command], *args)


def test_the_status_table_says_who_runs_the_scheduler_and_what_is_due(
    history: Engine, tmp_path: Path
) -> None:
    leases.acquire(history, LEASE_NAME, "ops-box:4242", timedelta(minutes=5), NOW)
    result = invoke(App(history, SOURCES, tmp_path), "status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "scheduler: running as ops-box:4242"
    by_source = {line.split()[0]: line for line in lines[2:]}
    assert set(by_source) == set(SOURCES)
    assert lines[1].split()[:9] == [
        *("source", "state", "fails", "last", "check", "last", "success", "last", "change")
    ]
    assert "due now" in by_source["never_checked"] and "due now" in by_source["overdue"]
    # last check 08:00:00, last success never, last change never, next check 12:00:00
    assert by_source["healthy"].split()[3:9] == [
        *("2026-11-02", "08:00:00", "never", "never", "2026-11-02", "12:00:00")
    ]
    assert by_source["failing"].split()[1:3] == ["failing", "4/3"]


def test_status_json_has_one_object_per_source_with_iso_times(
    history: Engine, tmp_path: Path
) -> None:
    result = invoke(App(history, SOURCES, tmp_path), "status", "--json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["source_id"] for r in records] == list(SOURCES)
    weekly = records[-1]
    assert weekly["next_run_at"] == "2026-11-09T06:00:00+00:00"
    assert weekly["schedule"] == "0 6 * * 1"
    assert weekly["last_checked_at"] == "2026-11-02T06:00:00+00:00"
    assert records[0]["state"] == "new" and records[0]["last_success_at"] is None


@pytest.mark.parametrize(
    ("sources", "args", "message"),
    [
        ({"a": make_source(id="a")}, ["run", "--once", "nope"], "unknown source id 'nope'"),
        (
            {"rems": make_source(id="rems", cron="0 6 * * 9")},
            ["run", "--once"],
            "source 'rems': field 'cron' = '0 6 * * 9' is invalid",
        ),
    ],
)
def test_run_rejects_bad_input_before_taking_the_lock(
    engine: Engine,
    tmp_path: Path,
    sources: dict[str, SourceConfig],
    args: list[str],
    message: str,
) -> None:
    result = invoke(App(engine, sources, tmp_path), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert leases.holder_of(engine, LEASE_NAME, datetime.now(UTC)) is None


def test_run_once_exits_2_naming_the_holder_when_the_lock_stays_taken(
    engine: Engine, tmp_path: Path
) -> None:
    leases.acquire(engine, LEASE_NAME, "ops-box:4242", timedelta(minutes=5), datetime.now(UTC))
    app = App(engine, {"a": make_source(id="a")}, tmp_path)
    result = invoke(app, "run", "--once", "--lock-timeout", "0")
    assert result.exit_code == 2
    assert "ops-box:4242" in result.output and "gave up after waiting 0 s" in result.output
