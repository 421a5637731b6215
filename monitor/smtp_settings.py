"""The SMTP server's settings, from the environment that `monitor.config.load_settings` reads.

Only the environment holds them (the password never sits in a file); `smtp_from_env` is handed
that mapping by `load_settings`, the one reader of the process environment. A bad value is one
line naming the variable, never echoing the password.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from monitor.errors import ConfigError

MAX_PORT = 65535


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False
    timeout: float = 30.0


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no environment variable; empty or unset is `default`."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no")


def setting_number(
    value: Any, where: str, kind: type[int] | type[float], minimum: float = 0
) -> Any:
    """A setting's value as a number of at least `minimum`; the error names `where` it was set."""
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a number, not {value!r}")
    try:
        parsed = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, not {value!r}") from None
    if parsed < minimum:
        raise ConfigError(f"{where} must be at least {minimum}, not {value!r}")
    return parsed


def smtp_from_env(env: Mapping[str, str]) -> SmtpSettings | None:
    """FDAWATCH_SMTP_URL, else FDAWATCH_SMTP_HOST and its companions; None when neither is set."""
    url = env.get("FDAWATCH_SMTP_URL")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
            raise ConfigError(
                "FDAWATCH_SMTP_URL must look like smtp://user:password@host:25, "
                "smtps://… (TLS) or smtp+starttls://…"
            )
        ssl = parts.scheme == "smtps"
        return SmtpSettings(
            host=parts.hostname,
            port=_smtp_url_port(parts) or (465 if ssl else 25),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=parts.scheme == "smtp+starttls",
            ssl=ssl,
        )
    host = env.get("FDAWATCH_SMTP_HOST")
    if not host:
        return None
    ssl = env_bool(env, "FDAWATCH_SMTP_SSL", False)
    port = setting_number(
        env.get("FDAWATCH_SMTP_PORT", 465 if ssl else 25), "FDAWATCH_SMTP_PORT", int, 1
    )
    if port > MAX_PORT:
        raise ConfigError(f"FDAWATCH_SMTP_PORT must be a port from 1 to {MAX_PORT}, not {port}")
    return SmtpSettings(
        host=host,
        port=port,
        user=env.get("FDAWATCH_SMTP_USER") or None,
        password=env.get("FDAWATCH_SMTP_PASSWORD") or None,
        starttls=env_bool(env, "FDAWATCH_SMTP_STARTTLS", False),
        ssl=ssl,
    )


def _smtp_url_port(parts: SplitResult) -> int | None:
    """The port of FDAWATCH_SMTP_URL; a bad one is an error naming it, never the password."""
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= MAX_PORT:
        written = parts.netloc.rpartition(":")[2]
        raise ConfigError(
            f"FDAWATCH_SMTP_URL has the port {written!r}: write a number from 1 to {MAX_PORT}, "
            "as in smtp://user:password@host:587"
        )
    return port
