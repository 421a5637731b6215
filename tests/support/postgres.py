"""A throw-away PostgreSQL server for the tests: no root, no system service, no TCP port.

`make test` runs every database-facing test on PostgreSQL too, on any machine that has the
server's binaries, without an administrator. The binaries, the first found:

1. `FDAWATCH_TEST_PG_BINDIR` (a folder with `initdb`, `pg_ctl`, `postgres`);
2. pgserver's bundled PostgreSQL (PyPI, in the `[test]` extra where it has wheels: Linux x86_64,
   macOS), used as plain binaries: pgserver's own start-up is not used, because as root it adds a
   system user and opens every parent folder of its data to everyone;
3. the folder of `pg_ctl` on PATH (Fedora, Homebrew);
4. Debian's newest `/usr/lib/postgresql/N/bin`.

The cluster lives in a temporary folder and listens on a Unix socket there only (no port to
race for), with trust authentication and fsync off (tests only), and is deleted afterwards.
PostgreSQL refuses to run as root: as root the server runs as an existing unprivileged user
(`postgres`, else `nobody`); when that user cannot reach the binaries (a virtualenv under a
private home), pgserver's are copied into the temporary folder first.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BINDIR_VARIABLE = "FDAWATCH_TEST_PG_BINDIR"
PROGRAMS = ("initdb", "pg_ctl", "postgres")
DEBIAN = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60
HOW_TO_GET_ONE = (
    "install the test extra (`pip install -e '.[test]'` brings pgserver on Linux x86_64 and macOS "
    "with Python < 3.13), or the system's PostgreSQL server (`apt-get install postgresql`), or set "
    f"{BINDIR_VARIABLE} to a folder with initdb and pg_ctl, or FDAWATCH_TEST_POSTGRES_URL to a "
    "database you own"
)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started here; the message says why and what to install."""


def _complete(folder: Path) -> bool:
    return all((folder / program).is_file() for program in PROGRAMS)


def pgserver_bindir() -> Path | None:
    """pgserver's bundled binaries, found without importing it (its import warns under -W error)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return folder if _complete(folder) else None


def find_bindir(env: Mapping[str, str] = os.environ) -> Path | None:
    """The folder of `initdb`, `pg_ctl` and `postgres` to use (see the module's docstring)."""
    configured = env.get(BINDIR_VARIABLE)
    if configured:
        if not _complete(Path(configured)):
            raise PostgresUnavailable(
                f"{BINDIR_VARIABLE}={configured} lacks one of {', '.join(PROGRAMS)}; point it at "
                "PostgreSQL's bin folder"
            )
        return Path(configured)
    bundled = pgserver_bindir()
    if bundled is not None:
        return bundled
    on_path = shutil.which("pg_ctl", path=env.get("PATH"))
    if on_path and _complete(Path(on_path).parent):
        return Path(on_path).parent
    debian = sorted(
        (folder.parent for folder in DEBIAN.glob("*/bin") if _complete(folder)),
        key=lambda version: int(version.name) if version.name.isdigit() else 0,
    )
    return debian[-1] / "bin" if debian else None


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable(
        "running as root, and there is no unprivileged user (postgres, nobody) to run "
        "PostgreSQL as: run the tests as another user"
    )


class TemporaryPostgres:
    """One cluster in a temporary folder: `start()` gives its SQLAlchemy URL, `stop()` ends it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="fdawatch-pg-"))
        self.data = self.root / "data"
        self._run_as: dict[str, Any] = {}
        self._started = False

    def start(self) -> str:
        try:
            self.data.mkdir()
            if os.geteuid() == 0:
                self._drop_root()
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--no-locale", "--no-sync")  # fmt: skip
            options = f"-h '' -k {shlex.quote(str(self.data))} -F"
            self._run("pg_ctl", "-D", str(self.data), "-w", "-t", str(START_TIMEOUT_S),
                      "-l", str(self.data / "server.log"), "-o", options, "start")  # fmt: skip
        except BaseException:
            self.stop()
            raise
        self._started = True
        return f"postgresql+psycopg://postgres@/postgres?host={self.data}"

    def stop(self) -> None:
        if self._started:
            with contextlib.suppress(PostgresUnavailable):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def _drop_root(self) -> None:
        """PostgreSQL will not run as root: hand the data folder to an unprivileged user."""
        user = _unprivileged_user()
        self.root.chmod(0o755)
        os.chown(self.data, user.pw_uid, user.pw_gid)
        self._run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": "/"}
        try:
            self._run("postgres", "--version")
        except PostgresUnavailable:
            if self.bindir != pgserver_bindir():
                raise
            self.bindir = self._copy_pgserver()
            self._run("postgres", "--version")

    def _copy_pgserver(self) -> Path:
        """pgserver's binaries and their libraries, where the unprivileged user can reach them."""
        bundled = self.bindir.parent  # …/site-packages/pgserver/pginstall
        copy = self.root / "pgserver" / "pginstall"
        shutil.copytree(bundled, copy, symlinks=True)
        libs = bundled.parent.parent / "pgserver.libs"  # auditwheel's $ORIGIN/../../../
        if libs.is_dir():
            shutil.copytree(libs, self.root / "pgserver.libs", symlinks=True)
        for folder in (self.root / "pgserver", copy, self.root / "pgserver.libs"):
            with contextlib.suppress(FileNotFoundError):
                folder.chmod(0o755)
        return copy / "bin"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        try:
            subprocess.run(
                command, check=True, capture_output=True, text=True, timeout=120, **self._run_as
            )
            return
        except subprocess.CalledProcessError as error:
            said = (error.stderr or error.stdout or "").strip().splitlines()
            detail = f"exit {error.returncode}" + (f": {said[-1]}" if said else "")
        except (OSError, subprocess.TimeoutExpired) as error:
            detail = str(error)
        raise PostgresUnavailable(f"`{program}` from {self.bindir} failed ({detail}){self._log()}")

    def _log(self) -> str:
        """The server log's last line, which says why a start failed."""
        try:
            lines = (self.data / "server.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f"; server log: {lines[-1]}" if lines else ""


def start_temporary_postgres() -> tuple[TemporaryPostgres, str]:
    """A started throw-away server and its URL, or `PostgresUnavailable` saying what to install."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(f"no PostgreSQL server binaries found: {HOW_TO_GET_ONE}")
    server = TemporaryPostgres(bindir)
    return server, server.start()
