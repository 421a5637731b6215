"""Named, expiring leases: at most one holder at a time, released by expiry if the holder dies.

Used for the daemon lock (one scheduler crawling a database at a time) and for claiming work
among several workers. Only conditional writes are used, so SQLite and PostgreSQL behave alike:
an UPDATE that only matches a free or expired lease (or our own), else an INSERT that does nothing
when the name exists. Under PostgreSQL's READ COMMITTED, a racing UPDATE waits for the other
writer and re-checks its WHERE on the committed row, so two workers never both win.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import import_module

from sqlalchemy import Connection, Engine, create_engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool

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
        return _insert_if_absent(connection, name, holder, now, expires)


def _insert_if_absent(
    connection: Connection, name: str, holder: str, now: datetime, expires: datetime
) -> bool:
    """Create the lease unless the name exists (held by someone else and not expired)."""
    values = {"name": name, "holder": holder, "acquired_at": now, "expires_at": expires}
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        # ON CONFLICT DO NOTHING: a lost race returns no row, not an error in the server log.
        # (RETURNING, not rowcount: SQLAlchemy does not promise a rowcount for an INSERT.)
        # The dialect in use only: importing PostgreSQL's costs every SQLite command ~35 ms.
        module = import_module(f"sqlalchemy.dialects.{dialect}")
        statement = module.insert(Lease).values(**values).on_conflict_do_nothing()
        return connection.execute(statement.returning(Lease.name)).first() is not None
    try:
        with connection.begin_nested():
            connection.execute(insert(Lease).values(**values))
    except IntegrityError:
        return False
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


def holders_without_waiting(url: str, now: datetime) -> dict[str, str]:
    """Live leases (name → holder) read from `url` without joining its write-lock queue.

    For saying who holds a busy database: fdawatch's own engines start every transaction with
    `BEGIN IMMEDIATE`, which would wait behind the very writer we want to name. A plain SQLite
    reader is let through by WAL. Empty when the table cannot be read within a second.
    """
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(
        url,
        poolclass=NullPool,
        connect_args={"timeout": 1} if is_sqlite else {"connect_timeout": 2},
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Lease.name, Lease.holder).where(Lease.expires_at > now)  # type: ignore[arg-type]
            ).all()
    except SQLAlchemyError:
        return {}
    finally:
        engine.dispose()
    return {name: holder for name, holder in rows}
