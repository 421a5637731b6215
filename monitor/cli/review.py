"""`fdawatch ack` and `fdawatch audit`: reviews on record, and the export for auditors."""

from __future__ import annotations

from pathlib import Path

import click
from sqlmodel import Session

from monitor.cli.app import App, parse_since
from monitor.errors import CommandError
from monitor.review import audit
from monitor.review.records import DISPOSITIONS, acknowledge
from monitor.site.evidence import write_atomic


@click.command("ack")
@click.argument("change_ids", metavar="CHANGE_ID…", nargs=-1, required=True, type=int)
@click.option("--by", "reviewer", required=True, metavar="EMAIL", help="Who reviewed them.")
@click.option(
    "--disposition",
    required=True,
    type=click.Choice(DISPOSITIONS),
    help="What was decided: no-action, action-needed or done.",
)
@click.option("--note", default="", metavar="TEXT", help="Why, or what was done (kept as is).")
@click.pass_obj
def ack_command(
    app: App, change_ids: tuple[int, ...], reviewer: str, disposition: str, note: str
) -> None:
    """Record a review of changes: who, when, disposition and note (earlier reviews kept).

    A later `ack` of the same change records a new review, which becomes its current one; the
    earlier ones stay in `fdawatch audit`. Reviewing a change never mutes later changes.

    Example: fdawatch ack 12 13 --by qa@pharmacy.example --disposition no-action --note "typo fix"
    """
    with Session(app.history()) as session:
        reviews = acknowledge(
            session,
            list(change_ids),
            reviewer=reviewer,
            disposition=disposition,
            note=note,
            now=app.now(),
        )
        session.commit()
        for review in reviews:
            click.echo(
                f"change {review.change_id}: acknowledged by {review.reviewer} "
                f"({review.disposition})"
            )


@click.command("audit")
@click.option(
    "--since",
    default="90d",
    show_default=True,
    help="Deliveries queued since: 90d, 24h, 2w or an ISO date.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="csv (a header, one row per delivery) or json (one object per line).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (default: print it).",
)
@click.pass_obj
def audit_command(app: App, since: str, output_format: str, out: Path | None) -> None:
    """Export every alert delivered or refused about a change, with the change's review.

    Columns: change_id, source, severity, detected_at, kind (change or escalation), recipient,
    status (sent or failed), sent_at, message_id, smtp_reply (the server's refusal), and the
    current review: review_state, reviewer, reviewed_at, disposition, note. Times are UTC.

    Example: fdawatch audit --since 90d --format csv --out audit.csv
    """
    cutoff = parse_since(since, app.now())
    with Session(app.history()) as session:
        rows = audit.audit_rows(session, cutoff)
    text = audit.as_csv(rows) if output_format == "csv" else audit.as_json_lines(rows)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        # UTF-8 with a byte-order mark: spreadsheets then read accents and dashes right
        write_atomic(out, text.encode("utf-8-sig" if output_format == "csv" else "utf-8"))
    except OSError as error:
        raise CommandError(
            f"cannot write {out}: {error.strerror or error}; pick another --out"
        ) from None
    click.echo(f"{len(rows)} deliveries since {cutoff:%Y-%m-%d %H:%M} UTC: {out}", err=True)
