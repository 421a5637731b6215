"""Each source's stored health, read with SQLAlchemy Core alone.

`fdawatch sources` must answer in well under a second, and importing the ORM tables (SQLModel,
pydantic) alone takes longer than that on a busy machine; this query needs none of it.
"""

from __future__ import annotations

from sqlalchemy import Engine, column, select, table

_SOURCE = table("source", column("id"), column("health"))


def source_health(engine: Engine) -> dict[str, str]:
    """Source id → health (unknown, ok, failing, drift, blocked) of every stored source."""
    with engine.connect() as connection:
        rows = connection.execute(select(_SOURCE.c.id, _SOURCE.c.health).order_by(_SOURCE.c.id))
        return {str(source_id): str(health) for source_id, health in rows}
