"""The premise of every "never stored" check: the database sweep sees inside compressed bodies."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from db.engine import open_database
from monitor.history.snapshots import store_body
from tests.support.deployment import db_bytes


def test_the_sweep_finds_text_that_is_only_in_a_compressed_body(tmp_path: Path) -> None:
    db_file = tmp_path / "history.db"
    engine = open_database(f"sqlite:///{db_file}")
    with Session(engine) as session:
        store_body(session, b"<p>smtp password: SYNTHETIC-SECRET-42</p>" * 20)
        session.commit()
    engine.dispose()

    assert b"SYNTHETIC-SECRET-42" not in db_file.read_bytes()  # zlib hides it from a byte grep
    assert b"SYNTHETIC-SECRET-42" in db_bytes(db_file)
