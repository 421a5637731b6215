"""Bad configuration through the real `fdawatch` command: one line naming the problem, exit 2.

Each case also checks that nothing was written: the history database does not even exist yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.helpers import fdawatch

GOOD_SOURCE = '[[source]]\nid = "fda_x"\nkind = "page"\nurl = "https://www.fda.gov/x"\n'


@dataclass(frozen=True)
class Bad:
    name: str
    sources: str
    config: str
    message: str  # the whole line after "fdawatch: error: {folder}/"
    args: tuple[str, ...] = ("sources",)


CASES = [
    Bad(
        "unknown_config_key",
        GOOD_SOURCE,
        "[crawl]\ndelai = 1\n",
        "fdawatch.toml: [crawl] unknown key 'delai' (known: blocked_backoff, blocked_backoff_max, "
        "concurrency_per_host, contact, delay, obey_robots, retries, second_look_delay, timeout, "
        "user_agent)",
    ),
    Bad(
        "unknown_source_field",
        GOOD_SOURCE + 'selecter = "main"\n',
        "",
        "sources.toml: [[source]] #1 ('fda_x'): unknown field 'selecter'; known fields: id, "
        "kind, url, title, selector, interval, cron, terms, tier, tags, failure_threshold, "
        "confirm_removal, max_documents, max_bytes, notes",
    ),
    Bad(
        "wrong_type_interval",
        GOOD_SOURCE + "interval = 6\n",
        "",
        "sources.toml: [[source]] #1 ('fda_x'): field 'interval' must be a string (how often "
        "to check, like '6h', '30m' or '1d')",
    ),
    Bad(
        "wrong_type_config",
        GOOD_SOURCE,
        '[crawl]\ndelay = "fast"\n',
        "fdawatch.toml: [crawl] delay must be a number, not 'fast'",
    ),
    Bad(
        "wrong_type_threshold",
        GOOD_SOURCE,
        "[health]\nfailure_threshold = true\n",
        "fdawatch.toml: [health] failure_threshold must be a number, not True",
    ),
    Bad(
        "duplicate_source_id",
        GOOD_SOURCE + "\n" + GOOD_SOURCE,
        "",
        "sources.toml: [[source]] #2: field 'id' = 'fda_x' is used twice",
    ),
    Bad(
        "invalid_cron_value",
        GOOD_SOURCE + 'cron = "99 * * * *"\n',
        "",
        "sources.toml: [[source]] #1 ('fda_x'): field 'cron' = '99 * * * *' is invalid (Error "
        "validating expression '99': the last value (99) is higher than the maximum value (59); "
        "a cron expression instead of interval (minute hour day month weekday), in UTC, e.g. "
        "'0 6 * * 1-5')",
    ),
    Bad(
        "invalid_cron_fields",
        GOOD_SOURCE + 'cron = "every monday"\n',
        "",
        "sources.toml: [[source]] #1 ('fda_x'): field 'cron' = 'every monday' is invalid (it has "
        "2 fields, not 5; a cron expression instead of interval (minute hour day month weekday), "
        "in UTC, e.g. '0 6 * * 1-5')",
        ("crawl", "--all"),
    ),
    Bad(
        "invalid_recipient",
        GOOD_SOURCE,
        '[[recipient]]\nemail = "ops@clinic.example, boss"\n',
        "fdawatch.toml: [[recipient]] #1: 'email' must be one address like ops@example.org, "
        "not 'ops@clinic.example, boss'",
        ("run", "--once"),
    ),
    Bad(
        "not_toml",
        "[[source]\nid = 1",
        "",
        "sources.toml: not valid TOML (Expected ']]' at the end of an array declaration "
        "(at line 1, column 9))",
    ),
]


@pytest.mark.parametrize("bad", CASES, ids=lambda b: b.name)
def test_bad_configuration_is_one_line_naming_it_and_exit_code_2(tmp_path: Path, bad: Bad) -> None:
    (tmp_path / "sources.toml").write_text(bad.sources, encoding="utf-8")
    (tmp_path / "fdawatch.toml").write_text(bad.config, encoding="utf-8")
    env = {
        "FDAWATCH_SOURCES": str(tmp_path / "sources.toml"),
        "FDAWATCH_CONFIG": str(tmp_path / "fdawatch.toml"),
        "FDAWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'history.db'}",
    }
    result = fdawatch(env, *bad.args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"fdawatch: error: {tmp_path}/{bad.message}"]
    assert not (tmp_path / "var").exists()  # nothing written before the error


def test_an_unreachable_database_names_the_url_and_the_setting(tmp_path: Path) -> None:
    (tmp_path / "sources.toml").write_text(GOOD_SOURCE, encoding="utf-8")
    env = {"FDAWATCH_SOURCES": str(tmp_path / "sources.toml"), "FDAWATCH_CONFIG": ""}
    url = "postgresql+psycopg://fdawatch@127.0.0.1:1/fdawatch"
    result = fdawatch(env, "--database", url, "sources", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"fdawatch: error: cannot open the database {url!r}: ")
    assert "Connection refused" in result.stderr
    assert "check FDAWATCH_DATABASE_URL or --database" in result.stderr


@pytest.mark.parametrize(
    "url",
    ["sqlite:////proc/fdawatch/history.db", "postgresql+psycopg://fdawatch@127.0.0.1:1/fdawatch"],
)
def test_an_unusable_database_url_is_exactly_one_line(tmp_path: Path, url: str) -> None:
    (tmp_path / "sources.toml").write_text(GOOD_SOURCE, encoding="utf-8")
    env = {"FDAWATCH_SOURCES": str(tmp_path / "sources.toml"), "FDAWATCH_CONFIG": ""}
    result = fdawatch(env, "--database", url, "sources", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"fdawatch: error: cannot open the database {url!r}")
