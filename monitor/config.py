"""Settings from the environment and the deployment file `fdawatch.toml`.

This is the only module that reads the environment. Everything else receives a
`Settings` value. Secrets (SMTP password, API keys) come from the environment only, never from
files, and are never printed: `Settings.__repr__` hides them. The SMTP variables are parsed by
`monitor.config_smtp`, the `[review]` and `[escalation]` tables by `monitor.config_review`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.config_report import KEYS as REPORT_KEYS
from monitor.config_report import ReportSettings, report_settings
from monitor.config_review import (
    EMAIL_PATTERN,
    ESCALATION_KEYS,
    REVIEW_KEYS,
    EscalationSettings,
    ReviewSettings,
    escalation_settings,
    is_email,
    review_settings,
)
from monitor.config_smtp import SmtpSettings, smtp_from_env
from monitor.display import DEFAULT_ZONE, zone
from monitor.errors import ConfigError
from monitor.tomlfile import read_toml
from monitor.tomlfile import unreadable_file as unreadable_file  # sources.py words errors alike

DEFAULT_DATABASE_URL = "sqlite:///./var/fdawatch.db"
DEFAULT_USER_AGENT = (
    "fdawatch/0.1 (+https://github.com/fdawatch/fdawatch; regulatory change monitor; "
    "polite: 1 request/s per host)"
)
SEVERITIES = ("T1", "T2", "T3", "T4", "T5")
DIGEST_CHOICES = ("none", "daily", "weekly")


@dataclass(frozen=True)
class Recipient:
    """Who gets alerts: a recipient with only an email follows every source at T1–T4."""

    email: str
    name: str = ""
    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_severity: str = "T4"
    digest: str = "none"

    def follows(self, source_id: str, source_tags: tuple[str, ...] = ()) -> bool:
        if not self.sources and not self.tags:
            return True
        return source_id in self.sources or bool(set(self.tags) & set(source_tags))

    def wants(self, severity: str) -> bool:
        """T5 never alerts; otherwise the change must be at least as severe as min_severity."""
        return severity != "T5" and severity <= self.min_severity


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    sources_path: Path = Path("sources.toml")
    config_path: Path = Path("fdawatch.toml")
    var_dir: Path = Path("var")
    outbox_dir: Path = Path("var/outbox")
    crawl_delay: float = 1.0
    concurrency_per_host: int = 1
    user_agent: str = DEFAULT_USER_AGENT
    contact: str = ""  # an address FDA's web team can reach, added to the User-Agent
    obey_robots: bool = True
    crawl_timeout: float = 30.0
    retry_times: int = 2
    second_look_delay: float = 20.0  # seconds before a shrunken document is fetched again
    blocked_backoff: float = 1800.0  # after a CDN refusal, wait this long, doubling each time…
    blocked_backoff_max: float = 86400.0  # …up to this
    smtp: SmtpSettings | None = None
    mail_from: str = "fdawatch <fdawatch@localhost>"
    recipients: tuple[Recipient, ...] = ()
    storm_cap: int = 20
    failure_threshold: int = 3
    site_url: str = ""  # where the digest site is published, for links in emails
    timezone: str = DEFAULT_ZONE  # [display] timezone: the IANA zone times are shown in
    openfda_api_key: str | None = field(default=None, repr=False)
    scheduler_jitter: float = 60.0  # at most this many seconds of stable offset on fire times
    scheduler_misfire_grace: float = 3600.0  # a job missed by less than this still runs
    scheduler_shared: bool = False  # several daemons share one database's sources (claims)
    #: Signed review links (FDAWATCH_SECRET_KEY) and escalation of changes nobody reviewed.
    review: ReviewSettings = field(default_factory=ReviewSettings)
    escalation: EscalationSettings = field(default_factory=EscalationSettings)
    report: ReportSettings | None = None  # [report]: the daily watch report, when configured
    scheduler_max_batch: int = 50  # at most this many sources in one crawl process


def user_agent(base: str, contact: str) -> str:
    """The User-Agent: honest about what we are, with a contact when the operator gives one.

    fdawatch never rotates agents or hides behind proxies: if FDA's web team wants us slower
    or gone, this is how they find us.
    """
    contact = contact.strip()
    if not contact or contact in base:
        return base
    if base.endswith(")"):
        return f"{base[:-1]}; contact: {contact})"
    return f"{base} (contact: {contact})"


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    return value


def _number(value: Any, where: str, kind: type[int] | type[float], minimum: float = 0) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a number, not {value!r}")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{where} must be at least {minimum}, not {value!r}")
    return number


def _read_toml(path: Path) -> dict[str, Any]:
    return read_toml(path, "set FDAWATCH_CONFIG to the fdawatch.toml file")


#: The tables of fdawatch.toml and the keys each may hold.
_SECTIONS = {
    "crawl": {
        "delay",
        "concurrency_per_host",
        "user_agent",
        "contact",
        "obey_robots",
        "timeout",
        "retries",
        "second_look_delay",
        "blocked_backoff",
        "blocked_backoff_max",
    },
    "mail": {"from", "outbox_dir", "storm_cap"},
    "health": {"failure_threshold"},
    "site": {"url"},
    "display": {"timezone"},
    "scheduler": {"jitter", "misfire_grace", "shared", "max_batch"},
    "review": REVIEW_KEYS,
    "escalation": ESCALATION_KEYS,
    "report": REPORT_KEYS,
}
_TOP_KEYS = {*_SECTIONS, "recipient"}
_RECIPIENT_KEYS = {"email", "name", "sources", "tags", "min_severity", "digest"}


def _recipient(raw: Any, index: int, path: Path) -> Recipient:
    where = f"{path}: [[recipient]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(raw) - _RECIPIENT_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {sorted(unknown)[0]!r} (known: {sorted(_RECIPIENT_KEYS)})"
        )
    email = raw.get("email")
    if not isinstance(email, str) or not is_email(email):
        raise ConfigError(
            f"{where}: 'email' must be one address like ops@example.org, not {email!r}"
        )
    min_severity = raw.get("min_severity", "T4")
    if min_severity not in SEVERITIES[:4]:
        raise ConfigError(
            f"{where}: 'min_severity' must be one of T1, T2, T3, T4, not {min_severity!r}"
        )
    digest = raw.get("digest", "none")
    if digest not in DIGEST_CHOICES:
        raise ConfigError(f"{where}: 'digest' must be one of none, daily, weekly, not {digest!r}")
    lists = {}
    for key in ("sources", "tags"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key!r} must be a list of strings")
        lists[key] = tuple(value)
    return Recipient(
        email=email,
        name=str(raw.get("name", "")),
        sources=lists["sources"],
        tags=lists["tags"],
        min_severity=min_severity,
        digest=digest,
    )


def _section(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    """One table of the deployment file, its keys checked against the known ones."""
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    unknown = set(table) - _SECTIONS[name]
    if unknown:
        raise ConfigError(
            f"{path}: [{name}] unknown key {sorted(unknown)[0]!r} "
            f"(known: {', '.join(sorted(_SECTIONS[name]))})"
        )
    return table


def load_settings(
    env: Mapping[str, str] | None = None, config_path: Path | None = None
) -> Settings:
    """Settings from `env` (default: the process environment) and the deployment file.

    `config_path` (the `--config` option) names the deployment file; it wins over
    FDAWATCH_CONFIG and, unlike the default ./fdawatch.toml, must exist.
    """
    env = os.environ if env is None else env
    var_dir = Path(env.get("FDAWATCH_VAR_DIR") or "var")
    data: dict[str, Any] = {}
    if config_path is not None:
        if not config_path.exists():
            raise ConfigError(
                f"--config {config_path}: no such file; give the path of your fdawatch.toml"
            )
        data = _read_toml(config_path)
    else:
        config_path = Path(env.get("FDAWATCH_CONFIG") or "fdawatch.toml")
        if config_path.exists():
            data = _read_toml(config_path)
        elif env.get("FDAWATCH_CONFIG"):
            raise ConfigError(
                f"FDAWATCH_CONFIG={config_path} does not exist; create it or unset it"
            )
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"{config_path}: unknown section {sorted(unknown)[0]!r} (known: {sorted(_TOP_KEYS)})"
        )
    crawl = _section(data, "crawl", config_path)
    delay = env.get("FDAWATCH_CRAWL_DELAY", crawl.get("delay", 1.0))
    where_delay = (
        "FDAWATCH_CRAWL_DELAY" if "FDAWATCH_CRAWL_DELAY" in env else f"{config_path}: [crawl] delay"
    )
    concurrency = env.get(
        "FDAWATCH_CRAWL_CONCURRENCY_PER_HOST", crawl.get("concurrency_per_host", 1)
    )
    where_conc = (
        "FDAWATCH_CRAWL_CONCURRENCY_PER_HOST"
        if "FDAWATCH_CRAWL_CONCURRENCY_PER_HOST" in env
        else f"{config_path}: [crawl] concurrency_per_host"
    )
    mail = _section(data, "mail", config_path)
    health = _section(data, "health", config_path)
    scheduler = _section(data, "scheduler", config_path)
    recipients = data.get("recipient", [])
    if not isinstance(recipients, list):
        raise ConfigError(
            f"{config_path}: recipients are written [[recipient]] (an array of tables)"
        )
    outbox = env.get("FDAWATCH_OUTBOX_DIR") or mail.get("outbox_dir") or str(var_dir / "outbox")
    return Settings(
        database_url=env.get("FDAWATCH_DATABASE_URL") or f"sqlite:///{var_dir / 'fdawatch.db'}",
        sources_path=Path(env.get("FDAWATCH_SOURCES") or "sources.toml"),
        config_path=config_path,
        var_dir=var_dir,
        outbox_dir=Path(outbox),
        crawl_delay=_number(delay, where_delay, float),
        concurrency_per_host=_number(concurrency, where_conc, int, minimum=1),
        user_agent=user_agent(
            str(crawl.get("user_agent", DEFAULT_USER_AGENT)), str(crawl.get("contact", ""))
        ),
        contact=str(crawl.get("contact", "")),
        obey_robots=bool(crawl.get("obey_robots", True)),
        crawl_timeout=_number(
            crawl.get("timeout", 30.0), f"{config_path}: [crawl] timeout", float, 1
        ),
        retry_times=_number(crawl.get("retries", 2), f"{config_path}: [crawl] retries", int),
        second_look_delay=_number(
            crawl.get("second_look_delay", 20.0), f"{config_path}: [crawl] second_look_delay", float
        ),
        blocked_backoff=_number(
            crawl.get("blocked_backoff", 1800.0), f"{config_path}: [crawl] blocked_backoff", float
        ),
        blocked_backoff_max=_number(
            crawl.get("blocked_backoff_max", 86400.0),
            f"{config_path}: [crawl] blocked_backoff_max",
            float,
        ),
        smtp=smtp_from_env(env),
        mail_from=env.get("FDAWATCH_MAIL_FROM") or str(mail.get("from", Settings.mail_from)),
        recipients=tuple(_recipient(r, i, config_path) for i, r in enumerate(recipients)),
        storm_cap=_number(mail.get("storm_cap", 20), f"{config_path}: [mail] storm_cap", int, 1),
        failure_threshold=_number(
            health.get("failure_threshold", 3), f"{config_path}: [health] failure_threshold", int, 1
        ),
        site_url=str(_section(data, "site", config_path).get("url", "")),
        timezone=zone(
            _section(data, "display", config_path).get("timezone", DEFAULT_ZONE),
            f"{config_path}: [display] timezone",
        ),
        openfda_api_key=env.get("FDAWATCH_OPENFDA_API_KEY") or None,
        scheduler_shared=_boolean(
            scheduler.get("shared", False), f"{config_path}: [scheduler] shared"
        ),
        scheduler_jitter=_number(
            scheduler.get("jitter", 60.0), f"{config_path}: [scheduler] jitter", float
        ),
        scheduler_misfire_grace=_number(
            scheduler.get("misfire_grace", 3600.0),
            f"{config_path}: [scheduler] misfire_grace",
            float,
            1,
        ),
        review=review_settings(
            _section(data, "review", config_path),
            env.get("FDAWATCH_SECRET_KEY") or None,
            f"{config_path}: [review]",
        ),
        escalation=escalation_settings(
            _section(data, "escalation", config_path), f"{config_path}: [escalation]"
        ),
        report=report_settings(_section(data, "report", config_path), config_path, EMAIL_PATTERN),
        scheduler_max_batch=_number(
            scheduler.get("max_batch", 50), f"{config_path}: [scheduler] max_batch", int, 1
        ),
    )


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment for a crawl child process: ours, plus the settings this process resolved.

    The child re-reads its settings with `load_settings()`, so values that came from command-line
    options (`--sources`, `--database`) must travel as variables.
    """
    return {
        **os.environ,
        "FDAWATCH_DATABASE_URL": settings.database_url,
        "FDAWATCH_SOURCES": str(settings.sources_path),
        "FDAWATCH_CONFIG": str(settings.config_path) if settings.config_path.exists() else "",
        "FDAWATCH_VAR_DIR": str(settings.var_dir),
        "FDAWATCH_OUTBOX_DIR": str(settings.outbox_dir),
        "FDAWATCH_CRAWL_DELAY": str(settings.crawl_delay),
        "FDAWATCH_CRAWL_CONCURRENCY_PER_HOST": str(settings.concurrency_per_host),
        **(
            {"FDAWATCH_OPENFDA_API_KEY": settings.openfda_api_key}
            if settings.openfda_api_key
            else {}
        ),
    }
