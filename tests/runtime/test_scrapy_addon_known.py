"""The add-on hands the warning-letter spider the keys already stored, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from monitor.config import Settings
from monitor.history.writer import HistoryWriter
from monitor.items import Observation
from monitor.runtime.scrapy_addon import CrawlState, load_crawl_state, scrapy_settings
from monitor.sources import SourceConfig, SourceTable

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
    HistoryWriter([source]).record_observation(session, observation, AT)


def test_known_documents_are_read_for_letter_sources_only(
    shared_url: str, shared_engine: Engine
) -> None:
    with Session(shared_engine) as session:
        HistoryWriter([LETTERS, OTHER_LETTERS, PAGE]).sync_sources(session)
        store(session, LETTERS, "https://www.fda.gov/warning-letters/a")
        store(session, LETTERS, "https://www.fda.gov/warning-letters/b")
        store(session, PAGE, PAGE.url)
        session.commit()
    config = Settings(database_url=shared_url)
    table = SourceTable({s.id: s for s in (LETTERS, OTHER_LETTERS, PAGE)})

    known = load_crawl_state(config, table).known

    assert {k: sorted(v) for k, v in known.items()} == {
        "letters": [
            "https://www.fda.gov/warning-letters/a",
            "https://www.fda.gov/warning-letters/b",
        ],
        "letters_2": [],
    }
    assert load_crawl_state(config, {PAGE.id: PAGE.to_dict()}).known == {}
    given = scrapy_settings(config, sources=table, state=CrawlState(known={"letters": ["x"]}))
    assert given["FDAWATCH_KNOWN_DOCUMENTS"] == {"letters": ["x"]}
