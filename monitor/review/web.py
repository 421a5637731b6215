"""The review web app behind `fdawatch serve`: the digest site, review links, the review queue.

Flask, because it is synchronous like the rest of fdawatch (SQLModel sessions are used as they
are, one per request) and small; `monitor.review.server` runs it on waitress. Opening a review
link (GET) only shows the change and a form: mail scanners prefetch links, so nothing is ever
recorded by a GET. Submitting the form (POST) records the review; it must carry the link's
signature and the CSRF token the page set in this browser's session cookie, and come from this
site (Origin), so another site cannot submit it for the reviewer.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, redirect, request, send_from_directory, session
from sqlalchemy import Engine
from sqlmodel import Session

from db.models import Change
from monitor.config import Settings
from monitor.delivery.render import environment
from monitor.errors import FdawatchError
from monitor.review import records
from monitor.review.links import LinkRefused, verify

QUEUE_SEVERITIES = ("T1", "T2", "T3")
MAX_DIFF_LINES = 200


def _page(name: str, status: int = 200, **context: Any) -> Response:
    html = environment().get_template(f"web/{name}").render(**context)
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(reason: str, status: int = 403) -> Response:
    return _page("refused.html.j2", status=status, reason=reason)


def create_app(
    settings: Settings,
    history: Callable[[], Engine],
    site_dir: Path | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Flask:
    """The app; `history` opens the database on first use (a site alone needs none)."""
    app = Flask("fdawatch", static_folder=None)
    # The session cookie only carries the CSRF token; without a key, review links are off too.
    app.secret_key = settings.review.secret_key or secrets.token_hex(32)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict")

    def database() -> Session:
        try:
            return Session(history())
        except FdawatchError as error:
            abort(_refused(str(error), 503))

    def change_context(db: Session, change_id: int) -> dict[str, Any]:
        change = db.get(Change, change_id)
        if change is None:
            abort(_refused(f"there is no change {change_id} in this history", 404))
        diff = change.diff.splitlines()
        return {
            "change": change,
            "diff_lines": diff[:MAX_DIFF_LINES],
            "diff_more": max(0, len(diff) - MAX_DIFF_LINES),
            "told": records.who_was_told(db, change_id),
            "reviews": records.review_history(db, change_id),
            "dispositions": records.DISPOSITIONS,
        }

    def check_link(change_id: int, values: Any) -> tuple[str, str]:
        recipient, sig = values.get("to", ""), values.get("sig", "")
        try:
            verify(settings.review, change_id, recipient, sig, now())
        except LinkRefused as refused:
            abort(_refused(refused.reason))
        return recipient, sig

    @app.get("/review/<int:change_id>")
    def review_form(change_id: int) -> Response:
        recipient, sig = check_link(change_id, request.args)
        token = session.setdefault("csrf", secrets.token_urlsafe(32))
        with database() as db:
            context = change_context(db, change_id)
        return _page("review.html.j2", to=recipient, sig=sig, csrf=token, **context)

    @app.post("/review/<int:change_id>")
    def record_review(change_id: int) -> Response:
        recipient, _ = check_link(change_id, request.form)
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            return _refused(f"the form was sent from {origin}, not from this site")
        expected = session.get("csrf")
        if not expected or not secrets.compare_digest(expected, request.form.get("csrf", "")):
            return _refused(
                "the form's security token does not match this browser's: open the link again "
                "and submit from that page"
            )
        with database() as db:
            try:
                records.acknowledge(
                    db,
                    [change_id],
                    reviewer=recipient,
                    disposition=request.form.get("disposition", ""),
                    note=request.form.get("note", ""),
                    now=now(),
                    via="web",
                )
            except FdawatchError as error:
                return _refused(str(error), 400)
            db.commit()
        return redirect(f"/change/{change_id}?reviewed=1", code=303)

    @app.get("/change/<int:change_id>")
    def change_page(change_id: int) -> Response:
        with database() as db:
            context = change_context(db, change_id)
        return _page("change.html.j2", reviewed=request.args.get("reviewed") == "1", **context)

    @app.get("/queue")
    def queue() -> Response:
        with database() as db:
            rows = [
                (change, records.who_was_told(db, change.id or 0))
                for change in records.open_changes(db, QUEUE_SEVERITIES)
            ]
        return _page("queue.html.j2", rows=rows, now=now())

    @app.get("/")
    @app.get("/<path:path>")
    def site(path: str = "index.html") -> Response:
        if site_dir is None or not (site_dir / "index.html").is_file():
            abort(404)
        if path.endswith("/"):
            path += "index.html"
        response = send_from_directory(site_dir, path)
        if path.endswith(".atom"):
            response.headers["Content-Type"] = "application/atom+xml"
        return response

    return app
