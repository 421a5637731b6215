"""Review records: who reviewed a change, when, and what they decided (append-only).

A change with no review is `open`; each `acknowledge` adds a row, so a re-review changes the
change's current review (the newest row) while the earlier ones stay on record. Reviews belong
to one change: a later change of the same document is open again, so acknowledging never mutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from db.engine import IN_LIST_MAX, in_batches
from db.models import Alert, Change, Review
from monitor.config import is_email
from monitor.errors import FdawatchError, NotFound

DISPOSITIONS = ("no-action", "action-needed", "done")
OPEN = "open"
ACKNOWLEDGED = "acknowledged"
MAX_NOTE = 4000


class ReviewError(FdawatchError, ValueError):
    """A review that cannot be recorded: the message names the bad input."""


def check_review(reviewer: str, disposition: str, note: str) -> str:
    """The cleaned note; `ReviewError` naming the reviewer, disposition or note when bad."""
    if not is_email(reviewer):
        raise ReviewError(
            f"--by {reviewer!r} is not an email address: give the reviewer's, like "
            "qa@pharmacy.example"
        )
    if disposition not in DISPOSITIONS:
        raise ReviewError(
            f"disposition {disposition!r} is unknown: use one of {', '.join(DISPOSITIONS)}"
        )
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ReviewError(f"the note has {len(note)} characters: keep it under {MAX_NOTE}")
    return note


def acknowledge(
    session: Session,
    change_ids: Sequence[int],
    *,
    reviewer: str,
    disposition: str,
    note: str,
    now: datetime,
    via: str = "cli",
) -> list[Review]:
    """Record one review per change, all or none; the caller commits.

    Every id is checked before anything is added, so a typo in the third id records nothing.
    """
    note = check_review(reviewer, disposition, note)
    known = set(
        session.exec(select(Change.id).where(col(Change.id).in_(list(change_ids)))).all()
    )
    unknown = [change_id for change_id in change_ids if change_id not in known]
    if unknown:
        raise NotFound(
            f"no change with id {unknown[0]}: nothing recorded; `fdawatch changes` lists them"
        )
    reviews = [
        Review(
            change_id=change_id,
            reviewer=reviewer.lower(),
            disposition=disposition,
            note=note,
            reviewed_at=now,
            via=via,
        )
        for change_id in dict.fromkeys(change_ids)
    ]
    session.add_all(reviews)
    session.flush()
    return reviews


def current_reviews(session: Session, change_ids: Iterable[int]) -> dict[int, Review]:
    """Each change's newest review; changes without one are absent (open)."""
    found: dict[int, Review] = {}
    for batch in in_batches(sorted(set(change_ids)), IN_LIST_MAX):
        rows = session.exec(
            select(Review).where(col(Review.change_id).in_(batch)).order_by(col(Review.id))
        ).all()
        for review in rows:
            found[review.change_id] = review  # ordered by id: the newest wins
    return found


def review_history(session: Session, change_id: int) -> list[Review]:
    """Every review of the change, oldest first."""
    return list(
        session.exec(
            select(Review).where(Review.change_id == change_id).order_by(col(Review.id))
        ).all()
    )


def review_record(review: Review | None) -> dict[str, Any]:
    """The `review` object of `changes --json`: state, by, at, disposition, note."""
    if review is None:
        return {"state": OPEN, "by": None, "at": None, "disposition": None, "note": None}
    return {
        "state": ACKNOWLEDGED,
        "by": review.reviewer,
        "at": review.reviewed_at.isoformat(),
        "disposition": review.disposition,
        "note": review.note,
    }


def is_reviewed(session: Session, change_id: int) -> bool:
    return session.exec(select(Review.id).where(Review.change_id == change_id)).first() is not None


def open_changes(
    session: Session, severities: Sequence[str], detected_before: datetime | None = None
) -> list[Change]:
    """Changes at `severities` that nobody has reviewed, oldest first."""
    reviewed = select(Review.change_id)
    query = select(Change).where(
        col(Change.severity).in_(list(severities)), col(Change.id).not_in(reviewed)
    )
    if detected_before is not None:
        query = query.where(col(Change.detected_at) <= detected_before)
    return list(session.exec(query.order_by(col(Change.detected_at), col(Change.id))).all())


def who_was_told(session: Session, change_id: int) -> list[Alert]:
    """The change's alert rows (one per recipient), with their status and send time."""
    return list(
        session.exec(
            select(Alert)
            .where(Alert.change_id == change_id, Alert.kind == "change")
            .order_by(col(Alert.recipient))
        ).all()
    )
