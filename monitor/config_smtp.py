"""The SMTP server, from the environment mapping `monitor.config` hands over.

Secrets (the password) come from the environment only and are never printed: the dataclass's
repr hides them, and errors name the variable and the port, never the URL's credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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




def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no")




def smtp_from_env(env: Mapping[str, str]) -> SmtpSettings | None:
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
    ssl = _env_bool(env, "FDAWATCH_SMTP_SSL", False)
    raw_port = str(env.get("FDAWATCH_SMTP_PORT") or (465 if ssl else 25))
    port = int(raw_port) if raw_port.isdigit() else -1
    if not 1 <= port <= MAX_PORT:
        raise ConfigError(f"FDAWATCH_SMTP_PORT must be a port from 1 to {MAX_PORT}, not {raw_port}")
    return SmtpSettings(
        host=host,
        port=port,
        user=env.get("FDAWATCH_SMTP_USER") or None,
        password=env.get("FDAWATCH_SMTP_PASSWORD") or None,
        starttls=_env_bool(env, "FDAWATCH_SMTP_STARTTLS", False),
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
