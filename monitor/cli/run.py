"""`fdawatch run` (the scheduler daemon, or one pass with --once) and `fdawatch status`.

Standalone click commands: they only need `ctx.obj` to provide `settings`, `engine()` (`run`),
`history()` (`status`, which never creates a database), `sources()` and `now()`
(`monitor.cli.app.App`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime

import click
from sqlmodel import Session

from db import leases
from db.source_health import source_health
from monitor.cli.alerts import print_report
from monitor.cli.app import App, table, warn_about_sources
from monitor.delivery.alerts import SendReport
from monitor.errors import LeaseHeld
from monitor.runtime.collector import collect_as_usual
from monitor.runtime.scheduler import DEFAULT_CRAWL_TIMEOUT, LEASE_NAME, Watcher, run_once, serve
from monitor.runtime.status import StatusRow, problem_line, status_rows
from monitor.runtime.timetable import source_trigger
from monitor.sources import select as select_sources

EXIT_LOCKED = 2
EXIT_CRAWL_FAILED = 1
#: `status --check`: some source is stale, blocked or failing (2 stays "bad input", as always).
EXIT_NOT_FRESH = 1
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


@contextlib.contextmanager
def logging_to_stderr(level: int) -> Iterator[None]:
    """Show the scheduler's log on stderr for the length of a command (journald keeps it).

    APScheduler's own warnings (a run skipped because the previous one still runs, a misfire)
    go the same way; its per-job INFO lines do not.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    loggers = {"fdawatch": level, "apscheduler": max(level, logging.WARNING)}
    previous = {}
    for name, wanted in loggers.items():
        logger = logging.getLogger(name)
        previous[name] = logger.level
        logger.addHandler(handler)
        logger.setLevel(wanted)
    try:
        yield
    finally:
        for name, old_level in previous.items():
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(old_level)


@click.command("run")
@click.argument("source_ids", nargs=-1)
@click.option("--once", is_flag=True, help="Crawl every selected source once, send, and exit.")
@click.option(
    "--wait",
    "wait_for_lock",
    is_flag=True,
    help="If another scheduler holds the database lock, wait for it instead of exiting.",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_CRAWL_TIMEOUT,
    show_default=True,
    help="With --once: seconds to wait for the lock before giving up (exit code 2).",
)
@click.option(
    "--crawl-timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_CRAWL_TIMEOUT,
    show_default=True,
    help="Seconds before a crawl process is stopped.",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="With --once: log each step, not only problems."
)
@click.pass_obj
def run_command(
    app: App,
    source_ids: tuple[str, ...],
    once: bool,
    wait_for_lock: bool,
    lock_timeout: float,
    crawl_timeout: float,
    verbose: bool,
) -> None:
    """Crawl every source on its schedule (interval or cron, from sources.toml) until stopped.

    Sources due at the same moment share one crawl process. Sends queued alerts after each
    crawl and every minute, queues due digests hourly and, with [report] in fdawatch.toml, the
    daily watch report once a day (UTC). SIGTERM or Ctrl-C stops it after the running crawl,
    once the queued alerts are sent (at most 30 s). One scheduler per database: a second one
    exits with code 2 (or waits, with --wait). With --once it crawls the selected sources
    (default: all) a single time, sends the alerts and exits: for cron or a systemd timer.

    Example: fdawatch run --once
    """
    chosen = select_sources(app.sources(), list(source_ids))
    watcher = Watcher(
        app.engine(),
        app.settings,
        {source.id: source for source in chosen},
        crawl_timeout=crawl_timeout,
        clock=app.now,
    )
    for source in chosen:
        source_trigger(source)  # a bad cron expression fails here, before any lock or crawl
    level = logging.INFO if verbose or not once else logging.WARNING
    with logging_to_stderr(level):
        try:
            if once:
                _once(app, watcher, lock_timeout)
                return
            collect_as_usual()  # weeks of running: the collector as its memory was measured
            ran = serve(watcher, wait_for_lock=wait_for_lock)
        except LeaseHeld as error:
            click.echo(f"fdawatch: error: {error}", err=True)
            sys.exit(EXIT_LOCKED)
    click.echo(
        "fdawatch: scheduler stopped cleanly" if ran else "fdawatch: stopped while waiting",
        err=True,
    )


