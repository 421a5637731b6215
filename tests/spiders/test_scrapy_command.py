"""`scrapy crawl` as a developer types it: a mistake is one line and exit 2; a crawl is quiet.

Scrapy itself meets a bad `-a source=` only inside the running crawl (two tracebacks, exit 0);
fdawatch's `crawl` command (monitor/runtime/scrapy_commands/crawl.py) checks it first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "fixtures" / "demo"


def scrapy(tmp_path: Path, *args: str, sources: Path | None = None) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FDAWATCH_SOURCES": str(sources or ROOT / "sources.toml"),
        "FDAWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
        "FDAWATCH_CONFIG": "",
        "FDAWATCH_VAR_DIR": str(tmp_path / "var"),
        "FDAWATCH_CRAWL_DELAY": "0",
    }
    return subprocess.run(
        [sys.executable, "-m", "scrapy", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["page", "-a", "source=nope"],
            "scrapy crawl: error: unknown source id 'nope'; valid page sources: "
            "fda_compounding_risk_alerts, ",
        ),
        (
            ["feed", "-a", "source=fda_spravato_rems"],
            "scrapy crawl: error: source 'fda_spravato_rems' is a page source: run `scrapy crawl "
            "page -a source=fda_spravato_rems`; valid feed sources: fda_medwatch_rss, ",
        ),
        (["page", "-a", "source="], "scrapy crawl: error: -a source= is empty; valid page sources"),
    ],
)
def test_a_bad_source_argument_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], error: str
) -> None:
    result = scrapy(tmp_path, "crawl", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(error)
    assert not (tmp_path / "history.db").exists()  # nothing opened, nothing written


def test_a_broken_sources_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "sources.toml"
    broken.write_text('[[source]]\nid = "x"\nkind = "page"\n', encoding="utf-8")
    result = scrapy(tmp_path, "crawl", "page", "-a", "source=x", sources=broken)
    assert result.returncode == 2
    assert result.stderr.startswith(f"scrapy crawl: error: {broken}: [[source]] #1 ('x'): ")
    assert len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.slow
def test_a_crawl_logs_no_warning_about_the_disabled_referer_middleware(tmp_path: Path) -> None:
    with LoopbackServer(DEMO) as server:
        port = server.url.rsplit(":", 1)[1]
        sources = tmp_path / "sources.toml"
        sources.write_text(
            (DEMO / "sources.toml").read_text(encoding="utf-8").replace("{port}", port),
            encoding="utf-8",
        )
        server.set_version(1)
        result = scrapy(
            tmp_path, "crawl", "page", "-a", "source=fda_ketamine_oral_alert", sources=sources
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'item_scraped_count': 2" in result.stderr  # the page and its fetch record
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert warnings == []
