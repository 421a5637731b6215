"""The daily report and `status --check` as a user meets them: real `fdawatch` processes.

`fdawatch run --once` (cron's way of running fdawatch) twice the same day against the loopback
fixture server sends one report, not two; `fdawatch status --check` then exits 0, and 1 once
the source's fetch fails for good. Each run is its own process: the database decides, not memory.
"""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest

from tests.scheduler.helpers import HEALTH, child_env, environment, fdawatch, target, write_sources
from tests.support.loopback import LoopbackServer

pytestmark = pytest.mark.slow

REPORT = '\n[report]\ndaily_at = "00:00"\nto = ["compliance@clinic.example"]\n'


def reports(outbox: Path) -> list[str]:
    subjects = [
        str(email.message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"]).strip()
        for path in sorted(outbox.glob("*.eml"))
    ]
    return [subject for subject in subjects if "Daily watch report" in subject]


def test_run_once_twice_a_day_sends_one_report_and_status_check_follows_health(
    tmp_path: Path,
) -> None:
    with LoopbackServer(HEALTH) as server:
        write_sources(tmp_path / "sources.toml", server, [("alert", "page")])
        env = child_env(environment(tmp_path, threshold=1))
        config = Path(env["FDAWATCH_CONFIG"])
        config.write_text(config.read_text(encoding="utf-8") + REPORT, encoding="utf-8")
        outbox = tmp_path / "var" / "outbox"
        today = datetime.now(UTC).date().isoformat()
        for _ in range(2):
            run = fdawatch(env, tmp_path, "run", "--once")
            assert run.returncode == 0, run.stdout + run.stderr
            assert reports(outbox) == [
                f"[fdawatch] Daily watch report {today}: all 1 sources fresh; 0 open changes"
            ]
        fresh = fdawatch(env, tmp_path, "status", "--check")
        assert (fresh.returncode, fresh.stdout) == (0, "all 1 sources fresh\n")
        server.faults[target("alert")] = {"status": 503, "times": 10}
        fdawatch(env, tmp_path, "run", "--once")
        failing = fdawatch(env, tmp_path, "status", "--check")
    assert failing.returncode == 1
    assert failing.stdout.startswith("alert: failing: 1 failure in a row, last success ")
    assert len(failing.stdout.splitlines()) == 1
