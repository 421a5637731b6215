"""The `fdawatch` command: a thin click layer over the monitor's Python API.

Every command's docstring is its `--help` and ends with an example. Bad input (a broken
sources.toml, an unknown source id, a bad setting) is reported in one line naming it, with exit
code 2, before anything is written to the history.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import DatabaseError as DriverError
from sqlmodel import Session, col, select

from db.engine import display_url, open_database
from db.models import Change, Fetch, Snapshot, Source
from monitor.config import Settings, load_settings
from monitor.db_errors import open_failure_message, write_failure_message
from monitor.errors import DatabaseError, FdawatchError, NotFound
from monitor.sources import SourceConfig, load_sources
from monitor.sources import select as select_sources

EXIT_USAGE = 2
#: True when this process is the `fdawatch` command itself (see `main`): it runs one command and
#: exits, so `crawl` may run Scrapy's reactor here instead of in a child (it cannot restart).
ONE_SHOT = False


class AppContext:
    """What every command needs, loaded lazily so `--help` works without any configuration."""

    def __init__(self, sources_path: str | None, database_url: str | None) -> None:
        self._sources_path = sources_path
        self._database_url = database_url
        self._engine: Engine | None = None
        self._sources: dict[str, SourceConfig] | None = None

    @cached_property
    def settings(self) -> Settings:
        settings = load_settings()
        if self._sources_path:
            settings = replace(settings, sources_path=Path(self._sources_path))
        if self._database_url:
            settings = replace(settings, database_url=self._database_url)
        return settings

    def sources(self) -> dict[str, SourceConfig]:
        """sources.toml, read once per command (`crawl` also needs it to send the alerts)."""
        if self._sources is None:
            self._sources = load_sources(self.settings.sources_path)
        return self._sources

    def engine(self) -> Engine:
        if self._engine is None:
            url = self.settings.database_url
            try:
                self._engine = open_database(url)
            except ModuleNotFoundError as error:
                raise DatabaseError(
                    f"cannot open the database {display_url(url)!r}: its driver {error.name!r} "
                    "is not installed (for PostgreSQL: pip install 'fdawatch[postgres]')"
                ) from None
            except (DriverError, ArgumentError, OSError, ValueError) as error:
                raise DatabaseError(open_failure_message(error, url)) from None
        return self._engine

    def now(self) -> datetime:
        return datetime.now(UTC)


class FdawatchGroup(click.Group):
    """Turns configuration errors into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FdawatchError as error:
            message = error.args[0] if error.args else str(error)
            click.echo(f"fdawatch: error: {' '.join(str(message).split())}", err=True)
            ctx.exit(EXIT_USAGE)
        except DriverError as error:  # read-only, full, busy or damaged after opening
            url = ctx.obj.settings.database_url if isinstance(ctx.obj, AppContext) else "?"
            message = write_failure_message(
                error,
                url,
                "check that the file and its folder are writable and the disk is not full "
                "(history unchanged)",
            )
            click.echo(f"fdawatch: error: {message}", err=True)
            ctx.exit(EXIT_USAGE)


@click.group(cls=FdawatchGroup)
@click.option(
    "--sources",
    "sources_path",
    metavar="PATH",
    help="sources.toml to use (default: ./sources.toml or $FDAWATCH_SOURCES).",
)
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    help="SQLAlchemy URL (default: sqlite:///var/fdawatch.db or $FDAWATCH_DATABASE_URL).",
)
@click.version_option(package_name="fdawatch")
@click.pass_context
def cli(ctx: click.Context, sources_path: str | None, database_url: str | None) -> None:
    """fdawatch: watch FDA communications on compounded ketamine and esketamine (Spravato).

    Example: fdawatch crawl --all && fdawatch changes --since 7d
    """
    ctx.obj = AppContext(sources_path, database_url)


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


