"""`fdawatch sources` (the watched sources, or a live preflight) and `fdawatch crawl`."""

from __future__ import annotations

import json
import sys

import click

from monitor.cli.app import App, table, warn_about_sources
from monitor.sources import select as select_sources

#: The health shown for a source the history has never recorded (never crawled there).
NEW = "new"


def one_shot(app: App) -> bool:
    """Whether Scrapy may crawl in this process: it is `fdawatch` itself and has not crawled."""
    return bool(getattr(app, "one_shot", False)) and "twisted.internet.reactor" not in sys.modules


@click.command("sources")
@click.argument("source_ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--check",
    is_flag=True,
    help="Preflight: one request per source, a verdict each (ok, blocked, drift, wrong type, "
    "not found, moved → URL or the error); exit 1 when any is not ok. Records nothing.",
)
@click.option(
    "--timeout", type=float, default=300, show_default=True, help="Seconds the check may take."
)
@click.pass_obj
def sources_command(
    app: App, source_ids: tuple[str, ...], as_json: bool, check: bool, timeout: float
) -> None:
    """List the watched sources from sources.toml with their health, or check them live.

    Health "new" means never crawled into this database. A warning says when the database holds
    sources the file lacks (a --sources or --database that do not belong together). Run
    `--check` on the production host before the first crawl: FDA's CDN answers differently
    depending on where a request comes from. Nothing is written to the history.

    Example: fdawatch sources --check fda_spravato_rems fda_medwatch_rss
    """
    if check:
        _check_sources(app, source_ids, as_json, timeout)
        return
    from db.source_health import source_health

    sources = app.sources()
    if source_ids:
        sources = {source.id: source for source in select_sources(sources, list(source_ids))}
    stored = source_health(app.history())
    warn_about_sources(app, stored, app.sources())
    # "unknown": registered by a crawl that never got to fetch it; also never checked here
    health = {sid: stored.get(sid, "unknown") for sid in sources}
    health = {sid: NEW if value == "unknown" else value for sid, value in health.items()}
    if as_json:
        for source in sources.values():
            click.echo(json.dumps({**source.to_dict(), "health": health[source.id]}))
        return
    cells = [
        [s.id, s.kind, s.tier, s.cron or s.interval, health[s.id], s.url] for s in sources.values()
    ]
    click.echo(table(cells, ["id", "kind", "tier", "every", "health", "url"]))
    never = sum(1 for value in health.values() if value == NEW)
    if never:
        click.echo(f"{never} new: never crawled into this database; `fdawatch crawl ID` checks one")


def _check_sources(app: App, source_ids: tuple[str, ...], as_json: bool, timeout: float) -> None:
    from monitor.runtime.preflight import check_here, check_in_child

    chosen = select_sources(app.sources(), list(source_ids))
    in_process = one_shot(app)
    check = check_here if in_process else check_in_child
    results = check(app.settings, chosen, timeout)
    if as_json:
        for result in results:
            click.echo(json.dumps(result.to_dict()))
    else:
        rows = [[r.source_id, r.verdict, str(r.http_status or ""), r.detail[:90]] for r in results]
        click.echo(table(rows, ["source", "verdict", "http", "detail"]))
        bad = sum(1 for r in results if not r.ok)
        click.echo(
            f"{len(results) - bad} of {len(results)} sources ok"
            + ("; see the README, 'When FDA blocks fdawatch', for what to do" if bad else "")
        )
    if any(not r.ok for r in results):
        sys.exit(1)


@click.command("crawl")
@click.argument("source_ids", nargs=-1)
@click.option("--all", "crawl_all", is_flag=True, help="Crawl every source in sources.toml.")
@click.option("--no-send", is_flag=True, help="Do not run `alerts send` after the crawl.")
@click.option(
    "--timeout",
    type=float,
    default=1800,
    show_default=True,
    help="Seconds before the crawl process is stopped.",
)
@click.pass_obj
def crawl_command(
    app: App, source_ids: tuple[str, ...], crawl_all: bool, no_send: bool, timeout: float
) -> None:
    """Fetch sources once (one Scrapy process for all of them) and record what changed.

    Prints one line per source (ok / not_modified / gone / failed / drift) and the run's
    counts, then sends the alerts the changes raised (see `fdawatch alerts send`).

    Example: fdawatch crawl fda_ketamine_oral_alert fda_medwatch_rss
    """
    from monitor.runtime.crawl import run_crawl

    if not source_ids and not crawl_all:
        raise click.UsageError("name source ids (see `fdawatch sources`) or pass --all")
    chosen = select_sources(app.sources(), list(source_ids))
    in_process = one_shot(app)
    summary = run_crawl(app.engine(), app.settings, chosen, timeout=timeout, in_process=in_process)
    rows = [
        [
            r.source_id,
            r.outcome,
            str(r.http_status or ""),
            str(r.documents),
            str(r.changes),
            (r.error or "")[:70],
        ]
        for r in summary.results
    ]
    click.echo(table(rows, ["source", "outcome", "http", "docs", "changes", "error"]))
    click.echo(
        f"run {summary.run_id} {summary.status}: checked {summary.checked}, unchanged "
        f"{summary.unchanged}, changed {summary.changed}, failed {summary.failed}"
    )
    if summary.status != "finished":
        click.echo(f"the crawl process {summary.status}:\n{summary.stderr_tail}", err=True)
    if not no_send:
        from monitor.cli.alerts import send_and_report

        send_and_report(app)
    if summary.status != "finished":
        sys.exit(1)
