"""Database errors as one line: what went wrong with which database, and what to do about it.

The URL is shown with its password masked (`db.engine.display_url`), and the driver's message
too (`db.engine.hide_password`). Three cases get their own words because the generic "cannot
open the database … check FDAWATCH_DATABASE_URL" would send the operator the wrong way:

* busy ("database is locked"): another fdawatch process is writing; the message names the holder
  of the scheduler lock or of the claims where the database says who;
* not a database / damaged ("file is not a database", "malformed"): restore or point elsewhere;
* anything else: the URL or the server is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from db import engine as engine_module
from db.engine import display_url, hide_password
from db.leases import holders_without_waiting

#: SQLite's words for another connection holding the lock we need.
_BUSY = ("database is locked", "database table is locked", "database is busy")
#: SQLite's words for a file that is not (or no longer) a database.
_DAMAGED = ("file is not a database", "database disk image is malformed")


def reason_of(error: BaseException) -> str:
    """The driver's own message (not SQLAlchemy's wrapper with SQL and links), on one line."""
    reason = getattr(error, "orig", None) or error
    return " ".join(str(reason).split())


def is_busy(error: BaseException) -> bool:
    return isinstance(error, DBAPIError) and any(w in reason_of(error).lower() for w in _BUSY)


def is_damaged(error: BaseException) -> bool:
    return isinstance(error, DBAPIError) and any(w in reason_of(error).lower() for w in _DAMAGED)


def busy_message(url: str, now: datetime | None = None) -> str:
    """The database is locked by another process: say so, and who, where the leases tell."""
    holders = holders_without_waiting(url, now or datetime.now(UTC))
    scheduler = holders.pop("scheduler", None)
    if scheduler:
        who = f"the scheduler lock is held by {scheduler} (host:pid)"
    elif holders:
        named = ", ".join(f"{holder} ({name})" for name, holder in sorted(holders.items())[:3])
        who = f"live claims: {named}"
    else:
        who = "a crawl, `alerts send` or `fdawatch run`; the database does not say which"
    seconds = f"{engine_module.SQLITE_BUSY_TIMEOUT_MS / 1000:g}"
    return (
        f"the database {display_url(url)!r} is busy: another fdawatch process is writing to it "
        f"and did not let go within {seconds} s; {who}; nothing was changed: try again when it "
        "has finished"
    )


def open_failure_message(error: BaseException, url: str) -> str:
    """Why the database could not be opened (or migrated), in one line."""
    if is_busy(error):
        return busy_message(url)
    shown = display_url(url)
    reason = hide_password(reason_of(error), url)
    if is_damaged(error):
        return (
            f"the database {shown!r} is not a readable fdawatch database ({reason}): restore "
            "the file from a backup, or point FDAWATCH_DATABASE_URL or --database at the right one"
        )
    return (
        f"cannot open the database {shown!r}: {reason}; check FDAWATCH_DATABASE_URL or --database"
    )


def write_failure_message(error: SQLAlchemyError, url: str, consequence: str) -> str:
    """A database that failed a command after opening: busy, damaged, read-only or full."""
    if is_busy(error) or is_damaged(error):
        return open_failure_message(error, url)
    reason = hide_password(reason_of(error), url)
    return f"cannot write to the database {display_url(url)!r}: {reason}; {consequence}"
