"""Commands run over a given history: a fixed `ctx.obj` instead of files and the environment.

`status` and `run` read the history, the sources and `now` from their context object; the
scheduler tests hand them a prepared engine and a fixed clock through `FixedApp`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner
from sqlalchemy import Engine

from monitor.cli.app import FdawatchGroup
from monitor.config import Settings
from monitor.sources import SourceConfig


class FixedApp:
    """What the commands need from `ctx.obj`, over a given engine, sources and time."""

    def __init__(
        self,
        engine: Engine,
        sources: dict[str, SourceConfig],
        tmp: Path,
        settings: Settings,
        now: datetime,
    ) -> None:
        self.settings = replace(settings, var_dir=tmp, outbox_dir=tmp / "outbox")
        self._engine = engine
        self._sources = sources
        self._now = now

    def engine(self) -> Engine:
        return self._engine

    def history(self) -> Engine:
        return self._engine

    def sources(self) -> dict[str, SourceConfig]:
        return self._sources

    def now(self) -> datetime:
        return self._now


def invoke(app: FixedApp, commands: list[click.Command], *args: str) -> Any:
    """Run `args` through a group holding `commands`, with `app` as its context object."""

    @click.group(cls=FdawatchGroup)
    @click.pass_context
    def group(ctx: click.Context) -> None:
        ctx.obj = app

    for command in commands:
        group.add_command(command)
    return CliRunner().invoke(group, list(args), catch_exceptions=False)
