"""`fdawatch ack`: record who reviewed changes and what they decided (issue 16)."""

from __future__ import annotations

import click
from sqlmodel import Session

from monitor.cli.app import App
from monitor.review.records import DISPOSITIONS, acknowledge


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
