"""Three worker processes sharing one PostgreSQL history crawl the demo sources over loopback.

Each worker (`tests/multi/worker.py`) claims sources, crawls them in a child process, releases
them and drains the outbox into an SMTP server on loopback, again and again for a bounded time.
The fixture server moves from the baseline (v1) to the recorded next versions (v2): every planted
change must be recorded once, every alert emailed once, and no source crawled by two workers at
the same time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from db.engine import make_engine
from db.models import Alert, Change, Fetch, Source
from tests.support.feeds import independent_items
from tests.support.loopback import LoopbackServer
from tests.support.paths import DEMO, RECALLS_HISTORY, ROOT
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.slow

WORKERS = 3
DEADLINE = 90.0  # seconds for each phase; a healthy run needs a few
RECIPIENT = "pharmacist@pharmacy.example"


def wait_for(condition: Callable[[], bool], what: str, workers: list[subprocess.Popen]) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        for worker in workers:
            if worker.poll() is not None:
                _, stderr = worker.communicate()
                pytest.fail(f"a worker exited early ({worker.returncode}):\n{stderr[-3000:]}")
        if time.monotonic() > end:
            pytest.fail(f"gave up after {DEADLINE:.0f} s waiting for {what}")
        time.sleep(0.2)


def deployment(folder: Path, port: str, database: str, smtp_port: int) -> dict[str, str]:
    """sources.toml (the worker makes every source due every 2 s), fdawatch.toml, environment."""
    demo = (DEMO / "sources.toml").read_text(encoding="utf-8").replace("{port}", port)
    sources = folder / "sources.toml"
    sources.write_text(demo, encoding="utf-8")
    config = folder / "fdawatch.toml"
    config.write_text(f'[[recipient]]\nemail = "{RECIPIENT}"\n', encoding="utf-8")
    return {
        "PATH": "/usr/bin:/bin",
        "FDAWATCH_DATABASE_URL": database,
        "FDAWATCH_SOURCES": str(sources),
        "FDAWATCH_CONFIG": str(config),
        "FDAWATCH_VAR_DIR": str(folder / "var"),
        "FDAWATCH_CRAWL_DELAY": "0",
        "FDAWATCH_CRAWL_CONCURRENCY_PER_HOST": "8",
        "FDAWATCH_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
    }


def baseline_done(engine: Engine, count: int) -> bool:
    with Session(engine) as session:
        done = session.exec(
            select(func.count()).select_from(Source).where(col(Source.last_success_at).is_not(None))
        ).one()
    return done == count


def fetched_since(engine: Engine, moment: datetime, count: int) -> bool:
    with Session(engine) as session:
        sources = session.exec(
            select(Fetch.source_id).where(Fetch.fetched_at > moment).distinct()
        ).all()
    return len(sources) == count


def outbox_drained(engine: Engine) -> bool:
    with Session(engine) as session:
        statuses = set(session.exec(select(Alert.status)).all())
    return bool(statuses) and statuses == {"sent"}


def test_three_workers_record_each_change_once_and_send_each_alert_once(
    postgres_only_url: str, tmp_path: Path
) -> None:
    smtp = SmtpServer()
    smtp.start()
    stop_file = tmp_path / "stop"
    workers: list[subprocess.Popen[str]] = []
    engine = make_engine(postgres_only_url)
    try:
        with LoopbackServer(DEMO) as server:
            port = server.url.rsplit(":", 1)[1]
            env = deployment(tmp_path, port, postgres_only_url, smtp.port)
            count = (DEMO / "sources.toml").read_text(encoding="utf-8").count("[[source]]")
            server.set_version(1)
            workers = [
                subprocess.Popen(
                    [sys.executable, "-m", "tests.multi.worker", f"worker-{n}", str(stop_file)],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for n in range(WORKERS)
            ]
            wait_for(lambda: baseline_done(engine, count), "the v1 baseline", workers)
            switched = datetime.now(UTC)
            server.set_version(2)
            wait_for(lambda: fetched_since(engine, switched, count), "v2 fetches", workers)
            wait_for(lambda: outbox_drained(engine), "the outbox to drain", workers)
            time.sleep(2.5)  # more rounds of every worker: re-crawls must add nothing
            stop_file.touch()
            outputs = [worker.communicate(timeout=DEADLINE) for worker in workers]
        for worker, (_, stderr) in zip(workers, outputs, strict=True):
            assert worker.returncode == 0, stderr[-3000:]
        crawls = [json.loads(line) for out, _ in outputs for line in out.splitlines()]

        with Session(engine) as session:
            changes = session.exec(select(Change)).all()
            alerts = session.exec(select(Alert)).all()
            fetches = session.exec(select(func.count()).select_from(Fetch)).one()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
        engine.dispose()
        smtp.stop()

    # The work was shared, and a source was never in two workers' hands at once.
    assert len({crawl["worker"] for crawl in crawls}) >= 2, crawls
    assert all(crawl["status"] == "finished" for crawl in crawls), crawls
    assert fetches > 2 * count  # sources were crawled again and again after v2
    spans: dict[str, list[tuple[float, float, str]]] = {}
    for crawl in crawls:
        for source_id in crawl["sources"]:
            spans.setdefault(source_id, []).append((crawl["start"], crawl["end"], crawl["worker"]))
    for source_id, held in spans.items():
        held.sort()
        for (_, end, first), (start, _, second) in pairwise(held):
            assert end <= start, f"{source_id} crawled by {first} and {second} at once"

    # Every planted change recorded once (the same outcome as one process: test_end_to_end).
    assert Counter((c.source_id, c.doc_key) for c in changes).most_common(1)[0][1] == 1
    per_source = Counter(change.source_id for change in changes)
    new_links = set(independent_items(next(RECALLS_HISTORY.glob("002_*.xml")))) - set(
        independent_items(next(RECALLS_HISTORY.glob("001_*.xml")))
    )
    assert per_source.pop("fda_food_safety_recalls") == len(new_links)
    assert per_source == {
        "fda_ketamine_oral_alert": 1,
        "fda_compounding_risk_alerts": 1,
        "fda_spravato_rems": 1,
    }

    # Every alert emailed once: one row per change, each row in exactly one accepted email.
    alerted = [alert for alert in alerts if alert.kind == "change"]
    assert sorted(a.change_id for a in alerted) == sorted(
        c.id for c in changes if c.severity != "T5"
    )
    assert all(alert.status == "sent" and alert.attempts == 1 for alert in alerts)
    ids = [str(received.message["Message-ID"]) for received in smtp.messages]
    assert len(ids) == len(set(ids)), "the same email was sent twice"
    assert sorted(ids) == sorted({str(alert.message_id) for alert in alerts})
    assert all(received.rcpt_tos == [RECIPIENT] for received in smtp.messages)
