"""`fdawatch changes`, `fdawatch show` and `fdawatch history`: reading the history."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlmodel import Session

from db.models import Change, Snapshot, Source
from monitor.cli.app import App, parse_since, table
from monitor.errors import NotFound
from monitor.history import queries


def change_record(change: Change, url: str) -> dict[str, Any]:
    return {
        "id": change.id,
        "source": change.source_id,
        "document_key": change.doc_key,
        "kind": change.kind,
        "severity": change.severity,
        "detected_at": change.detected_at.isoformat(),
        "title": change.title,
        "summary": change.summary,
        "url": url,
        "matched_terms": change.matched_terms,
        "sections": change.sections,
    }


@click.command("changes")
@click.option("--since", help="Only changes detected since: 7d, 24h, 2w or an ISO date.")
@click.option("--source", "source_id", help="Only this source id.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON lines: id, source, document_key, kind, severity, detected_at …",
)
@click.pass_obj
def changes_command(app: App, since: str | None, source_id: str | None, as_json: bool) -> None:
    """List detected changes, newest first.

    Example: fdawatch changes --since 7d --json
    """
    cutoff = parse_since(since, app.now())
    with Session(app.engine()) as session:
        changes = queries.changes(session, since=cutoff, source_id=source_id)
        if as_json:
            for change in changes:
                click.echo(json.dumps(change_record(change, queries.change_url(session, change))))
            return
    if not changes:
        click.echo("no changes" + (f" since {cutoff:%Y-%m-%d %H:%M} UTC" if cutoff else ""))
        return
    rows = [
        [
            str(c.id),
            f"{c.detected_at:%Y-%m-%d %H:%M}",
            c.severity,
            c.kind,
            c.source_id,
            c.summary[:80],
        ]
        for c in changes
    ]
    click.echo(table(rows, ["id", "detected (UTC)", "tier", "kind", "source", "summary"]))


def _get_or_fail(session: Session, model: type, key: Any, what: str, hint: str) -> Any:
    row = session.get(model, key)
    if row is None:
        raise NotFound(f"no {what} {key!r}; {hint}")
    return row


def describe_change(session: Session, change: Change) -> str:
    """The text `fdawatch show` prints: what changed, where, how severe and why, and the diff."""
    old = session.get(Snapshot, change.old_snapshot_id) if change.old_snapshot_id else None
    new = session.get(Snapshot, change.new_snapshot_id) if change.new_snapshot_id else None
    lines = [
        f"change {change.id}: {change.kind} — {change.severity} — {change.title}",
        f"source:    {change.source_id}",
        f"url:       {queries.change_url(session, change)}",
        f"detected:  {change.detected_at:%Y-%m-%d %H:%M:%S} UTC",
        f"previous:  {old.fetched_at:%Y-%m-%d %H:%M:%S} UTC (sha256 {old.sha256[:12]})"
        if old
        else "previous:  (none: first seen)",
        f"current:   {new.fetched_at:%Y-%m-%d %H:%M:%S} UTC (sha256 {new.sha256[:12]})"
        if new
        else "current:   (removed)",
        f"summary:   {change.summary}",
        f"terms:     {', '.join(change.matched_terms) or '(none)'}",
        "why " + change.severity + ":",
        *[f"  - {reason}" for reason in change.severity_reasons],
        "",
        change.diff or "(no textual diff)",
    ]
    return "\n".join(lines)


@click.command("show")
@click.argument("change_id", type=int)
@click.pass_obj
def show_command(app: App, change_id: int) -> None:
    """Show one change: source, times, severity with its reasons, and the diff.

    Example: fdawatch show 12
    """
    with Session(app.engine()) as session:
        change = _get_or_fail(session, Change, change_id, "change", "`fdawatch changes` lists them")
        click.echo(describe_change(session, change))


@click.command("history")
@click.argument("source_id")
@click.option(
    "--limit",
    type=int,
    default=20,
    show_default=True,
    help="How many versions, changes and fetches to show.",
)
@click.pass_obj
def history_command(app: App, source_id: str, limit: int) -> None:
    """Show a source's stored versions, changes and recent fetches.

    Example: fdawatch history fda_spravato_rems
    """
    with Session(app.engine()) as session:
        source = _get_or_fail(
            session,
            Source,
            source_id,
            "source in the history",
            "crawl it first or check `fdawatch sources`",
        )
        click.echo(f"{source.id} ({source.kind}) {source.url}")
        click.echo(
            f"health: {source.health}, failures in a row: {source.consecutive_failures}, "
            f"last success: {source.last_success_at or 'never'}"
        )
        found = queries.source_history(session, source_id, limit=limit)
        snapshots, changes, fetches = found.snapshots, found.changes, found.fetches
        click.echo(f"\nversions ({len(snapshots)} newest):")
        for snap in snapshots:
            click.echo(
                f"  {snap.id:>5}  {snap.fetched_at:%Y-%m-%d %H:%M}  "
                f"{snap.sha256[:12]}  {snap.title[:70]}"
            )
        click.echo(f"\nchanges ({len(changes)} newest):")
        for change in changes:
            click.echo(
                f"  {change.id:>5}  {change.detected_at:%Y-%m-%d %H:%M}  {change.severity}  "
                f"{change.kind:<7}  {change.summary[:70]}"
            )
        click.echo(f"\nfetches ({len(fetches)} newest):")
        for fetch in fetches:
            click.echo(
                f"  {fetch.fetched_at:%Y-%m-%d %H:%M}  {fetch.outcome:<12}  "
                f"{fetch.http_status or '':>3}  {fetch.error or ''}"
            )
