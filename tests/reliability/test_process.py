"""Process faults: kill -9 mid-crawl and mid-send, two writers at once, a read-only or full disk.

After each, a re-run must leave every change recorded once, every alert delivered at least once
(at most one duplicate, with the same Message-ID) and a database that passes
`PRAGMA integrity_check`. Kill points are random but seeded, so a failure can be replayed.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from db.engine import open_database
from db.models import Alert, Change, Snapshot
from monitor.config import Recipient, load_settings
from monitor.history.writer import HistoryWriter
from monitor.items import Observation
from monitor.runtime.crawl import CrawlSummary, run_crawl
from monitor.sources import SourceConfig, load_sources
from tests.support import alert_history as factory
from tests.support.alert_history import queue_change
from tests.support.deployment import (
    child_env,
    fdawatch,
    integrity,
    item,
    page,
    rss,
    write_deployment,
)
from tests.support.loopback import Answer, LoopbackServer
from tests.support.readback import outbox_rows
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.slow

SEED = 20261102
HTML = {"Content-Type": "text/html; charset=utf-8"}
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
PAGES = [f"page_{n}" for n in range(6)]
FEEDS = ["feed_a", "feed_b"]
NEW_ITEMS = 3


def feed_body(source_id: str, new: bool) -> bytes:
    count = 1 + (NEW_ITEMS if new else 0)
    return rss(
        [
            item(
                f"{source_id} ketamine notice {n} (SYNTHETIC)",
                f"https://www.fda.gov/{source_id}/{n}",
                description=f"Compounded ketamine notice number {n}.",
            )
            for n in range(count)
        ]
    ).encode()


def script(server: LoopbackServer, version: int) -> None:
    """v1: every source fast; v2: every source changed, answers spread over ~2 s."""
    for number, source_id in enumerate(PAGES):
        text = f"Ketamine page {source_id}, " + (
            "revised warning." if version == 2 else "original."
        )
        delay = 0.3 * number if version == 2 else 0
        server.script(f"/{source_id}", Answer(200, page(text).encode(), HTML, delay=delay))
    for number, source_id in enumerate(FEEDS):
        delay = 0.5 + 0.8 * number if version == 2 else 0
        server.script(
            f"/{source_id}", Answer(200, feed_body(source_id, version == 2), RSS, delay=delay)
        )


def crawl_child() -> int | None:
    """The pid of our `monitor.runtime.crawl_process` child, once it exists."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"monitor.runtime.crawl_process" in cmdline:
            return int(entry.name)
    return None


def killed_crawl(
    engine: Engine, settings: object, sources: list[SourceConfig], after: float
) -> CrawlSummary:
    """A real crawl whose child gets SIGKILL `after` seconds into its life."""
    result: list[CrawlSummary] = []
    thread = threading.Thread(
        target=lambda: result.append(run_crawl(engine, settings, sources, timeout=60))  # type: ignore[arg-type]
    )
    thread.start()
    deadline = time.monotonic() + 20
    pid = None
    while pid is None and time.monotonic() < deadline:
        pid = crawl_child()
        time.sleep(0.01)
    assert pid is not None, "the crawl child never started"
    time.sleep(after)
    with contextlib.suppress(
        ProcessLookupError
    ):  # it finished first: a valid (if lucky) kill point
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=60)
    return result[0]


@dataclass
class KilledCrawls:
    db_file: Path
    statuses: list[str]
    changes: Counter[str]
    alerts: Counter[int | None]
    final: CrawlSummary


@pytest.fixture(scope="module")
def killed_crawls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KilledCrawls]:
    folder = tmp_path_factory.mktemp("killed")
    rng = random.Random(SEED)
    with LoopbackServer() as server:
        ids = [(s, "page", f"{server.url}/{s}") for s in PAGES]
        ids += [(s, "feed", f"{server.url}/{s}") for s in FEEDS]
        env = write_deployment(folder, ids, timeout=5)
        settings = load_settings(env)
        sources = list(load_sources(settings.sources_path).values())
        engine = open_database(settings.database_url)
        script(server, 1)
        assert run_crawl(engine, settings, sources, timeout=60).status == "finished"
        script(server, 2)
        statuses = [
            killed_crawl(engine, settings, sources, after=rng.uniform(1.2, 2.6)).status
            for _ in range(2)
        ]
        final = run_crawl(engine, settings, sources, timeout=60)
        with Session(engine) as session:
            changes = Counter(c.source_id for c in session.exec(select(Change)).all())
            alerts = Counter(a.change_id for a in session.exec(select(Alert)).all())
        engine.dispose()
    yield KilledCrawls(folder / "history.db", statuses, changes, alerts, final)


