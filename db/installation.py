"""The installation's random id, kept in the history database (table `setting`).

Made on first use rather than by the migration, so a database whose rows were emptied or
restored without it simply gets a new one. Two processes making it at once: the primary key lets
one win and the other reads the winner's, so every caller sees the same id.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from db.models import Setting

INSTALL_ID = "install_id"


def install_id(session: Session) -> str:
    """This database's install id (32 hex digits), made and committed the first time it is asked.

    Commits only when it creates the row, so call it before the caller's own writes.
    """
    row = session.get(Setting, INSTALL_ID)
    if row is not None:
        return row.value
    session.add(
        Setting(name=INSTALL_ID, value=secrets.token_hex(16), created_at=datetime.now(UTC))
    )
    try:
        session.commit()
    except IntegrityError:  # another process made it first: theirs is the id
        session.rollback()
    row = session.get(Setting, INSTALL_ID)
    assert row is not None
    return row.value
