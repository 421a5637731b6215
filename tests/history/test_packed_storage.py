"""Stored evidence, packed: a new version of a page costs what changed, and reads back exactly.

Every raw body is evidence a compliance officer may open years later, so packing may save space
but must never lose a byte: each case reads every body back through `raw_body` and compares it
with what was served. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import LargeBinary, column, table
from sqlmodel import Session, col, select

from db.models import Blob, Snapshot
from monitor.errors import EvidenceError
from monitor.history.blobs import raw_body, read_blob
from monitor.history.bodies import DELTA, ZSTD
from monitor.items import FEED_ITEM, Observation
from tests.support.clock import Clock
from tests.support.history import HistoryBuilder
from tests.support.paths import FIXTURES, PAGES, RECALLS_HISTORY
from tests.support.sources import make_source

REMS_2019 = (PAGES / "spravato_rems_synthetic_2019.html").read_text("utf-8")
REMS_2024 = (PAGES / "spravato_rems_synthetic_2024.html").read_text("utf-8")


def edited(html: str, number: int) -> str:
    """The page with one sentence added to its first paragraph (a typical FDA edit)."""
    return html.replace("<p>", f"<p>Updated guidance number {number} applies. ", 1)


def text_of(html: str) -> str:
    return f"page version {hashlib.sha256(html.encode()).hexdigest()[:12]}"


def serve(history: HistoryBuilder, bodies: list[str], clock: Clock) -> list[Blob]:
    """Record each body as the next version of one page; the blob of each version, in order."""
    source = next(iter(history.sources.values()))
    blobs = []
    for html in bodies:
        history.observe(source, text_of(html), clock.tick(), body=html.encode())
        snapshot = newest(history.session)
        assert raw_body(history.session, snapshot) == html.encode()
        blob = history.session.get(Blob, snapshot.body_sha256)
        assert blob is not None
        blobs.append(blob)
    return blobs


def newest(session: Session) -> Snapshot:
    return session.exec(select(Snapshot).order_by(col(Snapshot.id).desc())).first()  # type: ignore[return-value]


def all_blobs(session: Session) -> dict[str, Blob]:
    return {blob.sha256: blob for blob in session.exec(select(Blob))}


@pytest.fixture
def history(session: Session) -> HistoryBuilder:
    return HistoryBuilder(session, [make_source()])


def test_an_edited_page_is_stored_as_a_small_delta_of_the_first_version(
    history: HistoryBuilder, clock: Clock
) -> None:
    first, second, third = serve(
        history, [REMS_2024, edited(REMS_2024, 1), edited(edited(REMS_2024, 1), 2)], clock
    )

    assert first.codec == ZSTD and first.base_sha256 is None
    assert second.codec == DELTA and second.base_sha256 == first.sha256
    # a delta's base is always a keyframe: the third version refers to the first, not the second
    assert third.codec == DELTA and third.base_sha256 == first.sha256
    assert len(second.data) < len(first.data) / 10
    assert len(second.data) < 400  # one sentence, not the whole page again


def test_a_rewritten_page_or_a_pdf_is_packed_alone(history: HistoryBuilder, clock: Clock) -> None:
    rewritten = (PAGES / "compounding_actions_synthetic_v1.html").read_text("utf-8")  # all new
    assert [blob.codec for blob in serve(history, [REMS_2019, rewritten], clock)] == [ZSTD, ZSTD]

    pdf = (FIXTURES / "pdf" / "medication-guides-rems-guidance-2011-11-9952fnl.pdf").read_bytes()
    source = make_source(id="fda_rems_guidance_pdf", url="https://www.fda.gov/media/77847/download")
    other = HistoryBuilder(history.session, [source])
    for version in (pdf, pdf + b"%% an incremental update\n"):
        other.observe(source, text_of(version.decode("latin-1")), clock.tick(), body=version)
        assert read_blob(history.session, newest(history.session).body_sha256 or "") == version
    assert DELTA not in {blob.codec for blob in all_blobs(history.session).values()}


@pytest.mark.parametrize("kept_item_edited", [False, True], ids=["only-a-new-item", "and-an-edit"])
def test_a_feed_body_is_a_delta_of_the_previous_fetch_of_the_feed(
    session: Session, clock: Clock, kept_item_edited: bool
) -> None:
    """The new fetch's items arrive as one batch, the new recall first (it has no previous body
    of its own), the kept ones after it, if edited: either way the feed's new body is packed
    against the previous fetch's."""
    feed = make_source(id="fda_drug_recalls_rss", kind="feed", url="https://x/rss.xml", terms=[])
    history = HistoryBuilder(session, [feed])
    # two successive real captures of FDA's Food Safety Recalls feed (a new recall on top)
    old_body, new_body = (
        (RECALLS_HISTORY / name).read_bytes()
        for name in ("001_20241114T1258Z_d2a4a52c.xml", "002_20241117T1349Z_e34b9bb7.xml")
    )

    def item(key: str, text: str, body: bytes) -> Observation:
        at = clock.tick()
        return Observation(feed.id, key, key, text, f"<p>{text}</p>", FEED_ITEM, at, body=body)

    history.writer.record_batch(session, [item("https://x/1", "Recall one", old_body)], clock.now)
    batch = [item("https://x/2", "Recall two", new_body)]
    if kept_item_edited:
        batch.append(item("https://x/1", "Recall one, edited", new_body))
    history.writer.record_batch(session, batch, clock.now)

    new = all_blobs(session)[hashlib.sha256(new_body).hexdigest()]
    assert new.codec == DELTA and new.base_sha256 == hashlib.sha256(old_body).hexdigest()
    assert read_blob(session, new.sha256) == new_body
    assert len(new.data) < len(all_blobs(session)[new.base_sha256].data) / 4


