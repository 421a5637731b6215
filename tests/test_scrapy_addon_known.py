"""The add-on hands the warning-letter spider the keys already stored, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from monitor import history
from monitor.config import Settings
from monitor.scrapy_addon import load_known_documents, scrapy_settings
from monitor.sources import SourceConfig, SourceTable
from spiders.items import Observation

AT = datetime(2026, 3, 17, 9, 0, tzinfo=UTC)
LETTERS = SourceConfig(
    id="letters", kind="fda_warning_letters", url="https://www.fda.gov/datatables/views/ajax?x=1"
)
OTHER_LETTERS = SourceConfig(
    id="letters_2", kind="fda_warning_letters", url="https://www.fda.gov/datatables/views/ajax?x=2"
)
PAGE = SourceConfig(id="page", kind="page", url="https://www.fda.gov/page")


def store(session: Session, source: SourceConfig, key: str) -> None:
    observation = Observation(
        source_id=source.id, key=key, url=key, title=key, content=f"<p>{key}</p>",
        content_type="html", fetched_at=AT,
    )  # fmt: skip
    history.record(session, observation, AT, source=source)


def test_known_documents_are_read_for_letter_sources_only(
    shared_url: str, shared_engine: Engine
) -> None:
    with Session(shared_engine) as session:
        history.sync_sources(session, [LETTERS, OTHER_LETTERS, PAGE])
        store(session, LETTERS, "https://www.fda.gov/warning-letters/a")
        store(session, LETTERS, "https://www.fda.gov/warning-letters/b")
        store(session, PAGE, PAGE.url)
        session.commit()
    config = Settings(database_url=shared_url)
    table = SourceTable({s.id: s for s in (LETTERS, OTHER_LETTERS, PAGE)})

    known = load_known_documents(config, table)

    assert {k: sorted(v) for k, v in known.items()} == {
        "letters": ["https://www.fda.gov/warning-letters/a", "https://www.fda.gov/warning-letters/b"],
        "letters_2": [],
    }
    assert load_known_documents(config, {PAGE.id: PAGE.to_dict()}) == {}
    given = scrapy_settings(config, sources=table, validators={}, known={"letters": ["x"]})
    assert given["FDAWATCH_KNOWN_DOCUMENTS"] == {"letters": ["x"]}


def test_a_crawl_without_letter_sources_never_opens_the_database(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "history.db"
    config = Settings(database_url=f"sqlite:///{missing}")

    assert load_known_documents(config, {PAGE.id: PAGE}) == {}
    assert not missing.parent.exists()
