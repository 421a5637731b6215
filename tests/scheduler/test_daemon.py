"""`fdawatch run` as a user runs it: a real daemon process, a second one, SIGTERM, `--once` twice.

The commands run as `python -m monitor …` (the real `fdawatch` command line) against
the loopback fixture server, each in a temp folder with its own SQLite history.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from db import leases
from db.engine import open_database
from db.models import Alert, Change, CrawlRun
from monitor.runtime.scheduler import LEASE_NAME
from tests.scheduler.helpers import (
    HEALTH,
    child_env,
    environment,
    fdawatch,
    fdawatch_command,
    target,
    write_sources,
)
from tests.support.loopback import LoopbackServer

pytestmark = pytest.mark.slow


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_the_daemon_crawls_refuses_a_second_one_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    with LoopbackServer(HEALTH) as server:
        # The first crawl lasts ~6 s: a 429 asks to come back then (the daemon's crawl waits it
        # out and retries). sources.toml refuses intervals under 1m, so this one crawl is the
        # crawl the second daemon and SIGTERM meet.
        server.faults[target("alert")] = {"status": 429, "retry_after": 6, "times": 1}
        write_sources(tmp_path / "sources.toml", server, [("alert", "page")], interval="1m")
        env = child_env(environment(tmp_path))
        log_path = tmp_path / "daemon.log"
        with log_path.open("w") as log_file:
            daemon = subprocess.Popen(
                fdawatch_command("run"), env=env, cwd=tmp_path, stdout=log_file, stderr=log_file
            )
        try:

            def log() -> str:
                return log_path.read_text(encoding="utf-8")

            wait_for(lambda: "INFO crawling" in log(), 30, "the first crawl")

            second = fdawatch(env, tmp_path, "run")
            assert second.returncode == 2, second.stderr
            assert f":{daemon.pid})" in second.stderr  # names the holder: host:pid
            assert "--wait" in second.stderr

            # SIGTERM in the middle of the crawl: it finishes, then the daemon exits.
            assert " finished: " not in log(), "the crawl ended before SIGTERM: make it longer"
            daemon.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert daemon.wait(timeout=20) == 0, log()
            assert time.monotonic() - started < 10
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    text = log()
    after_signal = text[text.index("SIGTERM: stopping after the running crawl") :]
    assert " finished: " in after_signal  # the running crawl was completed, not killed
    assert text.rstrip().endswith("fdawatch: scheduler stopped cleanly")
    assert "Traceback" not in text
    engine = open_database(env["FDAWATCH_DATABASE_URL"])
    with Session(engine) as session:
        statuses = session.exec(select(CrawlRun.status)).all()
    assert statuses == ["finished"]
    assert leases.holder_of(engine, LEASE_NAME, datetime.now(UTC)) is None  # released
    engine.dispose()


def test_two_once_runs_at_the_same_time_take_turns_and_record_each_change_once(
    tmp_path: Path,
) -> None:
    with LoopbackServer(HEALTH) as server:
        write_sources(tmp_path / "sources.toml", server, [("alert", "page"), ("feed", "feed")])
        env = child_env(environment(tmp_path))
        baseline = fdawatch(env, tmp_path, "run", "--once")
        assert baseline.returncode == 0, baseline.stderr
        server.set_version(2)  # the page's body gains one edited sentence
        both = [
            subprocess.Popen(
                fdawatch_command("run", "--once"),
                env=env,
                cwd=tmp_path,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        outputs = [process.communicate(timeout=120) for process in both]
    for process, (out, err) in zip(both, outputs, strict=True):
        assert process.returncode == 0, out + err
        assert "locked" not in out + err and "Traceback" not in err
    engine = open_database(env["FDAWATCH_DATABASE_URL"])
    with Session(engine) as session:
        changes = session.exec(select(func.count()).select_from(Change)).one()
        alerts = session.exec(select(Alert.kind, Alert.status)).all()
        runs = session.exec(select(CrawlRun).order_by(col(CrawlRun.started_at))).all()
    engine.dispose()
    assert changes == 1
    assert alerts == [("change", "sent")]
    assert len(list((tmp_path / "var" / "outbox").glob("*.eml"))) == 1
    assert len(runs) == 3
    for earlier, later in itertools.pairwise(runs):
        assert earlier.finished_at is not None and earlier.finished_at <= later.started_at
