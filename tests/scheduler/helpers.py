"""A small deployment in a temp folder: sources.toml and fdawatch.toml pointing at a fixture server.

Crawls run for real (`monitor.runtime.crawl.run_crawl`, one child process each) against
`tests/fixtures/health/` on the loopback fixture server, with no crawl delay, one retry and a
one-second download timeout, so a fault costs at most a second or two.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor.config import Settings, load_settings
from monitor.sources import SourceConfig, load_sources
from tests.support.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
HEALTH = ROOT / "tests" / "fixtures" / "health"
PAGE = "/pages/ketamine_oral_alert_synthetic.html"
DRIFT_PAGE = HEALTH / "v1" / "pages" / "ketamine_oral_alert_synthetic_v6_layout_drift.html"
FEED = "/feeds/001_20241114T1258Z_d2a4a52c.xml"
RECIPIENT = "ops@example.org"

#: concurrency 4: the fixture server's listen backlog is 5, and a burst past it drops SYNs that
#: come back after 1 s, which the 1 s download timeout would report as a timeout.
CONFIG = """\
[crawl]
delay = 0
concurrency_per_host = 4
timeout = 1
retries = 1
obey_robots = false

[scheduler]
jitter = 0

[health]
failure_threshold = {threshold}

[[recipient]]
email = "{recipient}"
"""


def target(source_id: str, kind: str = "page") -> str:
    """The served path + query a source fetches: each source gets its own fault key."""
    return f"{FEED if kind == 'feed' else PAGE}?case={source_id}"


def write_sources(
    path: Path, server: LoopbackServer, sources: Sequence[tuple[str, str]], interval: str = "6h"
) -> None:
    """sources.toml with one [[source]] per (id, kind), all on the fixture server."""
    blocks = [
        f'[[source]]\nid = "{source_id}"\nkind = "{kind}"\n'
        f'url = "{server.url}{target(source_id, kind)}"\ntitle = "{source_id} (SYNTHETIC)"\n'
        f'interval = "{interval}"\ntier = "T2"\n'
        for source_id, kind in sources
    ]
    path.write_text("\n".join(blocks), encoding="utf-8")


def environment(folder: Path, threshold: int = 2) -> dict[str, str]:
    """FDAWATCH_* variables for a deployment living in `folder` (files written here)."""
    config = folder / "fdawatch.toml"
    config.write_text(CONFIG.format(threshold=threshold, recipient=RECIPIENT), encoding="utf-8")
    return {
        "FDAWATCH_CONFIG": str(config),
        "FDAWATCH_SOURCES": str(folder / "sources.toml"),
        "FDAWATCH_DATABASE_URL": f"sqlite:///{folder / 'history.db'}",
        "FDAWATCH_VAR_DIR": str(folder / "var"),
    }


def deployment(folder: Path, threshold: int = 2) -> tuple[Settings, dict[str, SourceConfig]]:
    env = environment(folder, threshold)
    settings = load_settings(env)
    return settings, load_sources(settings.sources_path)


def child_env(env: dict[str, str]) -> dict[str, str]:
    """The environment for an `fdawatch` child process: ours plus the deployment's variables."""
    return {**os.environ, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def fdawatch_command(*args: str) -> list[str]:
    """`fdawatch run|status …` as a child process (`python -m monitor …`)."""
    return [sys.executable, "-m", "monitor", *args]


def fdawatch(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `fdawatch ARGS` to the end and capture its output."""
    return subprocess.run(
        fdawatch_command(*args), env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
