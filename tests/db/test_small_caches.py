"""The daemon's SQLite connections stop growing early: small page and statement caches (issue 21).

A soak of `fdawatch run` saw SQLite's memory grow 0.4 → 1.5 MB in 80 minutes: each connection's
page cache filling towards 2 MB and the driver's statement cache towards 128 statements, one per
length of every `IN (…)` list. These tests read what a connection holds from SQLite itself
(`sqlite3_db_status`) after the work that filled them in the soak — many pages read, many
distinct statements — with and without `keep_caches_small`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from db.engine import SMALL_PAGE_CACHE_KIB, keep_caches_small, make_engine

CACHE_USED, STMT_USED = 1, 3  # sqlite3_db_status verbs
ROWS, ROW_BYTES = 3000, 1000  # ~3 MB of table: more than the default page cache holds
STATEMENTS = 100  # distinct statements: fewer than the driver's default cache of 128


def libsqlite() -> ctypes.CDLL:
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("no SQLite shared library to ask")
    library = ctypes.CDLL(name)
    library.sqlite3_db_status.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                          ctypes.c_void_p, ctypes.c_int]  # fmt: skip
    library.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    library.sqlite3_db_filename.restype = ctypes.c_char_p
    return library


def held_bytes(connection: Connection, database: Path) -> dict[str, int]:
    """Page cache and prepared statements of the driver connection under `connection`."""
    raw = connection.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    library = libsqlite()
    # CPython's connection object holds its `sqlite3 *` right after the object header.
    handle = ctypes.c_void_p.from_address(id(raw) + object.__basicsize__).value
    if not handle or library.sqlite3_db_filename(handle, b"main") != str(database).encode():
        pytest.skip("this Python's sqlite3 module is not linked against that SQLite library")
    held = {}
    for name, verb in (("pages", CACHE_USED), ("statements", STMT_USED)):
        current, highest = ctypes.c_int(), ctypes.c_int()
        library.sqlite3_db_status(handle, verb, ctypes.byref(current), ctypes.byref(highest), 0)
        held[name] = current.value
    return held


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "history.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE page (id INTEGER PRIMARY KEY, body BLOB)"))
        connection.execute(
            text("INSERT INTO page (body) VALUES (randomblob(:size))"),
            [{"size": ROW_BYTES}] * ROWS,
        )
    engine.dispose()
    yield path


def daemon_work(engine: Engine, database: Path) -> dict[str, int]:
    """Read every page, then query with IN-lists of every length from 1 to STATEMENTS."""
    with engine.connect() as connection:
        connection.execute(text("SELECT sum(length(body)) FROM page")).scalar()
        for size in range(1, STATEMENTS + 1):
            ids = ", ".join(str(i) for i in range(size))
            connection.exec_driver_sql(f"SELECT id FROM page WHERE id IN ({ids})").all()
        return held_bytes(connection, database)


def test_small_caches_hold_far_fewer_pages_and_statements(database: Path) -> None:
    plain = make_engine(f"sqlite:///{database}")
    small = make_engine(f"sqlite:///{database}")
    keep_caches_small(small)
    before, after = daemon_work(plain, database), daemon_work(small, database)
    plain.dispose()
    small.dispose()
    assert before["pages"] > 1_500_000  # the default cache kept most of the table
    assert after["pages"] <= SMALL_PAGE_CACHE_KIB * 1024 * 1.25
    assert after["statements"] < before["statements"] / 4


def test_open_connections_are_replaced_by_small_ones(database: Path) -> None:
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA cache_size")).scalar() == -2000
    keep_caches_small(engine)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA cache_size")).scalar() == -SMALL_PAGE_CACHE_KIB
    engine.dispose()


def test_an_in_memory_database_keeps_its_one_connection_and_its_data() -> None:
    engine = make_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE kept (id INTEGER)"))
    keep_caches_small(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM kept")).scalar() == 0
