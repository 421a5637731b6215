"""The reader's clock: times shown in the `[display] timezone` of fdawatch.toml (an IANA name).

Stored times stay UTC; only what people read is converted. `zone` checks the name once, when the
settings are loaded, so a typo is a one-line error instead of a crash while an email renders.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.errors import ConfigError

DEFAULT_ZONE = "UTC"


def zone(name: object, where: str) -> str:
    """`name` when it is a time zone this machine knows (`America/New_York`), else an error."""
    text = str(name).strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where} = {text!r} is not a time zone name; write an IANA name such as "
            "'America/New_York', 'Europe/Berlin' or 'UTC'"
        ) from None
    return text


def zone_info(name: str) -> tzinfo:
    return UTC if name in ("", DEFAULT_ZONE) else ZoneInfo(name)


def format_time(value: datetime | None, name: str = DEFAULT_ZONE) -> str:
    """`2026-12-05 21:40 EST`: a timestamp as people read it; naive values are UTC."""
    if value is None:
        return "unknown"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone_info(name))
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or name)
