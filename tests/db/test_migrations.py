"""The schema comes from versioned migrations, and they match the models exactly."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from db.engine import make_engine, open_database, upgrade


def test_upgrade_creates_every_table_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = open_database(url)
    upgrade(engine)  # a second upgrade on an up-to-date database changes nothing
    tables = set(inspect(engine).get_table_names())
    assert {
        "source",
        "snapshot",
        "blob",
        "document",
        "change",
        "crawlrun",
        "fetch",
        "alert",
    } <= tables
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()


def test_migrations_match_the_models() -> None:
    engine = make_engine("sqlite://")
    upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []
    engine.dispose()
