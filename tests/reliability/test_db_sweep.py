"""The premise of every "never stored" check: the database sweep sees inside compressed bodies."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from db.engine import open_database
from monitor.history.blobs import store_body
from tests.support.deployment import db_bytes
from tests.support.paths import PAGES


def test_the_sweep_finds_text_that_is_only_in_a_compressed_body(tmp_path: Path) -> None:
    db_file = tmp_path / "history.db"
    engine = open_database(f"sqlite:///{db_file}")
    with Session(engine) as session:
        page = (PAGES / "spravato_rems_synthetic_2024.html").read_text("utf-8")
        heading = page.index("</h1>")  # a secret in a real-sized page, as a leak would be
        leaked = f"{page[:heading]} smtp password: SYNTHETIC-SECRET-42{page[heading:]}"
        store_body(session, leaked.encode())
        session.commit()
    engine.dispose()

    assert b"SYNTHETIC-SECRET-42" not in db_file.read_bytes()  # packing hides it from a byte grep
    assert b"SYNTHETIC-SECRET-42" in db_bytes(db_file)