def test_a_crawl_killed_mid_way_is_reported_as_crashed(killed_crawls: KilledCrawls) -> None:
    # The kill lands at a seeded random moment; a second crawl with little left to do may finish
    # before it: that is a valid (lucky) outcome, but at least one kill must land mid-crawl.
    assert "crashed" in killed_crawls.statuses
    assert set(killed_crawls.statuses) <= {"crashed", "finished"}
    assert killed_crawls.final.status == "finished"
    assert {r.outcome for r in killed_crawls.final.results} <= {"ok", "not_modified"}


def test_after_kills_and_a_rerun_every_change_is_recorded_exactly_once(
    killed_crawls: KilledCrawls,
) -> None:
    expected = {**dict.fromkeys(PAGES, 1), **dict.fromkeys(FEEDS, NEW_ITEMS)}
    assert dict(killed_crawls.changes) == expected


def test_after_kills_every_change_has_exactly_one_alert(killed_crawls: KilledCrawls) -> None:
    assert sum(killed_crawls.alerts.values()) == sum(killed_crawls.changes.values())
    assert set(killed_crawls.alerts.values()) == {1}


def test_after_kills_the_database_passes_integrity_check(killed_crawls: KilledCrawls) -> None:
    assert integrity(killed_crawls.db_file) == "ok"


def test_a_crawl_killed_during_the_baseline_still_raises_nothing_on_the_rerun(
    engine: Engine,
) -> None:
    source = SourceConfig(id="feed_x", kind="feed", url="https://www.fda.gov/rss.xml", tier="T2")
    first = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def observe(n: int, at: datetime) -> Observation:
        return Observation(
            "feed_x",
            f"https://www.fda.gov/i/{n}",
            f"https://www.fda.gov/i/{n}",
            f"ketamine notice {n}",
            "text",
            "feed_item",
            at,
        )

    with Session(engine) as session:
        HistoryWriter([source]).sync_sources(session)
        HistoryWriter([source]).record_observation(session, observe(1, first), first)
        session.commit()  # ... and the crawl process is killed here, before items 2 and 3
    rerun = first + timedelta(hours=6)
    with Session(engine) as session:
        raised = [
            HistoryWriter([source]).record_observation(session, observe(n, rerun), rerun)
            for n in (1, 2, 3)
        ]
        session.commit()
    assert raised == [None, None, None]


# -- alerts send killed between the server's accept and the commit -----------------------------

RECIPIENTS = tuple(Recipient(email=f"ops{n}@clinic.example") for n in range(3))