@cli.command("sources")
@click.argument("source_ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--check",
    is_flag=True,
    help="Preflight: one request per source, a verdict each (ok, blocked, drift, wrong type, "
    "not found, moved → URL or the error); exit 1 when any is not ok. Records nothing.",
)
@click.option(
    "--timeout", type=float, default=300, show_default=True, help="Seconds the check may take."
)
@click.pass_obj
def sources_command(
    app: AppContext, source_ids: tuple[str, ...], as_json: bool, check: bool, timeout: float
) -> None:
    """List the watched sources from sources.toml with their health, or check them live.

    Run `--check` on the production host before the first crawl: FDA's CDN answers differently
    depending on where a request comes from. Nothing is written to the history.

    Example: fdawatch sources --check fda_spravato_rems fda_medwatch_rss
    """
    if check:
        _check_sources(app, source_ids, as_json, timeout)
        return
    sources = app.sources()
    with Session(app.engine()) as session:
        rows = {row.id: row for row in session.exec(select(Source)).all()}
    if as_json:
        for source in sources.values():
            row = rows.get(source.id)
            click.echo(json.dumps({**source.to_dict(), "health": row.health if row else "unknown"}))
        return
    table = [
        [
            s.id,
            s.kind,
            s.tier,
            s.cron or s.interval,
            rows[s.id].health if s.id in rows else "new",
            s.url,
        ]
        for s in sources.values()
    ]
    click.echo(_table(table, ["id", "kind", "tier", "every", "health", "url"]))


def _check_sources(
    app: AppContext, source_ids: tuple[str, ...], as_json: bool, timeout: float
) -> None:
    from monitor.runtime.preflight import check_here, check_in_child

    chosen = select_sources(app.sources(), list(source_ids))
    in_process = ONE_SHOT and "twisted.internet.reactor" not in sys.modules
    check = check_here if in_process else check_in_child
    results = check(app.settings, chosen, timeout)
    if as_json:
        for result in results:
            click.echo(json.dumps(result.to_dict()))
    else:
        rows = [[r.source_id, r.verdict, str(r.http_status or ""), r.detail[:90]] for r in results]
        click.echo(_table(rows, ["source", "verdict", "http", "detail"]))
        bad = sum(1 for r in results if not r.ok)
        click.echo(
            f"{len(results) - bad} of {len(results)} sources ok"
            + ("; see the README, 'When FDA blocks fdawatch', for what to do" if bad else "")
        )
    if any(not r.ok for r in results):
        sys.exit(1)


@cli.command("crawl")
@click.argument("source_ids", nargs=-1)
@click.option("--all", "crawl_all", is_flag=True, help="Crawl every source in sources.toml.")
@click.option("--no-send", is_flag=True, help="Do not run `alerts send` after the crawl.")
@click.option(
    "--timeout",
    type=float,
    default=1800,
    show_default=True,
    help="Seconds before the crawl process is stopped.",
)
@click.pass_obj
def crawl_command(
    app: AppContext, source_ids: tuple[str, ...], crawl_all: bool, no_send: bool, timeout: float
) -> None:
    """Fetch sources once (one Scrapy process for all of them) and record what changed.

    Prints one line per source (ok / not_modified / gone / failed / drift) and the run's
    counts, then sends the alerts the changes raised (see `fdawatch alerts send`).

    Example: fdawatch crawl fda_ketamine_oral_alert fda_medwatch_rss
    """
    from monitor.runtime.crawl import run_crawl

    if not source_ids and not crawl_all:
        raise click.UsageError("name source ids (see `fdawatch sources`) or pass --all")
    chosen = select_sources(app.sources(), list(source_ids))
    in_process = ONE_SHOT and "twisted.internet.reactor" not in sys.modules
    summary = run_crawl(app.engine(), app.settings, chosen, timeout=timeout, in_process=in_process)
    rows = [
        [
            r.source_id,
            r.outcome,
            str(r.http_status or ""),
            str(r.documents),
            str(r.changes),
            (r.error or "")[:70],
        ]
        for r in summary.results
    ]
    click.echo(_table(rows, ["source", "outcome", "http", "docs", "changes", "error"]))
    click.echo(
        f"run {summary.run_id} {summary.status}: checked {summary.checked}, unchanged "
        f"{summary.unchanged}, changed {summary.changed}, failed {summary.failed}"
    )
    if summary.status != "finished":
        click.echo(f"the crawl process {summary.status}:\n{summary.stderr_tail}", err=True)
    if not no_send:
        from monitor.cli_alerts import send_and_report

        send_and_report(app)
    if summary.status != "finished":
        sys.exit(1)


