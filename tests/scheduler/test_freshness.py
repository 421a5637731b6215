"""Freshness: `status --json` says which sources are stale, `status --check` exits 1 for them.

A source is stale when no check succeeded within two scheduled checks (2 × its interval; for a
cron source, the second scheduled time after its last success), or when it is blocked, failing
or drifted. The rows are written as the history keeps them; every case runs on both databases.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from db.models import Source
from monitor.cli.run import status_command
from monitor.config import Settings
from monitor.runtime.status import status_rows
from monitor.sources import SourceConfig
from tests.conftest import T0, make_source
from tests.support.cli_app import FixedApp
from tests.support.cli_app import invoke as run_commands

NOW = T0  # Monday 2026-11-02 09:00 UTC
SETTINGS = Settings(database_url="sqlite://", failure_threshold=3)
WEEKDAYS = "0 6 * * 1-5"  # 06:00 UTC, Monday to Friday


def ok(success: datetime, **row: Any) -> dict[str, Any]:
    return {"health": "ok", "last_checked_at": success, "last_success_at": success, **row}


# (source, its history row or None, freshness, stale_after)
CASES: list[tuple[SourceConfig, dict[str, Any] | None, str, datetime | None]] = [
    (make_source(id="never_checked", interval="6h"), None, "stale", None),
    (
        make_source(id="checked_never_succeeded", interval="6h"),
        {"health": "ok", "consecutive_failures": 2, "last_checked_at": NOW - timedelta(hours=1)},
        "stale",
        None,
    ),
    (
        make_source(id="within_two_intervals", interval="6h"),
        ok(NOW - timedelta(hours=11, minutes=59)),
        "fresh",
        NOW + timedelta(minutes=1),
    ),
    (
        make_source(id="exactly_two_intervals", interval="6h"),
        ok(NOW - timedelta(hours=12)),
        "fresh",
        NOW,
    ),
    (
        make_source(id="past_two_intervals", interval="6h"),
        ok(NOW - timedelta(hours=12, minutes=1)),
        "stale",
        NOW - timedelta(minutes=1),
    ),
    (
        make_source(id="weekly_interval", interval="7d"),
        ok(NOW - timedelta(days=13)),
        "fresh",
        NOW + timedelta(days=1),
    ),
    (
        make_source(id="degraded_but_recent", interval="1h"),
        ok(NOW - timedelta(minutes=70), consecutive_failures=1),
        "fresh",
        NOW + timedelta(minutes=50),
    ),
    (
        make_source(id="blocked_yesterday_success", interval="1d"),
        ok(NOW - timedelta(hours=20), health="blocked", consecutive_failures=1),
        "blocked",
        NOW + timedelta(days=1, hours=4),
    ),
    (
        make_source(id="failing", interval="1h"),
        ok(NOW - timedelta(minutes=30), health="failing", consecutive_failures=3),
        "failing",
        NOW + timedelta(minutes=90),
    ),
    (
        make_source(id="drifted", interval="1h"),
        ok(NOW - timedelta(minutes=30), health="drift", consecutive_failures=3),
        "failing",
        NOW + timedelta(minutes=90),
    ),
    (  # Friday's check: Monday 06:00 may be missed, Tuesday 06:00 not
        make_source(id="weekday_cron_over_weekend", cron=WEEKDAYS),
        ok(datetime(2026, 10, 30, 6, 0, 40, tzinfo=UTC)),
        "fresh",
        datetime(2026, 11, 3, 6, 0, tzinfo=UTC),
    ),
    (  # Thursday's check: Friday's and Monday's both missed
        make_source(id="weekday_cron_two_missed", cron=WEEKDAYS),
        ok(datetime(2026, 10, 29, 6, 0, 40, tzinfo=UTC)),
        "stale",
        datetime(2026, 11, 2, 6, 0, tzinfo=UTC),
    ),
]
SOURCES = {source.id: source for source, *_ in CASES}


@pytest.fixture
def history(engine: Engine) -> Engine:
    with Session(engine) as session:
        for source, row, *_ in CASES:
            if row is not None:
                session.add(Source(id=source.id, kind=source.kind, url=source.url, **row))
        session.commit()
    return engine


def App(engine: Engine, sources: dict[str, SourceConfig], tmp: Path) -> FixedApp:
    return FixedApp(engine, sources, tmp, SETTINGS, NOW)


def invoke(app: FixedApp, *args: str) -> Any:
    return run_commands(app, [status_command], *args)


@pytest.mark.parametrize(("source", "row", "verdict", "deadline"), CASES, ids=list(SOURCES))
def test_each_source_is_fresh_stale_blocked_or_failing(
    history: Engine,
    source: SourceConfig,
    row: dict[str, Any] | None,
    verdict: str,
    deadline: datetime | None,
) -> None:
    with Session(history) as session:
        shown = {r.source_id: r for r in status_rows(session, SOURCES, SETTINGS, NOW)}[source.id]
    assert (shown.freshness, shown.stale, shown.stale_after) == (
        verdict,
        verdict != "fresh",
        deadline,
    )


def test_status_json_carries_stale_and_when_a_source_turns_stale(
    history: Engine, tmp_path: Path
) -> None:
    result = invoke(App(history, SOURCES, tmp_path), "status", "--json")
    assert result.exit_code == 0, result.output
    records = {r["source_id"]: r for r in map(json.loads, result.output.splitlines())}
    assert {sid: r["stale"] for sid, r in records.items()} == {
        sid: verdict != "fresh" for (source, _, verdict, _) in CASES for sid in [source.id]
    }
    assert records["past_two_intervals"]["stale_after"] == "2026-11-02T08:59:00+00:00"
    assert records["never_checked"]["stale_after"] is None
    assert records["drifted"]["freshness"] == "failing"


def test_status_check_prints_one_line_per_bad_source_and_exits_1(
    history: Engine, tmp_path: Path
) -> None:
    result = invoke(App(history, SOURCES, tmp_path), "status", "--check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "never_checked: stale: never checked successfully",
        "checked_never_succeeded: stale: never checked successfully "
        "(last check 2026-11-02 08:00 UTC)",
        "past_two_intervals: stale: last success 2026-11-01 20:59 UTC, stale since "
        "2026-11-02 08:59 UTC (every 6h)",
        "blocked_yesterday_success: blocked: 1 failure in a row, last success 2026-11-01 13:00 UTC",
        "failing: failing: 3 failures in a row, last success 2026-11-02 08:30 UTC",
        "drifted: failing (drift): 3 failures in a row, last success 2026-11-02 08:30 UTC",
        "weekday_cron_two_missed: stale: last success 2026-10-29 06:00 UTC, stale since "
        "2026-11-02 06:00 UTC (every 0 6 * * 1-5)",
    ]


@pytest.mark.parametrize(
    ("chosen", "exit_code", "output"),
    [
        (["within_two_intervals", "weekday_cron_over_weekend"], 0, "all 2 sources fresh\n"),
        (["within_two_intervals", "degraded_but_recent"], 0, "all 2 sources fresh\n"),
        (
            ["within_two_intervals", "past_two_intervals"],
            1,
            "past_two_intervals: stale: last success 2026-11-01 20:59 UTC, stale since "
            "2026-11-02 08:59 UTC (every 6h)\n",
        ),
    ],
)
def test_status_check_exit_code_says_whether_every_source_is_fresh(
    history: Engine, tmp_path: Path, chosen: list[str], exit_code: int, output: str
) -> None:
    sources = {sid: SOURCES[sid] for sid in chosen}
    result = invoke(App(history, sources, tmp_path), "status", "--check")
    assert (result.exit_code, result.stdout) == (exit_code, output)
