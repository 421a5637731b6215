"""`fdawatch run` as a user runs it: a real daemon process, a second one, SIGTERM, `--once` twice.

The commands run as `python -m monitor …` (the real `fdawatch` command line) against
the loopback fixture server, each in a temp folder with its own SQLite history.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from db import leases
from db.engine import open_database
from db.models import Alert, Change, CrawlRun, Source
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


@contextlib.contextmanager
def running_daemon(
    env: dict[str, str], folder: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Callable[[], str]]]:
    """`fdawatch run` in `folder`, its output to daemon.log: the process and a log reader.

    Killed on the way out if a failed assertion left it running.
    """
    log_path = folder / "daemon.log"
    with log_path.open("w") as log_file:
        daemon = subprocess.Popen(
            fdawatch_command("run"), env=env, cwd=folder, stdout=log_file, stderr=log_file
        )
    try:
        yield daemon, lambda: log_path.read_text(encoding="utf-8")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def test_the_daemon_crawls_refuses_a_second_one_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    with LoopbackServer(HEALTH) as server:
        # The first crawl lasts ~15 s: a 429 asks to come back then (the daemon's crawl waits it
        # out and retries), long enough for a second `fdawatch run` to start on a loaded
        # machine. sources.toml refuses intervals under 1m, so this one crawl is the crawl the
        # second daemon and SIGTERM meet.
        server.faults[target("alert")] = {"status": 429, "retry_after": 15, "times": 1}
        write_sources(tmp_path / "sources.toml", server, [("alert", "page")], interval="1m")
        env = child_env(environment(tmp_path))
        with running_daemon(env, tmp_path) as (daemon, log):
            wait_for(lambda: "INFO crawling" in log(), 90, "the first crawl")

            second = fdawatch(env, tmp_path, "run")
            assert second.returncode == 2, second.stderr
            assert f":{daemon.pid})" in second.stderr  # names the holder: host:pid
            assert "--wait" in second.stderr

            # SIGTERM in the middle of the crawl: it finishes, then the daemon exits.
            assert " finished: " not in log(), "the crawl ended before SIGTERM: make it longer"
            daemon.send_signal(signal.SIGTERM)
            # Bounded by the retry wait and the exit drain, not by a speed check: a loaded
            # machine may take longer than the ~15 s this needs.
            assert daemon.wait(timeout=90) == 0, log()
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


def test_sigterm_during_a_crawl_that_finds_a_change_sends_its_alert_before_exiting(
    tmp_path: Path,
) -> None:
    with LoopbackServer(HEALTH) as server:
        write_sources(tmp_path / "sources.toml", server, [("alert", "page")], interval="1h")
        env = child_env(environment(tmp_path))
        baseline = fdawatch(env, tmp_path, "run", "--once")
        assert baseline.returncode == 0, baseline.stderr
        server.set_version(2)  # the page's body gains one edited sentence
        engine = open_database(env["FDAWATCH_DATABASE_URL"])
        with Session(engine) as session:  # checked 2 h ago: overdue, crawled when the daemon starts
            row = session.get(Source, "alert")
            assert row is not None and row.last_checked_at is not None
            row.last_checked_at -= timedelta(hours=2)
            session.add(row)
            session.commit()
        # A 429 asks the crawl to come back in 10 s (it waits and retries): still crawling when
        # SIGTERM comes, however slowly this machine starts the daemon.
        server.faults[target("alert")] = {"status": 429, "retry_after": 10, "times": 1}
        with running_daemon(env, tmp_path) as (daemon, log):
            # The start-up send found nothing; the crawl that will find the change has begun.
            wait_for(lambda: "INFO crawling alert" in log(), 90, "the crawl")
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0, log()
    text = log()
    after_signal = text[text.index("SIGTERM: stopping after the running crawl") :]
    assert "changed 1" in after_signal
    assert f"alerts: 1 emails (1 alerts) via {tmp_path / 'var' / 'outbox'}/;" in after_signal
    assert after_signal.index("changed 1") < after_signal.index("alerts: 1 emails")
    with Session(engine) as session:
        alerts = session.exec(select(Alert.kind, Alert.status)).all()
    engine.dispose()
    assert alerts == [("change", "sent")]
    assert len(list((tmp_path / "var" / "outbox").glob("*.eml"))) == 1