def test_a_delta_whose_keyframe_is_gone_is_an_evidence_error_not_wrong_bytes(
    history: HistoryBuilder, clock: Clock
) -> None:
    first, second = serve(history, [REMS_2024, edited(REMS_2024, 1)], clock)
    session = history.session
    blob = table("blob", column("sha256"), column("data", LargeBinary))
    session.execute(blob.update().where(blob.c.sha256 == first.sha256).values(data=b"\x00" * 40))
    session.expire_all()

    with pytest.raises(EvidenceError, match=f"raw body {first.sha256} cannot be unpacked"):
        read_blob(session, second.sha256)
    # a new version is then packed alone, never against the damaged keyframe
    (third,) = serve(history, [edited(REMS_2024, 2)], clock)
    assert third.codec == ZSTD


def test_snapshot_texts_are_stored_packed_and_read_back_whole(
    history: HistoryBuilder, clock: Clock
) -> None:
    source = next(iter(history.sources.values()))
    text = "\n".join(f"Line {n}: patients must be monitored for two hours." for n in range(200))
    history.observe(source, text, clock.tick())
    history.session.commit()
    snapshot = newest(history.session)
    assert snapshot.text == text

    raw = table("snapshot", column("id"), column("text", LargeBinary))
    (stored,) = history.session.execute(select(raw.c.text).where(raw.c.id == snapshot.id)).one()
    assert bytes(stored)[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    assert len(stored) < len(text.encode()) / 5


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("0" * 64, "is stored as a delta of 0{64}, which is missing"),
        ("self", "is stored as a delta of [0-9a-f]{64}, which is missing"),
        ("third", "which is not a keyframe"),
    ],
)
def test_a_delta_pointing_nowhere_or_at_a_delta_is_an_evidence_error(
    history: HistoryBuilder, clock: Clock, base: str, message: str
) -> None:
    """A broken blob table is reported as such, never answered with other bytes."""
    _, second, third = serve(
        history, [REMS_2024, edited(REMS_2024, 1), edited(REMS_2024, 2)], clock
    )
    target = {"self": second.sha256, "third": third.sha256}.get(base, base)
    blob = table("blob", column("sha256"), column("base_sha256"))
    history.session.execute(
        blob.update().where(blob.c.sha256 == second.sha256).values(base_sha256=target)
    )
    history.session.expire_all()

    with pytest.raises(EvidenceError, match=message):
        read_blob(history.session, second.sha256)
