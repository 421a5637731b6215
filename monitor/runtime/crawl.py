"""Run one crawl of some sources and summarise what came of it.

The caller opens (and migrates) the database; `run_crawl` registers the sources, opens a `CrawlRun`,
crawls all the selected sources at once with `monitor.runtime.crawl_process` — in a child process by
default (the scheduler crawls again and again, and a reactor cannot restart), or in this process for
a one-shot `fdawatch crawl` — and closes the run from the fetch records the crawl wrote, even when
it crashed or timed out.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from db.models import CrawlRun, Fetch
from monitor.config import Settings, child_environment
from monitor.history.writer import HistoryWriter
from monitor.sources import SourceConfig

DEFAULT_TIMEOUT = 30 * 60


@dataclass(frozen=True)
class SourceResult:
    source_id: str
    outcome: str
    http_status: int | None
    documents: int
    changes: int
    error: str | None


@dataclass(frozen=True)
class CrawlSummary:
    run_id: int
    checked: int
    unchanged: int
    changed: int
    failed: int
    status: str
    results: tuple[SourceResult, ...]
    stderr_tail: str = ""


def _summary(session: Session, run: CrawlRun, stderr_tail: str) -> CrawlSummary:
    fetches = session.exec(select(Fetch).where(Fetch.run_id == run.id).order_by(Fetch.id)).all()
    last = {fetch.source_id: fetch for fetch in fetches}
    results = []
    for source_id in run.source_ids:
        fetch = last.get(source_id)
        if fetch is None:
            results.append(SourceResult(source_id, "failed", None, 0, 0, "no response recorded"))
        else:
            results.append(
                SourceResult(
                    source_id,
                    fetch.outcome,
                    fetch.http_status,
                    fetch.documents,
                    fetch.changes,
                    fetch.error,
                )
            )
    assert run.id is not None
    return CrawlSummary(
        run_id=run.id,
        checked=run.checked,
        unchanged=run.unchanged,
        changed=run.changed,
        failed=run.failed,
        status=run.status,
        results=tuple(results),
        stderr_tail=stderr_tail,
    )


def run_crawl(
    engine: Engine,
    settings: Settings,
    sources: Sequence[SourceConfig],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    log_level: str = "WARNING",
    in_process: bool = False,
) -> CrawlSummary:
    """Crawl `sources` once (one child process, or this one); return the run's summary.

    `in_process=True` is for a process that crawls only once (the reactor cannot restart).
    """
    writer = HistoryWriter.for_settings(settings, sources)
    with Session(engine) as session:
        run_id = writer.open_run(session, datetime.now(UTC), [s.id for s in sources])
    if in_process:
        status, tail = _crawl_here(settings, sources, run_id, timeout, log_level)
    else:
        status, tail = _crawl_in_child(settings, sources, run_id, timeout, log_level)
    with Session(engine) as session:
        run = writer.finish_run(session, datetime.now(UTC), status=status)
        session.commit()
        return _summary(session, run, tail)


def _crawl_here(
    settings: Settings,
    sources: Sequence[SourceConfig],
    run_id: int,
    timeout: float,
    log_level: str,
) -> tuple[str, str]:
    """The crawl in this process: (status, log tail), like a child's exit and stderr."""
    from monitor.runtime.crawl_process import TailHandler, crawl_sources

    tail = TailHandler(getattr(logging, log_level.upper(), logging.WARNING))
    try:
        finished = crawl_sources(
            settings, sources, run_id, log_level=log_level, timeout=timeout, tail=tail
        )
    except Exception:
        lines = [tail.tail(), traceback.format_exc()]
        return "crashed", "\n".join(("\n".join(lines)).strip().splitlines()[-15:])
    return ("finished" if finished else "timed out"), tail.tail()


def _crawl_in_child(
    settings: Settings,
    sources: Sequence[SourceConfig],
    run_id: int,
    timeout: float,
    log_level: str,
) -> tuple[str, str]:
    """The crawl in a fresh child process: (status, the tail of its stderr)."""
    command = [
        sys.executable,
        "-m",
        "monitor.runtime.crawl_process",
        "--run-id",
        str(run_id),
        "--log-level",
        log_level,
        *[s.id for s in sources],
    ]
    status = "finished"
    try:
        child = subprocess.run(
            command,
            env=child_environment(settings),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        stderr = child.stderr
        if child.returncode != 0:
            status = "crashed"
    except subprocess.TimeoutExpired as expired:
        status = "timed out"
        stderr = (
            (expired.stderr or b"").decode(errors="replace")
            if isinstance(expired.stderr, bytes)
            else (expired.stderr or "")
        )
    return status, "\n".join(stderr.strip().splitlines()[-15:])