_SINCE = re.compile(r"^(\d+)([hdw])$")


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """'7d', '24h', '2w' or an ISO date/time; None means no limit."""
    if not value:
        return None
    match = _SINCE.match(value)
    if match:
        unit = {"h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
        return now - timedelta(**{unit: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use 7d, 24h, 2w or an ISO date like 2026-11-01"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def change_record(change: Change, url: str) -> dict[str, Any]:
    return {
        "id": change.id,
        "source": change.source_id,
        "document_key": change.doc_key,
        "kind": change.kind,
        "severity": change.severity,
        "detected_at": change.detected_at.isoformat(),
        "title": change.title,
        "summary": change.summary,
        "url": url,
        "matched_terms": change.matched_terms,
        "sections": change.sections,
    }


def _change_url(session: Session, change: Change) -> str:
    snapshot_id = change.new_snapshot_id or change.old_snapshot_id
    snapshot = session.get(Snapshot, snapshot_id) if snapshot_id else None
    return snapshot.url if snapshot else change.doc_key


@cli.command("changes")
@click.option("--since", help="Only changes detected since: 7d, 24h, 2w or an ISO date.")
@click.option("--source", "source_id", help="Only this source id.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON lines: id, source, document_key, kind, severity, detected_at …",
)
@click.pass_obj
def changes_command(
    app: AppContext, since: str | None, source_id: str | None, as_json: bool
) -> None:
    """List detected changes, newest first.

    Example: fdawatch changes --since 7d --json
    """
    cutoff = parse_since(since, app.now())
    query = select(Change).order_by(col(Change.detected_at).desc(), col(Change.id).desc())
    if cutoff:
        query = query.where(Change.detected_at >= cutoff)
    if source_id:
        query = query.where(Change.source_id == source_id)
    with Session(app.engine()) as session:
        changes = session.exec(query).all()
        if as_json:
            for change in changes:
                click.echo(json.dumps(change_record(change, _change_url(session, change))))
            return
    if not changes:
        click.echo("no changes" + (f" since {cutoff:%Y-%m-%d %H:%M} UTC" if cutoff else ""))
        return
    rows = [
        [
            str(c.id),
            f"{c.detected_at:%Y-%m-%d %H:%M}",
            c.severity,
            c.kind,
            c.source_id,
            c.summary[:80],
        ]
        for c in changes
    ]
    click.echo(_table(rows, ["id", "detected (UTC)", "tier", "kind", "source", "summary"]))


def _get_or_fail(session: Session, model: type, key: Any, what: str, hint: str) -> Any:
    row = session.get(model, key)
    if row is None:
        raise NotFound(f"no {what} {key!r}; {hint}")
    return row


def describe_change(session: Session, change: Change) -> str:
    """The text `fdawatch show` prints: what changed, where, how severe and why, and the diff."""
    old = session.get(Snapshot, change.old_snapshot_id) if change.old_snapshot_id else None
    new = session.get(Snapshot, change.new_snapshot_id) if change.new_snapshot_id else None
    lines = [
        f"change {change.id}: {change.kind} — {change.severity} — {change.title}",
        f"source:    {change.source_id}",
        f"url:       {_change_url(session, change)}",
        f"detected:  {change.detected_at:%Y-%m-%d %H:%M:%S} UTC",
        f"previous:  {old.fetched_at:%Y-%m-%d %H:%M:%S} UTC (sha256 {old.sha256[:12]})"
        if old
        else "previous:  (none: first seen)",
        f"current:   {new.fetched_at:%Y-%m-%d %H:%M:%S} UTC (sha256 {new.sha256[:12]})"
        if new
        else "current:   (removed)",
        f"summary:   {change.summary}",
        f"terms:     {', '.join(change.matched_terms) or '(none)'}",
        "why " + change.severity + ":",
        *[f"  - {reason}" for reason in change.severity_reasons],
        "",
        change.diff or "(no textual diff)",
    ]
    return "\n".join(lines)


@cli.command("show")
@click.argument("change_id", type=int)
@click.pass_obj
def show_command(app: AppContext, change_id: int) -> None:
    """Show one change: source, times, severity with its reasons, and the diff.

    Example: fdawatch show 12
    """
    with Session(app.engine()) as session:
        change = _get_or_fail(session, Change, change_id, "change", "`fdawatch changes` lists them")
        click.echo(describe_change(session, change))


@cli.command("history")
@click.argument("source_id")
@click.option(
    "--limit",
    type=int,
    default=20,
    show_default=True,
    help="How many versions, changes and fetches to show.",
)
@click.pass_obj
def history_command(app: AppContext, source_id: str, limit: int) -> None:
    """Show a source's stored versions, changes and recent fetches.

    Example: fdawatch history fda_spravato_rems
    """
    with Session(app.engine()) as session:
        source = _get_or_fail(
            session,
            Source,
            source_id,
            "source in the history",
            "crawl it first or check `fdawatch sources`",
        )
        click.echo(f"{source.id} ({source.kind}) {source.url}")
        click.echo(
            f"health: {source.health}, failures in a row: {source.consecutive_failures}, "
            f"last success: {source.last_success_at or 'never'}"
        )
        snapshots = session.exec(
            select(Snapshot)
            .where(Snapshot.source_id == source_id)
            .order_by(col(Snapshot.fetched_at).desc())
            .limit(limit)
        ).all()
        click.echo(f"\nversions ({len(snapshots)} newest):")
        for snap in snapshots:
            click.echo(
                f"  {snap.id:>5}  {snap.fetched_at:%Y-%m-%d %H:%M}  "
                f"{snap.sha256[:12]}  {snap.title[:70]}"
            )
        changes = session.exec(
            select(Change)
            .where(Change.source_id == source_id)
            .order_by(col(Change.id).desc())
            .limit(limit)
        ).all()
        click.echo(f"\nchanges ({len(changes)} newest):")
        for change in changes:
            click.echo(
                f"  {change.id:>5}  {change.detected_at:%Y-%m-%d %H:%M}  {change.severity}  "
                f"{change.kind:<7}  {change.summary[:70]}"
            )
        fetches = session.exec(
            select(Fetch)
            .where(Fetch.source_id == source_id)
            .order_by(col(Fetch.id).desc())
            .limit(limit)
        ).all()
        click.echo(f"\nfetches ({len(fetches)} newest):")
        for fetch in fetches:
            click.echo(
                f"  {fetch.fetched_at:%Y-%m-%d %H:%M}  {fetch.outcome:<12}  "
                f"{fetch.http_status or '':>3}  {fetch.error or ''}"
            )


def _group_commands(module: str) -> list[click.Command]:
    """The commands one of the other command modules adds (imported here: import cycles)."""
    if module == "monitor.cli_alerts":
        from monitor.cli_alerts import alerts

        return [alerts]
    if module == "monitor.cli_digest":
        from monitor.cli_digest import COMMANDS as digest_commands

        return list(digest_commands)
    if module == "monitor.cli_run":
        from monitor.cli_run import run_command, status_command

        return [run_command, status_command]
    from monitor.cli_labels import label_sections

    return [label_sections]


#: Which module adds which command. Only a hint: a name missing here loads every module.
_LAZY = {
    "alerts": "monitor.cli_alerts",
    "digest": "monitor.cli_digest",
    "serve": "monitor.cli_digest",
    "evidence": "monitor.cli_digest",
    "run": "monitor.cli_run",
    "status": "monitor.cli_run",
    "label-sections": "monitor.cli_labels",
}


class _LazyCommands(dict[str, click.Command]):
    """`cli.commands`, importing the other command modules only when they are asked for.

    `fdawatch changes` need not import the scheduler, the digest site and the label parser: a
    lookup of one name imports only its module; listing or counting the commands imports all.
    """

    def __init__(self, commands: dict[str, click.Command]) -> None:
        super().__init__(commands)
        self.pending = set(_LAZY.values())

    def _load(self, name: str | None = None) -> None:
        if name is not None and dict.__contains__(self, name):
            return
        wanted = {_LAZY[name]} if name in _LAZY else set(self.pending)
        for module in sorted(wanted & self.pending):
            self.pending.discard(module)
            for command in _group_commands(module):
                cli.add_command(command)

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        self._load(name)
        return dict.get(self, name, default)

    def __getitem__(self, name: str) -> click.Command:
        self._load(name)
        return dict.__getitem__(self, name)

    def __contains__(self, name: object) -> bool:
        self._load(name if isinstance(name, str) else None)
        return dict.__contains__(self, name)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._load()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._load()
        return dict.keys(self)

    def values(self) -> Any:
        self._load()
        return dict.values(self)

    def items(self) -> Any:
        self._load()
        return dict.items(self)


cli.commands = _LazyCommands(cli.commands)


def main() -> None:
    global ONE_SHOT
    ONE_SHOT = True
    cli(prog_name="fdawatch")
