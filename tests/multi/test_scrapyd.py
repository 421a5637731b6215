"""fdawatch deployed to a real Scrapyd on loopback with `scrapyd-deploy`, crawling on demand.

The egg is zipped, so the deployed code cannot run migrations: against an empty database the job
fails with an error that says what to run; once the schema exists, a scheduled crawl of a fixture
source lands its snapshot in the history, read from the environment of the Scrapyd process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import urlopen

import pytest
from sqlmodel import Session, select

from db.engine import open_database
from db.models import Snapshot
from tests.support.loopback import LoopbackServer
from tests.support.paths import DEMO, ROOT
from tests.support.ports import free_port

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
PROJECT_FILES = (
    "monitor",
    "spiders",
    "db",
    "templates",
    "scrapy.cfg",
    "pyproject.toml",
    "README.md",
)
SOURCE_ID = "fda_spravato_rems"
DEADLINE = 90.0


def api(base: str, endpoint: str, **form: str) -> dict[str, object]:
    """GET (no form) or POST (form) one Scrapyd JSON endpoint."""
    data = urlencode(form).encode() if form else None
    with urlopen(f"{base}/{endpoint}", data=data, timeout=30) as response:
        answer = json.loads(response.read())
    assert answer.get("status") == "ok", answer
    return answer


def has_scrapy_entry_point() -> bool:
    """Scrapyd finds a project's settings through the egg's `scrapy` entry point."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return "settings" in project.get("entry-points", {}).get("scrapy", {})


@pytest.fixture
def scrapyd(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A Scrapyd on loopback whose environment names the database and the sources file."""
    folder = tmp_path / "scrapyd"
    folder.mkdir()
    port = free_port()
    (folder / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        f"bind_address = 127.0.0.1\nhttp_port = {port}\n"
        "eggs_dir = eggs\nlogs_dir = logs\nitems_dir =\ndbs_dir = dbs\n"
        "max_proc = 2\npoll_interval = 0.2\n",
        encoding="utf-8",
    )
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "FDAWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
        "FDAWATCH_SOURCES": str(tmp_path / "sources.toml"),
        "FDAWATCH_CONFIG": "",
        "FDAWATCH_VAR_DIR": str(tmp_path / "var"),
        "FDAWATCH_CRAWL_DELAY": "0",
    }
    log = (folder / "scrapyd.out").open("w")
    server = subprocess.Popen(
        [str(BIN / "scrapyd")], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + DEADLINE
        while True:
            try:
                api(base, "daemonstatus.json")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > end:
                    pytest.fail((folder / "scrapyd.out").read_text(encoding="utf-8")[-3000:])
                time.sleep(0.2)
        yield base, env, folder
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def deploy(base: str, workdir: Path) -> None:
    """`scrapyd-deploy` from a copy of the project, as an operator would from a checkout."""
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, workdir / name)
    config = (workdir / "scrapy.cfg").read_text(encoding="utf-8")
    assert "url = http://localhost:6800/" in config and "project = fdawatch" in config
    (workdir / "scrapy.cfg").write_text(
        config.replace("http://localhost:6800/", base + "/"), encoding="utf-8"
    )
    result = subprocess.run(
        [str(BIN / "scrapyd-deploy"), "--version", "1"],
        cwd=workdir,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(workdir)},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 0 and '"status": "ok"' in result.stdout, result.stderr[-3000:]


def run_job(base: str, folder: Path) -> str:
    """Schedule a crawl of SOURCE_ID, wait for it to finish, return its log."""
    job = api(base, "schedule.json", project="fdawatch", spider="page", source=SOURCE_ID)["jobid"]
    end = time.monotonic() + DEADLINE
    while not any(
        entry["id"] == job
        for entry in api(base, "listjobs.json?project=fdawatch")["finished"]  # type: ignore[union-attr]
    ):
        assert time.monotonic() < end, f"job {job} did not finish in {DEADLINE:.0f} s"
        time.sleep(0.3)
    return (folder / "logs" / "fdawatch" / "page" / f"{job}.log").read_text(encoding="utf-8")


def test_a_deployed_crawl_needs_the_schema_then_records_its_snapshot(
    scrapyd: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    assert has_scrapy_entry_point(), "pyproject.toml must declare the `scrapy` entry point"
    base, env, folder = scrapyd
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    deploy(base, workdir)
    assert "page" in api(base, "listspiders.json?project=fdawatch")["spiders"]  # type: ignore[operator]
    with LoopbackServer(DEMO) as server:
        port = server.url.rsplit(":", 1)[1]
        Path(env["FDAWATCH_SOURCES"]).write_text(
            (DEMO / "sources.toml").read_text(encoding="utf-8").replace("{port}", port),
            encoding="utf-8",
        )
        # No schema yet, and the egg cannot migrate: the job stops and says what to run.
        log = run_job(base, folder)
        assert "has no fdawatch schema" in log, log
        assert "run `fdawatch status` (to upgrade it) or `fdawatch crawl` (to create it)" in log
        assert not server.hits_on("/pages/spravato-rems.html")

        engine = open_database(env["FDAWATCH_DATABASE_URL"])  # what `fdawatch crawl` does
        try:
            log = run_job(base, folder)
            with Session(engine) as session:
                snapshots = session.exec(select(Snapshot)).all()
        finally:
            engine.dispose()
    assert [s.source_id for s in snapshots] == [SOURCE_ID], log[-3000:]
    assert "SPRAVATO" in snapshots[0].text.upper()
    assert len(server.hits_on("/pages/spravato-rems.html")) == 1
