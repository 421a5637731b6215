"""Named, expiring leases: at most one holder at a time, released by expiry if the holder dies.

Used for the daemon lock (one scheduler crawling a database at a time) and for claiming work
among several workers. Only conditional writes are used, so SQLite and PostgreSQL behave alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, or_, update
from sqlalchemy.exc import IntegrityError

from db.models import Lease


def acquire(engine: Engine, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
    """Take or renew `name` for `holder` until now + ttl; False when someone else holds it."""
    expires = now + ttl
    with engine.begin() as connection:
        taken = connection.execute(
            update(Lease)
            .where(
                Lease.name == name,  # type: ignore[arg-type]
                or_(Lease.expires_at <= now, Lease.holder == holder),  # type: ignore[arg-type]
            )
            .values(holder=holder, acquired_at=now, expires_at=expires)
        )
        if taken.rowcount == 1:
            return True
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(Lease).values(
                        name=name, holder=holder, acquired_at=now, expires_at=expires
                    )
                )
        except IntegrityError:
            return False  # held by someone else and not expired
        return True


def release(engine: Engine, name: str, holder: str) -> None:
    """Give `name` up, if `holder` still holds it."""
    with engine.begin() as connection:
        connection.execute(
            delete(Lease).where(Lease.name == name, Lease.holder == holder)  # type: ignore[arg-type]
        )


def holder_of(engine: Engine, name: str, now: datetime) -> str | None:
    """Who holds `name` right now (None when free or expired)."""
    with engine.connect() as connection:
        row = connection.execute(
            Lease.__table__.select().where(Lease.name == name)  # type: ignore[attr-defined,arg-type]
        ).first()
    if row is None or row.expires_at <= now:
        return None
    return row.holder
