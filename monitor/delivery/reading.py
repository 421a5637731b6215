"""What a reader sees first about a change: a short name, a subject, a one-line summary, hunks.

The stored `Change.summary` quotes the first significant changed line; a reader needs the section
it sits in and what was *added* there. This module works that out at render time from the two
stored versions (and, for HTML pages, the headings of the stored raw page), so older changes read
the same way as new ones. Wording is quoted from the page, never invented.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlmodel import Session

from db.models import Change, Snapshot
from monitor.core.outline import Hunk, Row, heading_levels, hunks, lead_section, section_summary
from monitor.core.outline import shorten as shorten_text
from monitor.core.terms import weight
from monitor.errors import FdawatchError
from monitor.items import HTML

SUBJECT_MAX = 90
#: Heading levels by raw-body SHA-256: a site build shows one change on several pages, and the
#: same bytes always have the same headings, so each stored page is parsed once.
LEVELS_CACHED = 256
_LEVELS: dict[str, dict[str, int]] = {}
#: Organisation prefixes dropped from a source title for its short name ("REMS@FDA: Spravato…").
_PREFIX = re.compile(r"^(?:FDA|FDA alert|REMS@FDA)(?: \([^)]*\))?: ")
_PARENTHESES = re.compile(r"\s*\([^)]*\)")


def rank(change: Change) -> tuple[str, bool, object, int]:
    """Most severe first; within a tier, a change on a source watched at that tier comes before
    one raised to it by keywords (the REMS edit before a news item naming "at-home")."""
    raised = any(reason.startswith("raised one tier") for reason in change.severity_reasons)
    return (change.severity, raised, change.detected_at, change.id or 0)


def short_name(title: str) -> str:
    """`REMS@FDA: Spravato (esketamine) REMS, NDA 211243` → `Spravato REMS`: for subjects."""
    name = _PARENTHESES.sub("", _PREFIX.sub("", title)).split(", ")[0].strip()
    return (name[:1].upper() + name[1:]) if name else title


def _levels(session: Session, snapshot: Snapshot | None) -> dict[str, int]:
    """Heading levels of a stored HTML page; nothing for other content or a missing body."""
    if snapshot is None or snapshot.meta.get("content_type", HTML) != HTML:
        return {}
    content_type = next(
        (str(v) for k, v in snapshot.headers.items() if k.lower() == "content-type"), ""
    )
    if "html" not in content_type.lower():
        return {}  # a feed item's body is the whole feed: no page headings in it
    from monitor.history.blobs import raw_body  # the one reader of stored bodies

    key = snapshot.body_sha256
    if key is not None and key in _LEVELS:
        return _LEVELS[key]
    try:
        body = raw_body(session, snapshot)
    except FdawatchError:
        return {}  # a corrupt blob is reported by `fdawatch evidence`; the alert still goes out
    levels = heading_levels(body.decode("utf-8", "replace")) if body else {}
    if key is not None:
        if len(_LEVELS) >= LEVELS_CACHED:
            _LEVELS.pop(next(iter(_LEVELS)))
        _LEVELS[key] = levels
    return levels


def change_hunks(
    session: Session, change: Change, texts: tuple[str, str] | None = None
) -> list[Hunk]:
    """The change's lines grouped under their headings, with one line of context.

    `texts` are the (old, new) texts already cleaned for display; else the stored ones.
    """
    old = session.get(Snapshot, change.old_snapshot_id) if change.old_snapshot_id else None
    new = session.get(Snapshot, change.new_snapshot_id) if change.new_snapshot_id else None
    levels = {**_levels(session, old), **_levels(session, new)}
    old_text, new_text = texts or (old.text if old else "", new.text if new else "")
    return hunks(old_text, new_text, levels)


def reader_summary(change: Change, found: Sequence[Hunk], title: str) -> str:
    """One line saying what changed: for an edit, what the most significant section gained."""
    if change.kind == "new":
        lines = [row.new for hunk in found for row in hunk.changes if row.new.strip()]
        body = [line for line in lines if line.strip() != title.strip()]
        return shorten_text((body or lines or [title])[0], 160)
    if change.kind == "removed":
        return shorten_text(f"No longer published: {title}", 160)
    if change.sections:  # labels and records: the stored summary already names the section
        return change.summary
    return section_summary(found, weight)


def subject_part(
    change: Change, found: Sequence[Hunk], source: str, title: str, headline: str
) -> str:
    """`T1 Spravato REMS: REMS Requirements changed`: severity, where, and what happened.

    A page without headings names what was added instead (`…: added “and lower urinary…”`).
    """
    name = short_name(source)
    if change.kind == "new":
        what = f"{name}: new: {title}"
    elif change.kind == "removed":
        what = f"{name}: removed: {title}"
    else:
        section = change.sections[0] if change.sections else lead_section(found, weight)
        what = f"{name}: {section} changed" if section else f"{name}: {headline}"
    return f"{change.severity} {what}"


def subject(parts: Sequence[str], total: int) -> str:
    """`[fdawatch] <the most severe change> (+N more)`, cut to about 90 characters."""
    more = f" (+{total - 1} more)" if total > 1 else ""
    room = SUBJECT_MAX - len("[fdawatch] ") - len(more)
    text = shorten_text(parts[0], room)
    if text.count("“") > text.count("”"):  # a cut quotation is still closed
        text = shorten_text(parts[0], room - 1) + "”"
    return f"[fdawatch] {text}{more}"


def limit_rows(found: Sequence[Hunk], limit: int) -> tuple[list[Hunk], int]:
    """The hunks cut after `limit` changed lines, and how many changed lines were left out."""
    shown: list[Hunk] = []
    left = limit
    hidden = 0
    for hunk in found:
        if left <= 0:
            hidden += len(hunk.changes)
            continue
        rows: list[Row] = []
        for row in hunk.rows:
            changed = row.kind not in ("context", "gap")
            if changed and left <= 0:
                hidden += 1
                continue
            if changed or left > 0:
                rows.append(row)
            left -= changed
        shown.append(Hunk(hunk.path, rows, hunk.label))
    return shown, hidden
