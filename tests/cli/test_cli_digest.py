"""`fdawatch digest`, `serve` and `evidence` through click, on a SYNTHETIC history file."""

from __future__ import annotations

import urllib.request
import zipfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from db.engine import open_database
from monitor.cli.app import AppContext, FdawatchGroup
from monitor.cli.digest import (
    digest_command,
    evidence_command,
    serve_command,
    serve_in_thread,
    site_server,
    window_title,
)
from monitor.errors import CommandError
from tests.support import digest_history as data


class FixedClock(AppContext):
    def now(self):  # type: ignore[no-untyped-def]
        return data.NOW


@click.group(cls=FdawatchGroup)
def app() -> None:
    """The digest commands on their own group; `obj` is an AppContext on a test database."""


for command in (digest_command, serve_command, evidence_command):
    app.add_command(command)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    database = f"sqlite:///{tmp_path / 'fdawatch.db'}"
    engine = open_database(database)
    data.build(engine)
    engine.dispose()
    monkeypatch.setenv("FDAWATCH_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("FDAWATCH_CONFIG", "")
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> click.testing.Result:
        obj = FixedClock(str(tmp_path / "missing-sources.toml"), database)
        return CliRunner().invoke(app, list(args), obj=obj, catch_exceptions=False)

    return invoke


def test_digest_writes_the_site_and_prints_the_index_path(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("digest", "--since", "7d", "--dir", str(tmp_path / "site"))
    assert result.exit_code == 0, result.output
    assert f"digest: {tmp_path / 'site' / 'index.html'}" in result.output
    assert "4 changes since 2026-11-23 09:00 UTC (T1: 1, T2: 1, T3: 1, T4: 1)" in result.output
    assert "FDA changes: the last 7 days" in (tmp_path / "site" / "index.html").read_text()


def test_digest_defaults_to_var_site(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("digest", "--since", "24h")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "site" / "index.html").is_file()
    assert "0 changes since" in result.output  # nothing in the last day


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("digest", "--since", "lately"), "'lately': use 7d, 24h, 2w or an ISO date"),
        (("evidence", "999"), "no change 999; `fdawatch changes` lists them"),
    ],
)
def test_bad_input_is_named_with_the_fix(run, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_evidence_writes_the_bundle_where_asked(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("evidence", "1", "--out", str(tmp_path / "proof.zip"))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(tmp_path / "proof.zip")
    names = zipfile.ZipFile(tmp_path / "proof.zip").namelist()
    assert "manifest.json" in names and "after/raw-body.html" in names
    default = run("evidence", "2")
    assert default.output.strip().endswith(str(tmp_path / "var" / "evidence" / "change-2.zip"))


def test_serve_refuses_a_folder_without_a_site(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"run `fdawatch digest --dir .*` first, or pass --dir"):
        site_server(tmp_path, 0)


def test_the_former_digest_out_still_works_with_a_warning(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("digest", "--out", str(tmp_path / "site"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "site" / "index.html").is_file()
    assert result.stderr.startswith("fdawatch: warning: `digest --out` is now `digest --dir`\n")


def test_readers_never_create_a_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FDAWATCH_CONFIG", "")
    missing = tmp_path / "nowhere" / "fdawatch.db"
    for args in (("digest", "--dir", str(tmp_path / "site")), ("evidence", "1")):
        obj = FixedClock(None, f"sqlite:///{missing}")
        result = CliRunner().invoke(app, list(args), obj=obj, catch_exceptions=False)
        assert result.exit_code == 2
        assert result.stderr == (
            f"fdawatch: error: no database at {missing}: `fdawatch crawl` creates it; to read "
            "another one, pass --database URL (or set FDAWATCH_DATABASE_URL)\n"
        )
    assert not (tmp_path / "nowhere").exists()
    assert not (tmp_path / "site").exists()


def test_served_site_answers_on_loopback_with_atom_type(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("digest", "--dir", str(tmp_path / "site"))
    server, base = serve_in_thread(tmp_path / "site")
    try:
        assert base.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(base + "feed.atom", timeout=10) as response:
            assert response.headers["Content-Type"] == "application/atom+xml"
        with urllib.request.urlopen(base + "changes/1.html", timeout=10) as response:
            assert b"pulse" in response.read()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("since", "title"),
    [
        ("7d", "the last 7 days"),
        ("1w", "the last 1 week"),
        ("24h", "the last 24 hours"),
        ("2026-11-01", ""),
    ],
)
def test_window_title(since: str, title: str) -> None:
    assert window_title(since) == title
