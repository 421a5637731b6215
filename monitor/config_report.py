"""`[report]` in fdawatch.toml: when the daily watch report goes out, and to whom.

    [report]
    daily_at = "07:00"   # UTC: fdawatch.toml has no display time zone yet
    to = ["compliance@clinic.example"]

Read by `monitor.config.load_settings`; the report itself is `monitor.delivery.daily_report`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError

KEYS = {"daily_at", "to"}
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class ReportSettings:
    """The daily watch report: sent once a day, at `hour:minute` UTC or soon after, to `to`."""

    to: tuple[str, ...]
    hour: int = 7
    minute: int = 0

    @property
    def daily_at(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}"


def report_settings(
    table: dict[str, Any], path: Path, email: re.Pattern[str]
) -> ReportSettings | None:
    """The `[report]` table checked (`email`: what one address looks like); None when absent."""
    if not table:
        return None
    where = f"{path}: [report]"
    to = table.get("to")
    if not isinstance(to, list) or not to or not all(isinstance(a, str) for a in to):
        raise ConfigError(
            f"{where} 'to' must be a list of addresses, like to = [\"ops@example.org\"]"
        )
    for address in to:
        if not email.fullmatch(address):
            raise ConfigError(
                f"{where} 'to' has {address!r}: write one address like ops@example.org"
            )
    daily_at = table.get("daily_at", "07:00")
    match = _TIME.fullmatch(daily_at) if isinstance(daily_at, str) else None
    if match is None:
        raise ConfigError(
            f"{where} 'daily_at' must be a 24-hour UTC time like \"07:00\", not {daily_at!r}"
        )
    unique = tuple(dict.fromkeys(to))
    return ReportSettings(to=unique, hour=int(match.group(1)), minute=int(match.group(2)))
