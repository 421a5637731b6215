"""`fdawatch alerts …`: drain the outbox, inspect it, preview an alert.

The commands only need `ctx.obj` to provide `settings`, `history()`, `engine()`, `sources()` and
`now()` (`App`), so they can be tested and registered without the rest of the CLI. None of them
creates a database: `send` on a history that does not exist is an error naming it, not "nothing
to send".
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session, col, select

from db.models import Alert
from monitor.cli.app import App, sources_for_rendering, table
from monitor.config import Settings
from monitor.db_errors import write_failure_message
from monitor.delivery.alerts import SendReport, send_pending
from monitor.delivery.mailer import mailer_for, write_eml
from monitor.errors import CommandError, DeliveryError
from monitor.errors import DatabaseError as HistoryUnavailable


def describe_report(report: SendReport, settings: Settings) -> str:
    """The one-line outcome of a send run, telling how to configure SMTP when it is missing."""
    if report.nothing_due:
        return "nothing to send: no alerts are due"
    tail = f"{report.retry_emails} to retry later; {report.failed_emails} failed"
    if settings.smtp is None:
        plural = "s" if report.emails != 1 else ""
        paths = " ".join(report.delivered) or "-"
        return (
            f"wrote {report.emails} email{plural} to {report.via} (no SMTP configured: set "
            f"FDAWATCH_SMTP_HOST or FDAWATCH_SMTP_URL to send): {paths}; {tail}"
        )
    plural = "s" if report.emails != 1 else ""
    alerts_plural = "s" if report.alerts != 1 else ""
    return (
        f"sent {report.emails} email{plural} ({report.alerts} alert{alerts_plural}) "
        f"via {report.via}; {tail}"
    )


def send_and_report(app: App) -> SendReport:
    """Drain the outbox once and print the outcome; `crawl` calls this after recording."""
    settings = app.settings
    try:
        report = send_pending(
            app.engine(), settings, sources_for_rendering(app), app.now(), mailer_for(settings)
        )
    except DatabaseError as error:  # a read-only file, a full disk, a busy one: one line
        raise HistoryUnavailable(
            write_failure_message(
                error,
                settings.database_url,
                "the outbox keeps every alert not marked sent (a re-send keeps its Message-ID): "
                "check that the file and its folder are writable and the disk is not full, then "
                "run `fdawatch alerts send` again",
            )
        ) from None
    print_report(report, settings)
    return report


def print_report(report: SendReport, settings: Settings, *, quiet_when_idle: bool = False) -> None:
    """The outcome line, each delivery error, and a warning per health notice nobody received.

    `quiet_when_idle` (`run --once`, for cron): no line when there was nothing to send.
    """
    if not (quiet_when_idle and report.nothing_due):
        click.echo(describe_report(report, settings))
    for error in report.errors:
        click.echo(f"  {error}", err=True)
    for untold in report.untold:
        click.echo(f"fdawatch: warning: {untold}", err=True)


@click.group("alerts")
def alerts() -> None:
    """Email alerts: send the queued ones, list the outbox, preview one change's email.

    Example: fdawatch alerts list --failed
    """


@alerts.command("send")
@click.pass_obj
def send_command(app: App) -> None:
    """Send every due alert: one email per recipient, retrying temporary failures later.

    Without SMTP settings the emails are written as .eml files to the outbox folder.

    Example: fdawatch alerts send
    """
    app.history()  # an existing history, or an error naming the database
    send_and_report(app)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _row_dict(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "status": alert.status,
        "kind": alert.kind,
        "recipient": alert.recipient,
        "severity": alert.severity,
        "change_id": alert.change_id,
        "source_id": alert.source_id,
        "attempts": alert.attempts,
        "next_attempt_at": _iso(alert.next_attempt_at),
        "message_id": alert.message_id,
        "last_error": alert.last_error,
        "created_at": _iso(alert.created_at),
        "sent_at": _iso(alert.sent_at),
    }


@alerts.command("list")
@click.option("--failed", "only_failed", is_flag=True, help="Only alerts that failed for good.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Newest N rows."
)
@click.pass_obj
def list_command(app: App, only_failed: bool, as_json: bool, limit: int) -> None:
    """List outbox rows, newest first: status, recipient, severity, change, attempts, last error.

    Example: fdawatch alerts list --failed
    """
    query = select(Alert).order_by(col(Alert.id).desc()).limit(limit)
    if only_failed:
        query = query.where(Alert.status == "failed")
    with Session(app.history()) as session:
        rows = session.exec(query).all()
    if as_json:
        for row in rows:
            click.echo(json.dumps(_row_dict(row)))
        return
    if not rows:
        click.echo("no failed alerts" if only_failed else "the outbox is empty")
        return
    from monitor.delivery.render import header_text

    cells = [
        [
            str(row.id),
            row.status,
            row.recipient,
            row.severity,
            str(row.change_id) if row.change_id is not None else row.kind,
            str(row.attempts),
            header_text(row.last_error or "", limit=80),
        ]
        for row in rows
    ]
    click.echo(
        table(cells, ["id", "status", "recipient", "severity", "change", "attempts", "last error"])
    )


@alerts.command("preview")
@click.argument("change_id", type=int)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the .eml (default: var/preview-<id>.eml).",
)
@click.pass_obj
def preview_command(app: App, change_id: int, out: Path | None) -> None:
    """Write the alert email one change produces to an .eml file, without sending or queueing.

    Open the file in a mail client to check how an alert looks.

    Example: fdawatch alerts preview 42 --out /tmp/alert-42.eml
    """
    from monitor.delivery.compose import preview

    settings = app.settings
    with Session(app.history()) as session:
        message = preview(session, change_id, settings, sources_for_rendering(app), app.now())
    path = out or settings.var_dir / f"preview-{change_id}.eml"
    try:
        write_eml(message, path)
    except DeliveryError as error:
        raise CommandError(f"{error.reason}; pick another --out") from None
    click.echo(str(path))
