"""The `[review]` and `[escalation]` tables of fdawatch.toml, and what an email address is.

Parsing only: `monitor.config` reads the file and the environment (FDAWATCH_SECRET_KEY) and
hands the tables over, so this module never reads the environment itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from monitor.errors import ConfigError

#: One plain address: a local part and a domain, nothing a mail header could be broken with.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
EMAIL_PATTERN = re.compile(rf"[^@\s<>,;:\"()\[\]\\]+@{_LABEL}(?:\.{_LABEL})*")
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
ESCALATION_SEVERITIES = ("T1", "T2", "T3", "T4")
REVIEW_KEYS = {"url", "link_days"}
ESCALATION_KEYS = {"after", "to", "severities"}
#: Shorter keys are guessable; `python -c "import secrets; print(secrets.token_hex(32))"`.
MIN_SECRET_LENGTH = 32


def is_email(value: object) -> bool:
    """One plain address like ops@example.org (recipients, reviewers, escalation)."""
    return isinstance(value, str) and EMAIL_PATTERN.fullmatch(value) is not None


@dataclass(frozen=True)
class ReviewSettings:
    """Signed review links in alert emails: on when the secret key and the app's URL are set."""

    url: str = ""  # where recipients reach `fdawatch serve` (behind the reverse proxy)
    secret_key: str | None = field(default=None, repr=False)
    link_days: int = 30  # a link expires this long after its email was built

    @property
    def links(self) -> bool:
        return bool(self.url and self.secret_key)


@dataclass(frozen=True)
class EscalationSettings:
    """A change still open `after` its detection is escalated, once, to `to`."""

    after: timedelta = timedelta(hours=24)
    to: tuple[str, ...] = ()
    severities: tuple[str, ...] = ("T1", "T2")

    @property
    def enabled(self) -> bool:
        return bool(self.to)


def parse_duration(value: Any, where: str) -> timedelta:
    """'30m', '24h', '2d', '1w' → a timedelta; anything else is an error naming `where`."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(f"{where} must be a duration like '24h', '2d' or '30m', not {value!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def review_settings(table: dict[str, Any], secret_key: str | None, where: str) -> ReviewSettings:
    """`[review]` (already checked for unknown keys) plus FDAWATCH_SECRET_KEY."""
    url = table.get("url", "")
    parts = urlsplit(url) if isinstance(url, str) else None
    if url and (parts is None or parts.scheme not in ("http", "https") or not parts.netloc):
        raise ConfigError(
            f"{where} url must be where recipients reach `fdawatch serve`, like "
            f"'https://fdawatch.clinic.example', not {url!r}"
        )
    days = table.get("link_days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
        raise ConfigError(f"{where} link_days must be a number of days from 1 to 366, not {days!r}")
    if secret_key is not None and len(secret_key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"FDAWATCH_SECRET_KEY has {len(secret_key)} characters: use at least "
            f"{MIN_SECRET_LENGTH} random ones (python -c \"import secrets; "
            "print(secrets.token_hex(32))\")"
        )
    return ReviewSettings(url=str(url).rstrip("/"), secret_key=secret_key, link_days=days)


def escalation_settings(table: dict[str, Any], where: str) -> EscalationSettings:
    """`[escalation]` (already checked for unknown keys); no `to`: escalation is off."""
    after = parse_duration(table.get("after", "24h"), f"{where} after")
    to = table.get("to", [])
    if not isinstance(to, list) or not all(is_email(address) for address in to):
        raise ConfigError(f"{where} to must be a list of addresses like ['qa@clinic.example']")
    severities = table.get("severities", ["T1", "T2"])
    if (
        not isinstance(severities, list)
        or not severities
        or not all(s in ESCALATION_SEVERITIES for s in severities)
    ):
        raise ConfigError(
            f"{where} severities must be a list of T1, T2, T3, T4, not {severities!r}"
        )
    return EscalationSettings(after=after, to=tuple(to), severities=tuple(sorted(set(severities))))
