"""`fdawatch changes`, `fdawatch show` and `fdawatch history`: reading the history."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import click
from sqlmodel import Session

from db.models import Change, Review, Snapshot, Source
from monitor.cli.app import App, clip, parse_since, table, when
from monitor.config import SEVERITIES
from monitor.errors import NotFound, SourcesError
from monitor.history import queries
from monitor.review.records import current_reviews, review_record


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


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _known_source(app: App, session: Session, source_id: str) -> None:
    """`--source ID` must name a source of the history or of sources.toml, not a typo."""
    if session.get(Source, source_id) is not None:
        return
    configured: dict[str, Any] = {}
    with contextlib.suppress(SourcesError):  # a broken file must not hide the stored changes
        configured = app.sources()
    if source_id not in configured:
        raise NotFound(
            f"no source {source_id!r} in the history or in {app.settings.sources_path}; "
            "`fdawatch sources` lists them"
        )


@click.command("changes")
@click.option("--since", help="Only changes detected since: 7d, 24h, 2w or an ISO date.")
@click.option("--source", "source_id", help="Only this source id.")
@click.option(
    "--min-severity",
    type=click.Choice(SEVERITIES),
    help="Only changes at least this severe (T1 critical … T5 noise).",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most N changes, the newest.")
@click.option("--open", "open_only", is_flag=True, help="Only changes nobody has reviewed yet.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON lines: id, source, document_key, kind, severity, detected_at, review …",
)
@click.pass_obj
def changes_command(
    app: App,
    since: str | None,
    source_id: str | None,
    min_severity: str | None,
    limit: int | None,
    open_only: bool,
    as_json: bool,
) -> None:
    """List detected changes, newest first.

    Each change shows its review: `open`, or the newest `fdawatch ack` (who, disposition).

    Example: fdawatch changes --since 7d --min-severity T2 --open
    """
    cutoff = parse_since(since, app.now())
    with Session(app.history()) as session:
        if source_id:
            _known_source(app, session, source_id)
        changes = queries.changes(
            session,
            since=cutoff,
            source_id=source_id,
            min_severity=min_severity,
            limit=limit,
            open_only=open_only,
        )
        reviews = current_reviews(session, [c.id for c in changes if c.id is not None])
        if as_json:
            for change in changes:
                record = change_record(change, queries.change_url(session, change))
                record["review"] = review_record(reviews.get(change.id or 0))
                click.echo(json.dumps(record))
            return
    if not changes:
        nothing = "no open changes" if open_only else "no changes"
        click.echo(nothing + (f" since {cutoff:%Y-%m-%d %H:%M} UTC" if cutoff else ""))
        return
    rows = [
        [
            str(c.id),
            when(c.detected_at),
            c.severity,
            c.kind,
            c.source_id,
            _review_cell(reviews.get(c.id or 0)),
            clip(c.summary, 70),
        ]
        for c in changes
    ]
    headers = ["id", "detected (UTC)", "tier", "kind", "source", "review", "summary"]
    click.echo(table(rows, headers))


def _review_cell(review: Review | None) -> str:
    return f"{review.disposition} ({review.reviewer})" if review else "open"


def _get_or_fail(session: Session, model: type, key: Any, what: str, hint: str) -> Any:
    row = session.get(model, key)
    if row is None:
        raise NotFound(f"no {what} {key!r}; {hint}")
    return row


def _versions(session: Session, change: Change) -> tuple[Snapshot | None, Snapshot | None]:
    old = session.get(Snapshot, change.old_snapshot_id) if change.old_snapshot_id else None
    new = session.get(Snapshot, change.new_snapshot_id) if change.new_snapshot_id else None
    return old, new


def describe_change(session: Session, change: Change) -> str:
    """The text `fdawatch show` prints: what changed, where, how severe and why, and the diff."""
    old, new = _versions(session, change)
    lines = [
        f"change {change.id}: {change.kind} — {change.severity} — {change.title}",
        f"source:    {change.source_id}",
        f"url:       {queries.change_url(session, change)}",
        f"detected:  {when(change.detected_at)} UTC",
        f"previous:  {when(old.fetched_at)} UTC (sha256 {old.sha256[:12]})"
        if old
        else "previous:  (none: first seen)",
        f"current:   {when(new.fetched_at)} UTC (sha256 {new.sha256[:12]})"
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


def _snapshot_record(snapshot: Snapshot | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {"fetched_at": _iso(snapshot.fetched_at), "sha256": snapshot.sha256, "url": snapshot.url}


@click.command("show")
@click.argument("change_id", type=int)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object: the fields of `changes --json`, reasons, both versions and the diff.",
)
@click.pass_obj
def show_command(app: App, change_id: int, as_json: bool) -> None:
    """Show one change: source, times, severity with its reasons, and the diff.

    Example: fdawatch show 12
    """
    with Session(app.history()) as session:
        change = _get_or_fail(session, Change, change_id, "change", "`fdawatch changes` lists them")
        if not as_json:
            click.echo(describe_change(session, change))
            return
        old, new = _versions(session, change)
        record = {
            **change_record(change, queries.change_url(session, change)),
            "severity_reasons": change.severity_reasons,
            "previous": _snapshot_record(old),
            "current": _snapshot_record(new),
            "diff": change.diff,
        }
    click.echo(json.dumps(record, ensure_ascii=False))


@click.command("history")
@click.argument("source_id")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many versions, changes and fetches to show (the newest).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object: the source's health, versions, changes and fetches.",
)
@click.pass_obj
def history_command(app: App, source_id: str, limit: int, as_json: bool) -> None:
    """Show a source's health, stored versions, changes and recent fetches. Times are UTC.

    Example: fdawatch history fda_spravato_rems --limit 5
    """
    with Session(app.history()) as session:
        source = _get_or_fail(
            session,
            Source,
            source_id,
            "source in the history",
            "crawl it first or check `fdawatch sources`",
        )
        found = queries.source_history(session, source_id, limit=limit)
        documents = [
            [
                "removed" if document.removed_at else "current",
                str(current.meta.get("content_type") or source.kind),
                clip(current.title, 50),
                document.doc_key,
            ]
            for document, current in queries.documents(session, source_id)[:limit]
        ]
        if as_json:
            click.echo(json.dumps(_history_record(session, source, found), ensure_ascii=False))
            return
    click.echo(f"{source.id} ({source.kind}) {source.url}")
    click.echo(
        f"health: {source.health}, failures in a row: {source.consecutive_failures}, "
        f"last success: {when(source.last_success_at)}"
    )
    _section(
        f"versions ({len(found.snapshots)} newest)",
        [[when(s.fetched_at), s.sha256[:12], clip(s.title, 70)] for s in found.snapshots],
        ["fetched (UTC)", "sha256", "title"],
    )
    if len(documents) > 1:  # a page with linked PDFs, a feed, a result set: list what it holds
        _section(f"documents ({len(documents)})", documents, ["state", "type", "title", "key"])
    _section(
        f"changes ({len(found.changes)} newest)",
        [
            [str(c.id), when(c.detected_at), c.severity, c.kind, clip(c.summary, 70)]
            for c in found.changes
        ],
        ["change", "detected (UTC)", "tier", "kind", "summary"],
    )
    _section(
        f"fetches ({len(found.fetches)} newest)",
        [
            [when(f.fetched_at), f.outcome, str(f.http_status or ""), clip(f.error or "", 70)]
            for f in found.fetches
        ],
        ["fetched (UTC)", "outcome", "http", "error"],
    )


def _section(title: str, rows: list[list[str]], headers: list[str]) -> None:
    click.echo(f"\n{title}:")
    if rows:
        click.echo("\n".join("  " + line for line in table(rows, headers).splitlines()))


def _history_record(session: Session, source: Source, found: queries.SourceHistory) -> dict:
    return {
        "source": source.id,
        "kind": source.kind,
        "url": source.url,
        "health": source.health,
        "failures_in_row": source.consecutive_failures,
        "last_success_at": _iso(source.last_success_at),
        "versions": [
            {"fetched_at": _iso(s.fetched_at), "sha256": s.sha256, "title": s.title, "url": s.url}
            for s in found.snapshots
        ],
        "changes": [
            change_record(change, queries.change_url(session, change)) for change in found.changes
        ],
        "fetches": [
            {
                "fetched_at": _iso(f.fetched_at),
                "outcome": f.outcome,
                "http_status": f.http_status,
                "error": f.error,
            }
            for f in found.fetches
        ],
    }
