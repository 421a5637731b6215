"""Bad configuration through the real `fdawatch` command: one line naming the problem, exit 2.

Each case also checks that nothing was written: the history database does not even exist yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.deployment import fdawatch

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
        "confirm_removal, max_documents, max_bytes, follow_documents, max_document_bytes, "
        "max_document_pages, notes",
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
        "interval_zero",
        GOOD_SOURCE + 'interval = "0s"\n',
        "",
        "sources.toml: [[source]] #1 ('fda_x'): field 'interval' = '0s' is too short: the minimum "
        "is 1m (each check is a request to FDA's servers, a public service); use e.g. '30m' or "
        "'6h'",
        ("run", "--once"),
    ),
    Bad(
        "interval_overflow",
        GOOD_SOURCE + 'interval = "99999999999d"\n',
        "",
        "sources.toml: [[source]] #1 ('fda_x'): field 'interval' = '99999999999d' is too long: "
        "the maximum is 365d; for a rare check use a cron such as '0 6 1 * *' (monthly)",
        ("run",),
    ),
    Bad(
        "interval_and_cron",
        GOOD_SOURCE + 'interval = "1d"\ncron = "0 6 * * *"\n',
        "",
        "sources.toml: [[source]] #1 ('fda_x'): has both 'interval' = '1d' and 'cron' = "
        "'0 6 * * *'; keep one: remove 'interval' to keep the schedule the daemon followed "
        "(cron), or remove 'cron'",
    ),
    Bad(
        "bogus_selector",
        GOOD_SOURCE + 'selector = "::bogus(("\n',
        "",
        "sources.toml: [[source]] #1 ('fda_x'): field 'selector' = '::bogus((' is not a CSS "
        "selector the page spider can use (Expected an argument, got <DELIM '(' at 8>); e.g. "
        "'main', 'div#content' or 'article.main-content'",
        ("crawl", "--all"),
    ),
    Bad(
        "config_not_utf8",
        GOOD_SOURCE,
        '[mail]\nfrom = "Informaci\xf3n <a@b.example>"\n',
        "fdawatch.toml: not UTF-8 text (line 2 has the byte 0xf3); save it as UTF-8",
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
    (tmp_path / "fdawatch.toml").write_bytes(bad.config.encode("latin-1"))
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
    """A command that creates the database (a reader would say there is none)."""
    (tmp_path / "sources.toml").write_text(GOOD_SOURCE, encoding="utf-8")
    env = {"FDAWATCH_SOURCES": str(tmp_path / "sources.toml"), "FDAWATCH_CONFIG": ""}
    result = fdawatch(env, "--database", url, "crawl", "--all", "--no-send", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"fdawatch: error: cannot open the database {url!r}")


DB_PASSWORD = "Db-pa55word-3e9a"


def one_error_line(tmp_path: Path, *args: str, **env: str) -> str:
    """Run `fdawatch ARGS` in a folder with a good sources.toml: its one stderr line, exit 2."""
    (tmp_path / "sources.toml").write_text(GOOD_SOURCE, encoding="utf-8")
    base = {"FDAWATCH_SOURCES": str(tmp_path / "sources.toml"), "FDAWATCH_CONFIG": ""}
    result = fdawatch({**base, **env}, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert "Traceback" not in result.stderr and result.stdout == ""
    return line


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://fdawatch:{DB_PASSWORD}@127.0.0.1:1/fdawatch",
        f"postgresql+psycopg://fdawatch:{DB_PASSWORD}@127.0.0.1:notaport/fdawatch",
        f"postgresql+psycopg://fdawatch@127.0.0.1:1/fdawatch?password={DB_PASSWORD}",
    ],
)
def test_a_database_password_is_masked_in_the_error(tmp_path: Path, url: str) -> None:
    line = one_error_line(tmp_path, "--database", url, "status")
    shown = url.replace(DB_PASSWORD, "***")
    assert line.startswith(f"fdawatch: error: cannot open the database {shown!r}: ")
    assert DB_PASSWORD not in line


def test_a_corrupt_database_file_is_one_line_and_left_as_it_was(tmp_path: Path) -> None:
    garbage = b"this is not a database, only garbage " * 20
    (tmp_path / "broken.db").write_bytes(garbage)
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    line = one_error_line(tmp_path, "--database", url, "status")
    assert line == (
        f"fdawatch: error: the database {url!r} is not a readable fdawatch database (file is not "
        "a database): restore the file from a backup, or point FDAWATCH_DATABASE_URL or "
        "--database at the right one"
    )
    assert (tmp_path / "broken.db").read_bytes() == garbage


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "FDAWATCH_SMTP_URL",
            "smtp://bot:Smtp-pa55word@127.0.0.1:notaport",
            "FDAWATCH_SMTP_URL has the port 'notaport': write a number from 1 to 65535, as in "
            "smtp://user:password@host:587",
        ),
        (
            "FDAWATCH_SMTP_URL",
            "smtp://bot:Smtp-pa55word@127.0.0.1:99999",
            "FDAWATCH_SMTP_URL has the port '99999': write a number from 1 to 65535, as in "
            "smtp://user:password@host:587",
        ),
        (
            "FDAWATCH_SMTP_PORT",
            "99999",
            "FDAWATCH_SMTP_PORT must be a port from 1 to 65535, not 99999",
        ),
    ],
)
def test_a_bad_smtp_port_is_one_line_naming_the_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    env = {variable: value, "FDAWATCH_SMTP_HOST": "127.0.0.1"}
    line = one_error_line(tmp_path, "alerts", "send", **env)
    assert line == f"fdawatch: error: {message}"


def test_a_sources_path_that_is_a_folder_or_not_utf8_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(tmp_path, "--sources", str(tmp_path), "sources")
    assert line == (
        f"fdawatch: error: {tmp_path}: is a folder, not a file; pass --sources "
        "PATH/TO/sources.toml or set FDAWATCH_SOURCES to the file"
    )
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes((GOOD_SOURCE + 'title = "Información"\n').encode("latin-1"))
    line = one_error_line(tmp_path, "--sources", str(latin1), "crawl", "--all")
    assert (
        line
        == f"fdawatch: error: {latin1}: not UTF-8 text (line 5 has the byte 0xf3); save it as UTF-8"
    )
    assert not (tmp_path / "var").exists()
