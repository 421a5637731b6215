"""The PostgreSQL test database: where it is, and how to empty it between tests.

Every test that takes `engine` runs on SQLite and on PostgreSQL (tests/conftest.py). The
PostgreSQL run needs FDAWATCH_TEST_POSTGRES_URL (`.ci/postgres.sh` starts a server and prints
one); without it the run is skipped with that reason, except under CI, where a missing PostgreSQL
must not pass silently.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import inspect, text

from db.engine import make_engine

POSTGRES_URL_VARIABLE = "FDAWATCH_TEST_POSTGRES_URL"


def postgres_test_url() -> str:
    """The PostgreSQL database to test against; skip (or, under CI, fail) when there is none."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, "")
    if url:
        return url
    how = (
        f"{POSTGRES_URL_VARIABLE} is not set: run, as root, `export {POSTGRES_URL_VARIABLE}="
        '"$(bash .ci/postgres.sh)"` (or set it to a database you own) to test PostgreSQL'
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI must test PostgreSQL too, but {how}", pytrace=False)
    pytest.skip(how)


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
