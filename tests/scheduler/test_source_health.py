"""Source health through real crawls: faults are failed fetches, never content changes.

Five crawls (`run_crawl`, one child process each) of the same sources on the loopback fixture
server, with a failure threshold of 2: a clean baseline, three crawls with faults switched on
(one fault per source), then a clean crawl again. A user must see no change, exactly one
"failing" (or "layout drift") notice per broken source once it failed twice in a row, nothing for
a source that failed once, and exactly one "recovered" notice when it works again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from db.engine import open_database
from db.models import Alert, Change, Fetch, Source
from monitor.runtime.crawl import run_crawl
from tests.scheduler.helpers import DRIFT_PAGE, HEALTH, deployment, target, write_sources
from tests.support.loopback import LoopbackServer

pytestmark = pytest.mark.slow

NEW_VERSION = (HEALTH / "v2" / "pages" / "ketamine_oral_alert_synthetic.html").read_bytes()


@dataclass(frozen=True)
class Case:
    source_id: str
    kind: str
    fault: Callable[[], dict[str, Any]]
    outcome: str
    error: str  # what the user reads in `fdawatch history` / the notice
    notice: str


CASES = [
    Case("server_error", "page", lambda: {"status": 500}, "failed", "HTTP 500", "source_failing"),
    Case(
        "feed_unavailable", "feed", lambda: {"status": 503}, "failed", "HTTP 503", "source_failing"
    ),
    Case(
        "timeout", "page", lambda: {"delay": 1.5}, "failed", "took longer than 1.0 seconds",
        "source_failing",
    ),
    Case(
        "rate_limited", "page", lambda: {"status": 429, "retry_after": "3600"}, "failed",
        "asks to retry after 3600 s", "source_failing",
    ),
    # A truncated copy of a NEW version: it must not become a change, even partly.
    Case(
        "truncated", "page", lambda: {"truncate": True, "body": NEW_VERSION}, "failed",
        "data loss", "source_failing",
    ),
    Case(
        "no_main", "page", lambda: {"body": DRIFT_PAGE.read_bytes()}, "drift",
        "selector 'main' matched nothing", "layout_drift",
    ),
    Case(
        "redirect_loop", "page", lambda: {"redirect": target("redirect_loop")}, "failed",
        "comes back to a URL already visited", "source_failing",
    ),
]  # fmt: skip
TRANSIENT = "transient"  # fails in the first faulty crawl only
POLITE = "asked_to_wait"  # 429 + Retry-After: 1 in the first faulty crawl only
SOURCES = [(c.source_id, c.kind) for c in CASES] + [(TRANSIENT, "page"), (POLITE, "page")]


@dataclass
class Pass:
    """What one crawl left behind."""

    fetches: dict[str, Fetch]
    changes: int
    alerts: Counter[tuple[str, str]]


def take_pass(engine: Any, run_id: int) -> Pass:
    with Session(engine) as session:
        fetches = session.exec(select(Fetch).where(Fetch.run_id == run_id)).all()
        changes = session.exec(select(func.count()).select_from(Change)).one()
        alerts = Counter((a.source_id, a.kind) for a in session.exec(select(Alert)).all())
        return Pass({f.source_id: f for f in fetches}, changes, alerts)


@pytest.fixture(scope="module")
def passes(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Pass], LoopbackServer]:
    folder: Path = tmp_path_factory.mktemp("health")
    with LoopbackServer(HEALTH) as server:
        write_sources(folder / "sources.toml", server, SOURCES)
        settings, sources = deployment(folder, threshold=2)
        engine = open_database(settings.database_url)
        results = []
        for number in range(5):
            server.faults.clear()
            if number in (1, 2, 3):
                server.faults.update({target(c.source_id, c.kind): c.fault() for c in CASES})
            if number == 1:
                server.faults[target(TRANSIENT)] = {"status": 500}
                server.faults[target(POLITE)] = {"status": 429, "retry_after": "1", "times": 1}
            summary = run_crawl(engine, settings, list(sources.values()), timeout=120)
            assert summary.status == "finished", summary.stderr_tail
            results.append(take_pass(engine, summary.run_id))
        engine.dispose()
    return results, server


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.source_id)
def test_a_fault_is_a_failed_fetch_with_a_clear_error(
    passes: tuple[list[Pass], LoopbackServer], case: Case
) -> None:
    results, _ = passes
    assert results[0].fetches[case.source_id].outcome == "ok"
    for faulty in results[1:4]:
        fetch = faulty.fetches[case.source_id]
        assert fetch.outcome == case.outcome
        assert case.error in (fetch.error or "")
    assert results[4].fetches[case.source_id].outcome in ("ok", "not_modified")


def test_no_fault_ever_becomes_a_content_change(passes: tuple[list[Pass], LoopbackServer]) -> None:
    results, _ = passes
    assert [p.changes for p in results] == [0, 0, 0, 0, 0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.source_id)
def test_one_notice_after_n_failures_and_one_when_it_recovers(
    passes: tuple[list[Pass], LoopbackServer], case: Case
) -> None:
    results, _ = passes
    notices = [
        {kind: n for (source, kind), n in p.alerts.items() if source == case.source_id}
        for p in results
    ]
    assert notices == [
        {},  # baseline
        {},  # one failure: below the threshold of 2
        {case.notice: 1},  # second failure in a row: one notice (one recipient)
        {case.notice: 1},  # third: no repeat
        {case.notice: 1, "source_recovered": 1},
    ]


def test_a_single_transient_failure_raises_no_alert(
    passes: tuple[list[Pass], LoopbackServer],
) -> None:
    results, _ = passes
    assert [p.fetches[TRANSIENT].outcome for p in results][:3] == ["ok", "failed", "not_modified"]
    assert all(source != TRANSIENT for p in results for source, _ in p.alerts)


def test_a_429_with_a_short_retry_after_is_waited_out_within_the_crawl(
    passes: tuple[list[Pass], LoopbackServer],
) -> None:
    results, server = passes
    assert results[1].fetches[POLITE].outcome == "not_modified"
    statuses = [r.status for r in server.hits if r.target == target(POLITE)]
    assert statuses[:3] == [200, 429, 304]  # baseline, asked to wait, then answered
    assert all(source != POLITE for p in results for source, _ in p.alerts)


def test_a_crawl_killed_on_timeout_counts_as_a_failure_of_its_sources(tmp_path: Path) -> None:
    with LoopbackServer(HEALTH) as server:
        write_sources(tmp_path / "sources.toml", server, [("hung", "page")])
        settings, sources = deployment(tmp_path, threshold=2)
        engine = open_database(settings.database_url)
        summary = run_crawl(engine, settings, list(sources.values()), timeout=0.3)
        assert summary.status == "timed out"
        with Session(engine) as session:
            row = session.get(Source, "hung")
            failures = row.consecutive_failures if row else 0
        engine.dispose()
    assert failures == 1
