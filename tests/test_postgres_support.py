"""The tests' own PostgreSQL server (tests/support/postgres.py): which binaries, and why not.

The server itself is exercised by every PostgreSQL case of the suite; these pin down the choices
and that a server that cannot start says which program failed and what it said.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support import postgres
from tests.support.postgres import PostgresUnavailable, TemporaryPostgres, find_bindir


def fake_bindir(folder: Path, initdb_says: str = "", initdb_exit: int = 0) -> Path:
    """A bin folder with stand-in programs; `initdb` prints `initdb_says` and exits so."""
    folder.mkdir(parents=True, exist_ok=True)
    for program in postgres.PROGRAMS:
        script = folder / program
        body = f"echo '{initdb_says}' >&2\nexit {initdb_exit}" if program == "initdb" else "exit 0"
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def test_the_configured_bin_folder_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = fake_bindir(tmp_path / "chosen")
    monkeypatch.setattr(postgres, "pgserver_bindir", lambda: fake_bindir(tmp_path / "pgserver"))
    assert find_bindir({postgres.BINDIR_VARIABLE: str(chosen)}) == chosen
    assert find_bindir({"PATH": ""}) == tmp_path / "pgserver"


def test_without_pgserver_the_pg_ctl_on_path_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "pgserver_bindir", lambda: None)
    on_path = fake_bindir(tmp_path / "usr" / "bin")
    assert find_bindir({"PATH": f"{tmp_path / 'nothing'}{os.pathsep}{on_path}"}) == on_path


def test_an_incomplete_configured_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "pg_ctl").write_text("")
    with pytest.raises(PostgresUnavailable) as raised:
        find_bindir({postgres.BINDIR_VARIABLE: str(tmp_path)})
    assert str(raised.value) == (
        f"{postgres.BINDIR_VARIABLE}={tmp_path} lacks one of initdb, pg_ctl, postgres; point it "
        "at PostgreSQL's bin folder"
    )


def test_a_server_that_cannot_start_says_which_program_failed_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as an ordinary user: no user switch
    bindir = fake_bindir(tmp_path / "bin", "initdb: error: no space left on device", 1)
    server = TemporaryPostgres(bindir)
    with pytest.raises(PostgresUnavailable) as raised:
        server.start()
    assert str(raised.value) == (
        f"`initdb` from {bindir} failed (exit 1: initdb: error: no space left on device)"
    )
    assert not server.root.exists()
