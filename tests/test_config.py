"""Settings: environment and fdawatch.toml; each bad value is named, secrets never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Recipient, load_settings
from monitor.errors import ConfigError


def test_defaults_without_any_configuration(tmp_path: Path) -> None:
    settings = load_settings({"FDAWATCH_CONFIG": "", "FDAWATCH_VAR_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'fdawatch.db'}"
    assert settings.smtp is None  # alerts go to .eml files
    assert settings.crawl_delay == 1.0 and settings.concurrency_per_host == 1


def test_deployment_file_and_environment_overrides(tmp_path: Path) -> None:
    config = tmp_path / "fdawatch.toml"
    config.write_text(
        "[crawl]\ndelay = 2.5\nconcurrency_per_host = 2\n"
        '[[recipient]]\nemail = "officer@clinic.example"\n'
        'sources = ["fda_spravato_rems"]\nmin_severity = "T2"\n',
        encoding="utf-8",
    )
    env = {"FDAWATCH_CONFIG": str(config), "FDAWATCH_CRAWL_CONCURRENCY_PER_HOST": "16"}
    settings = load_settings(env)
    assert settings.crawl_delay == 2.5
    assert settings.concurrency_per_host == 16
    assert settings.recipients == (
        Recipient(
            email="officer@clinic.example", sources=("fda_spravato_rems",), min_severity="T2"
        ),
    )


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[crawl]\ndelay = 'fast'\n", {}, "[crawl] delay must be a number"),
        ("[crawl]\nspeed = 1\n", {}, "[crawl] unknown key 'speed'"),
        ("[mailer]\n", {}, "unknown section 'mailer'"),
        ('[mail]\nsender = "x"\n', {}, "[mail] unknown key 'sender'"),
        ('[[recipient]]\nemail = "nobody"\n', {}, "'email' must be one address"),
        (
            '[[recipient]]\nemail = "a@b.org"\nmin_severity = "T5"\n',
            {},
            "'min_severity' must be one of",
        ),
        ('[[recipient]]\nemail = "a@b.org"\ndigest = "hourly"\n', {}, "'digest' must be one of"),
        ("", {"FDAWATCH_CRAWL_DELAY": "-1"}, "FDAWATCH_CRAWL_DELAY must be at least 0"),
        (
            "",
            {"FDAWATCH_SMTP_HOST": "mail", "FDAWATCH_SMTP_STARTTLS": "maybe"},
            "FDAWATCH_SMTP_STARTTLS='maybe'",
        ),
        ("", {"FDAWATCH_SMTP_URL": "http://mail"}, "FDAWATCH_SMTP_URL must look like"),
        ("crawl = [", {}, "not valid TOML"),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "fdawatch.toml"
    config.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings({"FDAWATCH_CONFIG": str(config), **env})
    assert message in str(raised.value)


def test_smtp_url_is_parsed_and_the_password_never_shows(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "FDAWATCH_CONFIG": "",
            "FDAWATCH_SMTP_URL": "smtp+starttls://alerts%40clinic:s3cr3t-pw@mail.example:587",
        }
    )
    assert settings.smtp is not None
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.user) == (
        "mail.example",
        587,
        "alerts@clinic",
    )
    assert settings.smtp.starttls and settings.smtp.password == "s3cr3t-pw"
    assert "s3cr3t-pw" not in repr(settings)


@pytest.mark.parametrize(
    ("written", "zone"),
    [
        (None, "UTC"),
        ('"America/New_York"', "America/New_York"),
        ('"Europe/Berlin"', "Europe/Berlin"),
    ],
)
def test_display_timezone_is_an_iana_name(tmp_path: Path, written: str | None, zone: str) -> None:
    config = tmp_path / "fdawatch.toml"
    config.write_text(f"[display]\ntimezone = {written}\n" if written else "", encoding="utf-8")
    assert load_settings({"FDAWATCH_CONFIG": str(config)}).timezone == zone


def test_an_unknown_timezone_is_named_with_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "fdawatch.toml"
    config.write_text('[display]\ntimezone = "Eastern"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings({"FDAWATCH_CONFIG": str(config)})
    assert str(raised.value) == (
        f"{config}: [display] timezone = 'Eastern' is not a time zone name; write an IANA name "
        "such as 'America/New_York', 'Europe/Berlin' or 'UTC'"
    )