def smtp_env(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        "FDAWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
        "FDAWATCH_SOURCES": str(tmp_path / "sources.toml"),
        "FDAWATCH_CONFIG": "",
        "FDAWATCH_SMTP_HOST": "127.0.0.1",
        "FDAWATCH_SMTP_PORT": str(port),
    }


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_alerts_send_killed_after_the_server_accepted_resends_once_with_the_same_message_id(
    tmp_path: Path, file_engine: Engine, seed: int
) -> None:
    queue_change(file_engine, RECIPIENTS)
    kill_at = random.Random(seed).randint(1, len(RECIPIENTS))
    with SmtpServer() as server:
        env = smtp_env(tmp_path, server.port)
        sender = subprocess.Popen(
            [sys.executable, "-m", "monitor", "alerts", "send"],
            env=child_env(env),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

        def kill_on_accept(message: object) -> None:
            if len(server.inbox.messages) == kill_at:
                os.kill(sender.pid, signal.SIGKILL)  # accepted by the server, never committed

        server.inbox.on_accept = kill_on_accept
        sender.communicate(timeout=60)
        assert sender.returncode == -signal.SIGKILL
        stuck = [row for row in outbox_rows(file_engine) if row.status == "sending"]
        assert stuck, "the kill must leave rows claimed"
        with sqlite3.connect(tmp_path / "history.db") as connection:  # the 10-minute lease passes
            connection.execute(
                "UPDATE alert SET sending_since = datetime(sending_since, '-11 minutes')"
            )
        server.inbox.on_accept = None
        rerun = fdawatch(env, "alerts", "send", cwd=tmp_path)
        ids = Counter(str(m.message["Message-ID"]) for m in server.inbox.messages)
        delivered = {str(m.message["To"]) for m in server.inbox.messages}
    assert rerun.returncode == 0, rerun.stderr
    assert delivered == {r.email for r in RECIPIENTS}  # at least once each
    assert sorted(ids.values(), reverse=True)[0] <= 2  # at most one duplicate …
    assert sum(ids.values()) - len(ids) <= 1  # … and only the email in flight
    assert {row.status for row in outbox_rows(file_engine)} == {"sent"}
    assert integrity(tmp_path / "history.db") == "ok"


def test_two_senders_at_once_deliver_each_alert_exactly_once(
    tmp_path: Path, file_engine: Engine
) -> None:
    """Two real `alerts send` processes on one SQLite file: each alert is emailed once.

    SQLite's `BEGIN IMMEDIATE` serialises their claims, so this does not exercise the claim's
    re-check of `_due(now)`: tests/delivery/test_outbox_race.py does, on both databases.
    """
    for _ in range(4):
        queue_change(file_engine, RECIPIENTS)
    with SmtpServer() as server:
        env = child_env(smtp_env(tmp_path, server.port))
        command = [sys.executable, "-m", "monitor", "alerts", "send"]
        senders = [
            subprocess.Popen(
                command,
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [s.communicate(timeout=60) for s in senders]
        ids = Counter(str(m.message["Message-ID"]) for m in server.inbox.messages)
    assert [s.returncode for s in senders] == [0, 0], outputs
    assert len(ids) == len(RECIPIENTS) and set(ids.values()) == {1}
    assert {row.status for row in outbox_rows(file_engine)} == {"sent"}
    assert integrity(tmp_path / "history.db") == "ok"


#: Loaded by the crawl children (PYTHONPATH): a pause between "read the current version" and
#: "write the new one", so two crawls deterministically overlap in that window.
SLOW_WRITE_HOOK = """\
import os, time
if os.environ.get("FDAWATCH_TEST_SLOW_WRITE"):
    from monitor.history import batch
    _insert = batch.insert_snapshots
    def _slow(*args, **kwargs):
        with open(os.environ["FDAWATCH_TEST_SLOW_WRITE_LOG"], "a") as log:
            log.write(f"{os.getpid()}\\n")
        time.sleep(float(os.environ["FDAWATCH_TEST_SLOW_WRITE"]))
        return _insert(*args, **kwargs)
    batch.insert_snapshots = _slow
"""


def test_two_crawls_writing_one_database_at_once_record_each_change_once(tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_WRITE_HOOK, encoding="utf-8")
    pages = PAGES[:3]
    with LoopbackServer() as server:
        env = write_deployment(
            tmp_path, [(s, "page", f"{server.url}/{s}") for s in pages], timeout=5
        )
        script(server, 1)
        assert fdawatch(env, "crawl", "--all", "--no-send").returncode == 0
        script(server, 2)
        command = [sys.executable, "-m", "monitor", "crawl", "--all", "--no-send"]
        racing = {
            **child_env(env),
            "FDAWATCH_TEST_SLOW_WRITE": "0.5",
            "FDAWATCH_TEST_SLOW_WRITE_LOG": str(hook / "slowed"),
            "PYTHONPATH": f"{hook}{os.pathsep}{child_env(env)['PYTHONPATH']}",
        }
        crawls = [
            subprocess.Popen(
                command, env=racing, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outputs = [c.communicate(timeout=120) for c in crawls]
    assert [c.returncode for c in crawls] == [0, 0], outputs
    log = hook / "slowed"
    slowed = log.read_text(encoding="utf-8").split() if log.exists() else []
    assert len(set(slowed)) == 2, "both crawls must pause in the write (is the hook stale?)"
    db_file = tmp_path / "history.db"
    with sqlite3.connect(db_file) as connection:
        per_source = dict(
            connection.execute(
                "SELECT source_id, count(*) FROM change GROUP BY source_id"
            ).fetchall()
        )
    assert integrity(db_file) == "ok"
    assert per_source == dict.fromkeys(pages, 1)


# -- a read-only database, a full disk ----------------------------------------------------------


def read_only_url(db_file: Path) -> str:
    """SQLite's own read-only mode: unlike chmod, it stops root too (tests run as root in CI)."""
    return f"sqlite:///file:{db_file}?mode=ro&uri=true"


def test_alerts_send_on_a_read_only_database_is_one_clear_line_and_nothing_is_sent(
    tmp_path: Path, file_engine: Engine, smtp: SmtpServer
) -> None:
    queue_change(file_engine)
    env = {
        **smtp_env(tmp_path, smtp.port),
        "FDAWATCH_DATABASE_URL": read_only_url(tmp_path / "history.db"),
    }
    result = fdawatch(env, "alerts", "send", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("fdawatch: error: cannot write to the database")
    assert "attempt to write a readonly database" in line and "the outbox keeps every alert" in line
    assert smtp.inbox.messages == []
    assert [row.status for row in outbox_rows(file_engine)] == ["pending"]


def test_a_crawl_on_a_read_only_database_is_one_clear_line(tmp_path: Path) -> None:
    env = write_deployment(tmp_path, [("page_0", "page", "http://127.0.0.1:9/page_0")])
    open_database(env["FDAWATCH_DATABASE_URL"]).dispose()  # the history, as a first crawl leaves it
    env["FDAWATCH_DATABASE_URL"] = read_only_url(tmp_path / "history.db")
    result = fdawatch(env, "crawl", "--all", "--no-send", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("fdawatch: error: ") and "readonly database" in line


def test_a_full_disk_rolls_the_whole_change_back_and_a_retry_records_it_once(
    tmp_path: Path,
) -> None:
    """SQLite's `max_page_count` stands in for a full disk (no tmpfs or root tricks needed)."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    source = factory.source_config()
    roomy = open_database(url)
    with Session(roomy) as session:
        HistoryWriter([source]).sync_sources(session)
        session.commit()
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    base = Observation(
        source.id,
        source.url,
        source.url,
        "ketamine",
        "<main><p>Original ketamine text.</p></main>",
        "html",
        at,
        body=b"small",
    )
    with Session(roomy) as session:
        HistoryWriter([source]).record_observation(session, base, at)
        session.commit()
    size = (tmp_path / "history.db").stat().st_size
    full = open_database(url)

    @event.listens_for(full, "connect")
    def _disk_full(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    full.dispose()  # reconnect with the limit
    later = at + timedelta(hours=6)
    edited = Observation(
        source.id,
        source.url,
        source.url,
        "ketamine",
        "<main><p>Revised ketamine warning.</p></main>",
        "html",
        later,
        body=os.urandom(256 * 1024),
    )
    recipients = (factory.ALICE,)
    with Session(full) as session, pytest.raises(OperationalError, match="disk is full"):
        HistoryWriter([source], recipients=recipients).record_observation(session, edited, later)
        session.commit()
    full.dispose()
    with Session(roomy) as session:  # nothing half-written: no snapshot, change or alert
        counts = [
            session.exec(select(func.count()).select_from(t)).one()
            for t in (Snapshot, Change, Alert)
        ]
        assert counts == [1, 0, 0]
        HistoryWriter([source], recipients=recipients).record_observation(session, edited, later)
        session.commit()
        counts = [
            session.exec(select(func.count()).select_from(t)).one()
            for t in (Snapshot, Change, Alert)
        ]
    roomy.dispose()
    assert counts == [2, 1, 1]
    assert integrity(tmp_path / "history.db") == "ok" and size > 0


@pytest.mark.parametrize(
    ("leases_held", "who"),
    [
        (
            {"scheduler": "crawler-box:4242"},
            "the scheduler lock is held by crawler-box:4242 (host:pid)",
        ),
        ({"source:fda_x": "worker-2:77"}, "live claims: worker-2:77 (source:fda_x)"),
        ({}, "a crawl, `alerts send` or `fdawatch run`; the database does not say which"),
    ],
)
def test_a_busy_database_is_one_line_naming_the_process_that_holds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leases_held: dict[str, str], who: str
) -> None:
    """Another process holds SQLite's write lock: say so (and who), not "check the URL"."""
    from click.testing import CliRunner

    from db import engine as engine_module
    from db import leases
    from monitor.cli import cli

    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = open_database(url)
    for name, holder in leases_held.items():
        leases.acquire(engine, name, holder, timedelta(minutes=10), datetime.now(UTC))
    engine.dispose()
    (tmp_path / "sources.toml").write_text(
        '[[source]]\nid = "fda_x"\nkind = "page"\nurl = "https://www.fda.gov/x"\n', encoding="utf-8"
    )
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", 300)  # not 30 s in a test
    writer = sqlite3.connect(tmp_path / "history.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the other process, mid-write
    try:
        for args in (["status"], ["alerts", "send"], ["changes"]):
            result = CliRunner().invoke(
                cli,
                ["--database", url, "--sources", str(tmp_path / "sources.toml"), *args],
                env={"FDAWATCH_CONFIG": "", "FDAWATCH_OUTBOX_DIR": str(tmp_path / "outbox")},
            )
            assert result.exit_code == 2, result.output
            assert result.output.splitlines() == [
                f"fdawatch: error: the database {url!r} is busy: another fdawatch process is "
                f"writing to it and did not let go within 0.3 s; {who}; nothing was changed: try "
                "again when it has finished"
            ]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