def _once(app: App, watcher: Watcher, lock_timeout: float) -> None:
    """One pass: one summary line, then each failed source and the send outcome (cron mails it).

    A daily report due today (`[report]`) is queued after the crawl, so it shows this pass,
    and sent at once.
    """
    summary = run_once(watcher, lock_timeout=lock_timeout)
    report = _daily_report(app, watcher) if summary is not None else None
    if summary is None:
        if watcher.stopping.is_set():
            click.echo("fdawatch: stopped before the crawl started", err=True)
            return
        sys.exit(EXIT_CRAWL_FAILED)
    click.echo(
        f"run {summary.run_id} {summary.status}: checked {summary.checked}, unchanged "
        f"{summary.unchanged}, changed {summary.changed}, failed {summary.failed}"
    )
    for result in summary.results:
        if result.outcome in ("failed", "drift"):
            click.echo(f"  {result.source_id}: {result.outcome}: {result.error or ''}", err=True)
    if summary.status != "finished":
        click.echo(f"the crawl process {summary.status}:\n{summary.stderr_tail}", err=True)
        sys.exit(EXIT_CRAWL_FAILED)
    if watcher.deliverers.last_send is not None:
        print_report(watcher.deliverers.last_send, app.settings, quiet_when_idle=True)
    if report is not None:
        print_report(report, app.settings, quiet_when_idle=True)


def _daily_report(app: App, watcher: Watcher) -> SendReport | None:
    """Queue the daily report when due and not yet queued today, and send it; None if not."""
    if app.settings.report is None:
        return None
    from monitor.delivery.daily_report import report_job

    if not report_job(watcher.engine, app.settings, watcher.sources, app.now()):
        return None
    return watcher.deliverers.send_alerts()


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "never"


def _checked(value: datetime | None) -> str:
    """Checks can be a minute apart: the last and next check are shown to the second."""
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "never"


def _next(row: StatusRow, now: datetime) -> str:
    return "due now" if row.next_run_at <= now else _checked(row.next_run_at)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source and line.")
@click.option(
    "--check",
    is_flag=True,
    help="For cron or Nagios: one line per source that is stale, blocked or failing, and exit 1 "
    "when there is any (0 when every source is fresh).",
)
@click.pass_obj
def status_command(app: App, as_json: bool, check: bool) -> None:
    """Show each source's health: failures in a row, last check, success and change, next check.

    States: new (never checked), ok, degraded (failing, below the alert threshold), failing,
    drift (the page's layout no longer matches its selector), blocked. The next check is when the
    daemon crawls the source next ("due now": at its next batch). Fresh: a check succeeded within
    two scheduled checks and the source is neither blocked nor failing; otherwise it is stale.
    Times are UTC. With --check, exit 1 when any source is not fresh.

    Example: fdawatch status --check
    """
    now = app.now()
    sources = app.sources()
    engine = app.history()
    warn_about_sources(app, source_health(engine), sources)
    with Session(engine) as session:
        rows = status_rows(session, sources, app.settings, now)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.to_dict()))
    elif check:
        bad = [problem_line(row) for row in rows if row.stale]
        click.echo("\n".join(bad) if bad else f"all {len(rows)} sources fresh")
    if check and any(row.stale for row in rows):
        sys.exit(EXIT_NOT_FRESH)
    if as_json or check:
        return
    holder = leases.holder_of(engine, LEASE_NAME, now)
    click.echo(f"scheduler: running as {holder}" if holder else "scheduler: not running")
    cells = [
        [
            row.source_id,
            row.state,
            f"{row.failures_in_row}/{row.failure_threshold}",
            _checked(row.last_checked_at),
            _when(row.last_success_at),
            _when(row.last_change_at),
            _next(row, now),
            row.freshness,
            row.schedule,
            (row.last_error or "")[:60],
        ]
        for row in rows
    ]
    headers = [
        *("source", "state", "fails", "last check", "last success", "last change"),
        *("next check", "fresh", "every"),
    ]
    click.echo(table(cells, [*headers, "last error"]))
