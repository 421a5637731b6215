"""`make demo`: the whole pipeline on recorded sources served from loopback.

Serves `tests/fixtures/demo/` (real FDA Food Safety Recalls RSS captures and synthetic pages
built on the fda.gov page structure) on 127.0.0.1, crawls it once (the baseline), switches the
server to the next recorded versions, crawls again, prints the changes with their diffs and
sends the alerts (as .eml files: the demo configures no SMTP server), then writes the digest
site into var/demo/site/ and prints the path of its index.html. Everything it writes is under
var/demo/, which it starts afresh.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.engine import open_database
from db.models import Change
from monitor.cli.alerts import describe_report
from monitor.cli.changes import describe_change
from monitor.config import Settings, load_settings
from monitor.delivery.alerts import send_pending
from monitor.runtime.crawl import CrawlSummary, run_crawl
from monitor.site.build import build_site
from monitor.sources import load_sources
from tests.support.loopback import LoopbackServer
from tests.support.paths import DEMO, ROOT

DEMO_CONFIG = """\
# Written by `make demo`. A deployment file: crawl politeness and who gets alerts.
[crawl]
delay = 0                  # the loopback fixture host can be crawled at full speed
concurrency_per_host = 8
obey_robots = true

[site]
# Where the digest site is published: alert emails link each change's page there ("View change &
# evidence") and the Atom feed's links are absolute. `make demo` writes the site to
# var/demo/site; `fdawatch serve --dir var/demo/site --port 8000` publishes it at this address.
url = "http://127.0.0.1:8000/"

[[recipient]]
email = "compliance@clinic.example"
name = "Compliance officer"

[[recipient]]
email = "owner@clinic.example"
name = "Clinic owner"
min_severity = "T2"
digest = "weekly"
"""


def prepare(workdir: Path, port: int) -> Settings:
    """Fresh demo folder with its sources.toml (pointing at the fixture server) and config."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    sources = (DEMO / "sources.toml").read_text(encoding="utf-8").replace("{port}", str(port))
    (workdir / "sources.toml").write_text(sources, encoding="utf-8")
    (workdir / "fdawatch.toml").write_text(DEMO_CONFIG, encoding="utf-8")
    return load_settings(
        {
            "FDAWATCH_VAR_DIR": str(workdir),
            "FDAWATCH_CONFIG": str(workdir / "fdawatch.toml"),
            "FDAWATCH_SOURCES": str(workdir / "sources.toml"),
            "FDAWATCH_DATABASE_URL": f"sqlite:///{workdir / 'fdawatch.db'}",
        }
    )


def print_summary(label: str, summary: CrawlSummary, say: Callable[[str], None]) -> None:
    say(
        f"\n== {label}: run {summary.run_id} {summary.status}: checked {summary.checked}, "
        f"unchanged {summary.unchanged}, changed {summary.changed}, failed {summary.failed}"
    )
    for result in summary.results:
        say(
            f"   {result.source_id:<30} {result.outcome:<12} documents {result.documents:>3}  "
            f"changes {result.changes}" + (f"  ({result.error})" if result.error else "")
        )
    if summary.status != "finished":
        raise SystemExit(f"the crawl process {summary.status}:\n{summary.stderr_tail}")


def print_changes(engine: Engine, say: Callable[[str], None]) -> int:
    with Session(engine) as session:
        changes = session.exec(select(Change).order_by(col(Change.id))).all()
        say(f"\n== {len(changes)} changes found")
        for change in changes:
            say("\n" + describe_change(session, change))
        return len(changes)


def run_demo(workdir: Path = ROOT / "var" / "demo", say: Callable[[str], None] = print) -> int:
    with LoopbackServer(DEMO) as server:
        port = int(server.url.rsplit(":", 1)[1])
        settings = prepare(workdir, port)
        sources = load_sources(settings.sources_path)
        engine = open_database(settings.database_url)
        say(f"fixture server: {server.url} (serving {DEMO.relative_to(ROOT)})")
        server.set_version(1)
        print_summary("pass 1 (baseline)", run_crawl(engine, settings, list(sources.values())), say)
        server.set_version(2)
        print_summary(
            "pass 2 (next recorded versions)",
            run_crawl(engine, settings, list(sources.values())),
            say,
        )
    count = print_changes(engine, say)
    report = send_pending(engine, settings, sources, datetime.now(UTC))
    say(f"\n== alerts: {describe_report(report, settings)}")
    emails = sorted(settings.outbox_dir.glob("*.eml"))
    say(f"\nalert emails ({len(emails)}):")
    for path in emails:
        say(f"   {path}")
    now = datetime.now(UTC)
    site = build_site(
        engine,
        settings,
        sources,
        workdir / "site",
        since=now - timedelta(days=7),
        now=now,
        window="the last 7 days",
    )
    say(f"history database: {workdir / 'fdawatch.db'}")
    say(
        f"try: .venv/bin/fdawatch --database sqlite:///{workdir / 'fdawatch.db'} "
        f"--sources {settings.sources_path} --config {settings.config_path} changes"
    )
    say(f"digest: {site.index}")
    say(
        f"links in the emails open once the site is served: .venv/bin/fdawatch serve "
        f"--dir {workdir / 'site'} --port 8000, then {settings.site_url}"
    )
    engine.dispose()
    return count


if __name__ == "__main__":
    run_demo()
