"""What every `fdawatch` command shares: the application context, errors, tables, `--since`.

Commands are thin: each reads its options, calls one function of the monitor's Python API and
prints. Only `FdawatchError` (the user's input, in one line, exit 2) and a database that refuses
writes are caught here; anything else is a bug and keeps its traceback.

Commands that only read open the history with `App.history()`, which never creates one: a
wrong path or URL is an error naming it, not an empty history answering "no changes". Nothing
here imports SQLAlchemy: `fdawatch --help` and `fdawatch sources` must start in well under a
second, and each command imports what it needs when it runs.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import click

from monitor.config import Settings, load_settings
from monitor.errors import DatabaseError, FdawatchError, SourcesError
from monitor.sources import SourceConfig, load_sources

if TYPE_CHECKING:
    from sqlalchemy import Engine

EXIT_USAGE = 2


class App(Protocol):
    """What a command needs from the application context (tests pass a small stand-in)."""

    settings: Settings

    def engine(self) -> Engine:
        """The history, created (and migrated) when missing: for commands that record."""
        ...

    def history(self) -> Engine:
        """The existing history; `DatabaseError` naming it when there is none: for readers."""
        ...

    def sources(self) -> dict[str, SourceConfig]: ...

    def now(self) -> datetime: ...


class AppContext:
    """What every command needs, loaded lazily so `--help` works without any configuration.

    `one_shot`: this process is the `fdawatch` command itself and runs one command, so `crawl`
    may run Scrapy's reactor here instead of in a child (a reactor cannot restart).
    """

    def __init__(
        self,
        sources_path: str | None,
        database_url: str | None,
        config_path: str | None = None,
        *,
        one_shot: bool = False,
    ) -> None:
        self._sources_path = sources_path
        self._database_url = database_url
        self._config_path = config_path
        self._engine: Engine | None = None
        self._sources: dict[str, SourceConfig] | None = None
        self.one_shot = one_shot

    @cached_property
    def settings(self) -> Settings:
        settings = load_settings(config_path=Path(self._config_path) if self._config_path else None)
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
        return self._open(create=True)

    def history(self) -> Engine:
        return self._open(create=False)

    def _open(self, *, create: bool) -> Engine:
        if self._engine is not None:
            return self._engine
        from sqlalchemy.exc import ArgumentError
        from sqlalchemy.exc import DatabaseError as DriverError

        from db.engine import NoDatabase, display_url, open_database

        url = self.settings.database_url
        try:
            self._engine = open_database(url, create=create)
        except NoDatabase:
            raise DatabaseError(no_history_message(url)) from None
        except ModuleNotFoundError as error:
            raise DatabaseError(
                f"cannot open the database {display_url(url)!r}: its driver {error.name!r} "
                "is not installed (for PostgreSQL: pip install 'fdawatch[postgres]')"
            ) from None
        except (DriverError, ArgumentError, OSError, ValueError) as error:
            from monitor.db_errors import open_failure_message

            raise DatabaseError(open_failure_message(error, url)) from None
        return self._engine

    def now(self) -> datetime:
        return datetime.now(UTC)


class FdawatchGroup(click.Group):
    """The main group: commands load when named (click's lazy-group recipe), errors in one line.

    `lazy_subcommands` maps a command name to `"module:attribute"`, so `fdawatch changes` does
    not import the scheduler, the digest site or Scrapy; `summaries` gives each one's line in
    `--help`, which thus imports none of them.
    """

    def __init__(
        self,
        *args: Any,
        lazy_subcommands: dict[str, str] | None = None,
        summaries: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands or {}
        self.summaries = summaries or {}

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from `summaries`: `--help` imports no command module."""
        rows = [(name, self.summaries[name]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            module, _, attribute = self.lazy_subcommands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command), self.lazy_subcommands[cmd_name]
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FdawatchError as error:
            message = error.args[0] if error.args else str(error)
            click.echo(f"fdawatch: error: {' '.join(str(message).split())}", err=True)
            ctx.exit(EXIT_USAGE)
        except Exception as error:
            driver_errors = sys.modules.get("sqlalchemy.exc")  # not loaded: not a database error
            if driver_errors is None or not isinstance(error, driver_errors.DatabaseError):
                raise
            # read-only, full, busy or damaged after opening
            from monitor.db_errors import write_failure_message

            url = ctx.obj.settings.database_url if isinstance(ctx.obj, AppContext) else "?"
            message = write_failure_message(
                error,
                url,
                "check that the file and its folder are writable and the disk is not full "
                "(history unchanged)",
            )
            click.echo(f"fdawatch: error: {message}", err=True)
            ctx.exit(EXIT_USAGE)


def no_history_message(url: str) -> str:
    """A reading command pointed at a database that is not there (yet)."""
    from db.engine import display_url, sqlite_file

    file = sqlite_file(url)
    if file is not None and not file.is_file():
        where = f"no database at {file}"
    else:
        where = f"the database {display_url(url)!r} holds no fdawatch history"
    return (
        f"{where}: `fdawatch crawl` creates it; to read another one, pass --database URL "
        "(or set FDAWATCH_DATABASE_URL)"
    )


def warn_about_sources(app: App, stored: Iterable[str], sources: dict[str, SourceConfig]) -> None:
    """Say so when the history and sources.toml disagree: a wrong --sources or --database.

    Sources the history has and the file lacks are a warning (their health and changes are not
    listed); sources never crawled are fine, and listed as "new".
    """
    missing = sorted(set(stored) - set(sources))
    if not missing:
        return
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    click.echo(
        f"fdawatch: warning: the database holds {len(missing)} source"
        f"{'s' if len(missing) != 1 else ''} that {app.settings.sources_path} lacks ({shown}); "
        "pass --sources with the file that crawled them",
        err=True,
    )


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Columns padded to their widest cell, headers first."""
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def clip(text: str, width: int) -> str:
    """`text` on one line, at most `width` characters, cut at a word boundary and marked "…"."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1]
    if " " in cut and not flat[width - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


def when(value: datetime | None) -> str:
    """The CLI's one time format: UTC to the minute (column headers say UTC), or "never"."""
    if value is None:
        return "never"
    return f"{value.astimezone(UTC) if value.tzinfo else value:%Y-%m-%d %H:%M}"


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


def sources_for_rendering(app: App) -> Mapping[str, SourceConfig]:
    """sources.toml, for titles and URLs; a broken file must not hold queued alerts back.

    The history's Source rows carry the same titles and URLs, so rendering falls back to them.
    The file is read on first use: a send with nothing due never needs it (~40 ms for 1,000
    sources).
    """
    return _SourcesWhenRead(app)


class _SourcesWhenRead(Mapping[str, SourceConfig]):
    """`app.sources()` read at the first lookup; a broken file warns once and reads as empty."""

    def __init__(self, app: App) -> None:
        self._app = app

    @cached_property
    def _sources(self) -> dict[str, SourceConfig]:
        try:
            return self._app.sources()
        except SourcesError as error:
            click.echo(
                f"fdawatch: warning: {error}; using the titles stored in the history", err=True
            )
            return {}

    def __getitem__(self, key: str) -> SourceConfig:
        return self._sources[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)
