"""Migration 0007 packs an existing history without changing a byte of what it reads back.

A history written by fdawatch is taken back to 0006 (texts as plain text, every body zlib), then
upgraded again, the way an installation upgrades: every text, every raw body and every change's
diff reads back as it was, and nothing is left unpacked. On SQLite (a file) and PostgreSQL (a
schema of its own).
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, LargeBinary, column, inspect, select, table, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from db.engine import alembic_config, make_engine, open_database, upgrade
from db.models import Blob, Change, Snapshot
from monitor.history.blobs import raw_body
from tests.support.clock import Clock
from tests.support.history import HistoryBuilder
from tests.support.paths import PAGES
from tests.support.sources import make_source

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own at the newest migration (migrations run on it, so not shared)."""
    if request.param == "sqlite":
        engine = open_database(f"sqlite:///{tmp_path / 'history.db'}")
        yield engine
        engine.dispose()
        return
    base = request.getfixturevalue("postgres_server")
    schema = f"fdawatch_migrate_{secrets.token_hex(4)}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = open_database(url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def what_it_reads(engine: Engine) -> dict[str, object]:
    with Session(engine) as session:
        snapshots = session.execute(select(Snapshot).order_by(Snapshot.id)).scalars().all()
        return {
            "texts": [s.text for s in snapshots],
            "bodies": [raw_body(session, s) for s in snapshots],
            "diffs": [c.diff for c in session.execute(select(Change)).scalars().all()],
        }


def stored_values(engine: Engine) -> tuple[list[bytes | str], list[str]]:
    """The snapshot texts and blob codecs as the database holds them (no type decoding)."""
    snapshot = table("snapshot", column("id"), column("text"))
    with engine.connect() as connection:
        texts = [row[0] for row in connection.execute(select(snapshot.c.text).order_by("id"))]
        columns = {c["name"] for c in inspect(connection).get_columns("blob")}
        codecs = (
            [row[0] for row in connection.execute(text("SELECT codec FROM blob"))]
            if "codec" in columns
            else ["zlib (no codec column)"]
        )
    return texts, codecs


def test_a_history_survives_downgrade_and_upgrade_byte_for_byte(
    fresh_engine: Engine, clock: Clock
) -> None:
    page = (PAGES / "spravato_rems_synthetic_2024.html").read_text("utf-8")
    with Session(fresh_engine) as session:
        history = HistoryBuilder(session, [make_source()])
        source = make_source()
        for number, line in enumerate(["Patients are monitored.", "Monitored for two hours."]):
            body = page.replace("<p>", f"<p>{line} ", 1).encode()
            history.observe(source, f"REMS\n{line}\nSection {number}", clock.tick(), body=body)
        session.commit()
    before = what_it_reads(fresh_engine)
    texts, codecs = stored_values(fresh_engine)
    assert all(bytes(t)[:4] == ZSTD_MAGIC for t in texts)
    assert sorted(codecs) == ["zstd", "zstd-delta"]
    assert len(before["diffs"]) == 1  # type: ignore[arg-type]

    downgrade(fresh_engine, "0006")
    texts, codecs = stored_values(fresh_engine)
    assert texts == before["texts"]  # plain text again
    blob = table("blob", column("data", LargeBinary))
    with fresh_engine.connect() as connection:
        for (data,) in connection.execute(select(blob.c.data)):
            assert zlib.decompress(data) in before["bodies"]  # every body back to zlib

    upgrade(fresh_engine)
    assert what_it_reads(fresh_engine) == before
    texts, codecs = stored_values(fresh_engine)
    assert all(bytes(t)[:4] == ZSTD_MAGIC for t in texts)
    assert codecs == ["zlib", "zlib"]  # bodies stored before 0007 stay as they were, readable
    with Session(fresh_engine) as session:
        assert {b.codec for b in session.execute(select(Blob)).scalars()} == {"zlib"}
