"""The PostgreSQL test database: where it is, and how to empty it between tests.

Every test that takes `engine` runs on SQLite and on PostgreSQL (tests/conftest.py). The
PostgreSQL run uses FDAWATCH_TEST_POSTGRES_URL (`.ci/postgres.sh` starts a server and prints one)
or else a throw-away server (tests/support/postgres.py); when neither is there it is skipped with
the reason, except under CI, where a missing PostgreSQL must not pass silently.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest
from sqlalchemy import inspect, text

from db.engine import make_engine

POSTGRES_URL_VARIABLE = "FDAWATCH_TEST_POSTGRES_URL"


def postgres_unavailable(why: str) -> NoReturn:
    """Skip the PostgreSQL cases, saying why; under CI, fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must test PostgreSQL too, but {why}", pytrace=False)
    pytest.skip(f"PostgreSQL cases skipped: {why}")


def empty_postgres_database(url: str) -> None:
    """Empty every table of `url`'s schema and set every id counter back to 1: a fresh history."""
    engine = make_engine(url)
    try:
        tables = [name for name in inspect(engine).get_table_names() if name != "alembic_version"]
        with engine.begin() as connection:
            quoted = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()
