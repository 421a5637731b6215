"""What every `fdawatch` command shares: the application context, errors, tables, `--since`.

Commands are thin: each reads its options, calls one function of the monitor's Python API and
prints. Only `FdawatchError` (the user's input, in one line, exit 2) and a database that refuses
writes are caught here; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import click
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import DatabaseError as DriverError

from db.engine import display_url, open_database
from monitor.config import Settings, load_settings
from monitor.db_errors import open_failure_message, write_failure_message
from monitor.errors import DatabaseError, FdawatchError, SourcesError
from monitor.sources import SourceConfig, load_sources

EXIT_USAGE = 2


class App(Protocol):
    """What a command needs from the application context (tests pass a small stand-in)."""

    settings: Settings

    def engine(self) -> Engine: ...

    def sources(self) -> dict[str, SourceConfig]: ...

    def now(self) -> datetime: ...


class AppContext:
    """What every command needs, loaded lazily so `--help` works without any configuration.

    `one_shot`: this process is the `fdawatch` command itself and runs one command, so `crawl`
    may run Scrapy's reactor here instead of in a child (a reactor cannot restart).
    """

    def __init__(
        self, sources_path: str | None, database_url: str | None, *, one_shot: bool = False
    ) -> None:
        self._sources_path = sources_path
        self._database_url = database_url
        self._engine: Engine | None = None
        self._sources: dict[str, SourceConfig] | None = None
        self.one_shot = one_shot

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
    """The main group: commands load when named (click's lazy-group recipe), errors in one line.

    `lazy_subcommands` maps a command name to `"module:attribute"`, so `fdawatch changes` does
    not import the scheduler, the digest site or Scrapy.
    """

    def __init__(
        self, *args: Any, lazy_subcommands: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands or {}

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


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Columns padded to their widest cell, headers first."""
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


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


def sources_for_rendering(app: App) -> dict[str, SourceConfig]:
    """sources.toml, for titles and URLs; a broken file must not hold queued alerts back.

    The history's Source rows carry the same titles and URLs, so rendering falls back to them.
    """
    try:
        return app.sources()
    except SourcesError as error:
        click.echo(f"fdawatch: warning: {error}; using the titles stored in the history", err=True)
        return {}
