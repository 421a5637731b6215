"""Linked documents in the history: same severity rules as a page, baselines, result sets."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from db.models import Change, Document, Source
from monitor.history.writer import HistoryWriter
from monitor.items import DOCUMENT, HTML, OK, Observation, SourceFetch
from monitor.sources import SourceConfig
from tests.conftest import T0
from tests.support.api_history import crawl as crawl_records

PAGE = SourceConfig(
    id="rems", kind="page", url="https://www.fda.gov/spravato-rems", tier="T3",
    title="Spravato REMS", follow_documents=True,
)  # fmt: skip
GUIDE = "https://www.fda.gov/media/151542/download"
BEFORE = "Medication Guide\nSpravato can cause sedation.\nStore at room temperature."
AFTER = (
    "Medication Guide\nSpravato can cause sedation.\nDo not use compounded ketamine nasal sprays "
    "at home instead of Spravato.\nStore at room temperature."
)


def fetch(
    session: Session, source: SourceConfig, pages: dict[str, tuple[str, str]], at: object
) -> list[Change]:
    """One followed fetch: each (content type, text) by key, then the OK record listing them."""
    writer = HistoryWriter([source])
    made = [
        writer.record_observation(
            session,
            Observation(source.id, key, key, key.rsplit("/", 1)[-1], text, kind, at),  # type: ignore[arg-type]
            at,  # type: ignore[arg-type]
        )
        for key, (kind, text) in pages.items()
    ]
    found = [change for change in made if change is not None]
    record = SourceFetch(source.id, source.url, OK, at, document_keys=list(pages))  # type: ignore[arg-type]
    writer.record_fetch(session, record, at, changes=len(found))  # type: ignore[arg-type]
    session.commit()
    return found


def test_a_document_edit_is_ranked_like_the_same_edit_on_the_page(session: Session) -> None:
    HistoryWriter([PAGE]).sync_sources(session)
    day = timedelta(days=1)
    fetch(
        session, PAGE, {PAGE.url: (HTML, "<main><p>REMS</p></main>"), GUIDE: (DOCUMENT, BEFORE)}, T0
    )
    [on_document] = fetch(
        session, PAGE, {PAGE.url: (HTML, "<main><p>REMS</p></main>"), GUIDE: (DOCUMENT, AFTER)},
        T0 + day,
    )  # fmt: skip
    page_before = "<main>" + "".join(f"<p>{line}</p>" for line in BEFORE.splitlines()) + "</main>"
    page_after = "<main>" + "".join(f"<p>{line}</p>" for line in AFTER.splitlines()) + "</main>"
    fetch(session, PAGE, {PAGE.url: (HTML, page_before), GUIDE: (DOCUMENT, AFTER)}, T0 + 2 * day)
    [on_page] = fetch(
        session, PAGE, {PAGE.url: (HTML, page_after), GUIDE: (DOCUMENT, AFTER)}, T0 + 3 * day
    )
    assert (on_document.doc_key, on_page.doc_key) == (GUIDE, PAGE.url)
    assert on_document.severity == on_page.severity == "T2"  # ketamine + compounding: one up
    assert on_document.severity_reasons == on_page.severity_reasons
    assert on_document.matched_terms == on_page.matched_terms == ["ketamine", "spravato"]


def test_turning_follow_documents_on_later_is_a_baseline_not_new_documents(
    session: Session,
) -> None:
    plain = SourceConfig(**{**PAGE.to_dict(), "follow_documents": False})
    HistoryWriter([plain]).sync_sources(session)
    fetch(session, plain, {PAGE.url: (HTML, "<main><p>REMS</p></main>")}, T0)
    HistoryWriter([PAGE]).sync_sources(session)
    pages = {PAGE.url: (HTML, "<main><p>REMS</p></main>"), GUIDE: (DOCUMENT, BEFORE)}
    assert fetch(session, PAGE, pages, T0 + timedelta(days=1)) == []
    source = session.get(Source, PAGE.id)
    assert source is not None and source.documents_since == T0 + timedelta(days=1)


def test_an_api_source_that_stops_following_never_removes_its_documents(session: Session) -> None:
    drugsfda = SourceConfig(
        id="drugsfda", kind="openfda_drugsfda", follow_documents=True, confirm_removal=1,
        url='https://api.fda.gov/drug/drugsfda.json?search=application_number:"NDA211243"',
    )  # fmt: skip
    record = '{"application_number": "NDA211243", "submission_type": "ORIG"}'
    HistoryWriter([drugsfda]).sync_sources(session)
    fetch(
        session, drugsfda, {"NDA211243 ORIG 1": ("record", record), GUIDE: (DOCUMENT, BEFORE)}, T0
    )
    stopped = SourceConfig(**{**drugsfda.to_dict(), "follow_documents": False})
    HistoryWriter([stopped]).sync_sources(session)
    later = T0 + timedelta(days=1)
    crawl_records(session, stopped, {"NDA211243 ORIG 1": record}, "record", later)
    session.commit()
    documents = session.exec(select(Document.doc_key, Document.removed_at)).all()
    assert sorted(documents) == [("NDA211243 ORIG 1", None), (GUIDE, None)]
