"""The `fdawatch` command: a thin click layer over the monitor's Python API.

Every command's docstring is its `--help` and ends with an example. Bad input (a broken
sources.toml, an unknown source id, a bad setting) is reported in one line naming it, with exit
code 2, before anything is written to the history. One module per command family:
`sources` (sources, crawl), `changes` (changes, show, history), `alerts`, `digest` (digest,
serve, evidence), `run` (run, status), `labels` (label-sections), `review` (ack, audit); each loads
only when named.
"""

from __future__ import annotations

import click

from monitor.cli.app import AppContext, FdawatchGroup
from monitor.runtime.collector import collect_less

#: Command name → "module:attribute" (click's lazy-group recipe).
COMMANDS = {
    "sources": "monitor.cli.sources:sources_command",
    "crawl": "monitor.cli.sources:crawl_command",
    "changes": "monitor.cli.changes:changes_command",
    "show": "monitor.cli.changes:show_command",
    "history": "monitor.cli.changes:history_command",
    "alerts": "monitor.cli.alerts:alerts",
    "digest": "monitor.cli.digest:digest_command",
    "serve": "monitor.cli.digest:serve_command",
    "evidence": "monitor.cli.digest:evidence_command",
    "run": "monitor.cli.run:run_command",
    "status": "monitor.cli.run:status_command",
    "label-sections": "monitor.cli.labels:label_sections",
    "ack": "monitor.cli.review:ack_command",
    "audit": "monitor.cli.review:audit_command",
}
#: What `fdawatch --help` lists, so it need not import every command (and SQLAlchemy, Jinja,
#: APScheduler with them); each is its command's first sentence, which a test checks.
SUMMARIES = {
    "ack": "Record a review of changes: who, when, disposition and note (earlier reviews kept).",
    "audit": "Export every alert delivered or refused about a change, with the change's review.",
    "alerts": "Email alerts: send the queued ones, list the outbox, preview one change's email.",
    "changes": "List detected changes, newest first.",
    "crawl": "Fetch sources once (one Scrapy process for all of them) and record what changed.",
    "digest": "Write the digest site: index, one page per change and per source, Atom feed, "
    "evidence.",
    "evidence": "Write a change's evidence bundle: raw bodies as fetched, texts, diff, "
    "manifest.json.",
    "history": "Show a source's health, stored versions, changes and recent fetches.",
    "label-sections": "Print the sections of an SPL XML or openFDA label JSON FILE as JSON lines.",
    "run": "Crawl every source on its schedule (interval or cron, from sources.toml) until "
    "stopped.",
    "serve": "Serve the digest site, review links and the review queue (/queue) until Ctrl-C.",
    "show": "Show one change: source, times, severity with its reasons, and the diff.",
    "sources": "List the watched sources from sources.toml with their health, or check them "
    "live.",
    "status": "Show each source's health: failures in a row, last check, success and change, "
    "next check.",
}
#: Passed as `obj` by `main`: this process is the `fdawatch` command itself.
ONE_SHOT = "fdawatch-one-shot"


@click.group(cls=FdawatchGroup, lazy_subcommands=COMMANDS, summaries=SUMMARIES)
@click.option(
    "--sources",
    "sources_path",
    metavar="PATH",
    help="sources.toml to use (default: ./sources.toml or $FDAWATCH_SOURCES).",
)
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    help="SQLAlchemy URL (default: sqlite:///var/fdawatch.db or $FDAWATCH_DATABASE_URL).",
)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="fdawatch.toml to use: recipients, mail, crawl politeness (default: ./fdawatch.toml "
    "or $FDAWATCH_CONFIG).",
)
@click.version_option(package_name="fdawatch")
@click.pass_context
def cli(
    ctx: click.Context, sources_path: str | None, database_url: str | None, config_path: str | None
) -> None:
    """fdawatch: watch FDA communications on compounded ketamine and esketamine (Spravato).

    Commands that only read (changes, show, history, status, sources, alerts list, digest,
    evidence) never create a database: `fdawatch crawl` does.

    Example: fdawatch crawl --all && fdawatch changes --since 7d
    """
    ctx.obj = AppContext(sources_path, database_url, config_path, one_shot=ctx.obj == ONE_SHOT)


def main() -> None:
    collect_less()  # a one-shot command; `run` (the daemon) restores CPython's default
    cli(prog_name="fdawatch", obj=ONE_SHOT)
