"""history.record / record_fetch: what becomes a snapshot, a change, a removal, or nothing."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import event
from sqlmodel import Session, col, func, select

from db.models import Alert, Blob, Change, Document, Fetch, Snapshot, Source
from monitor.config import Recipient
from monitor.core import canonical, normalize
from monitor.history import batch
from monitor.history.writer import HistoryWriter
from monitor.items import DRIFT, FAILED, GONE, NOT_MODIFIED, OK, Observation, SourceFetch
from monitor.sources import SourceConfig
from tests.support.clock import Clock
from tests.support.paths import PAGES
from tests.support.sources import make_source


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def observe(source: SourceConfig, html: str, at: datetime, key: str | None = None) -> Observation:
    return Observation(
        source_id=source.id,
        key=key or source.url,
        url=source.url,
        title=source.title,
        content=html,
        content_type="html",
        fetched_at=at,
        body=html.encode(),
    )


def item(source: SourceConfig, key: str, title: str, text: str, at: datetime) -> Observation:
    return Observation(
        source_id=source.id,
        key=key,
        url=key,
        title=title,
        content=text,
        content_type="feed_item",
        fetched_at=at,
        body=b"<rss/>",
    )


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def crawl_page(session: Session, source: SourceConfig, html: str, clock: Clock) -> Change | None:
    now = clock.tick()
    change = HistoryWriter([source]).record_observation(session, observe(source, html, now), now)
    HistoryWriter([source]).record_fetch(
        session, SourceFetch(source.id, source.url, OK, now), now, changes=int(change is not None)
    )
    session.commit()
    return change


@pytest.mark.parametrize(
    ("second", "changes"),
    [
        ("ketamine_oral_alert_synthetic_v1.html", 0),  # the same page again
        ("ketamine_oral_alert_synthetic_v2_date_only.html", 0),  # "Content current as of" only
        ("ketamine_oral_alert_synthetic_v3_nav_footer.html", 0),  # nav and footer only
        ("ketamine_oral_alert_synthetic_v4_reflow.html", 0),  # whitespace / markup reflow
        ("ketamine_oral_alert_synthetic_v5_sentence_edited.html", 1),  # one sentence edited
    ],
)
def test_page_versions_raise_a_change_only_for_a_content_edit(
    session: Session, registered, clock: Clock, second: str, changes: int
) -> None:
    (source,) = registered(make_source())
    assert crawl_page(session, source, page("ketamine_oral_alert_synthetic_v1.html"), clock) is None
    crawl_page(session, source, page(second), clock)
    assert count(session, Change) == changes
    assert count(session, Snapshot) == 1 + changes


def test_edited_sentence_is_in_the_diff_and_the_summary(
    session: Session, registered, clock: Clock
) -> None:
    (source,) = registered(make_source())
    crawl_page(session, source, page("ketamine_oral_alert_synthetic_v1.html"), clock)
    change = crawl_page(
        session, source, page("ketamine_oral_alert_synthetic_v5_sentence_edited.html"), clock
    )
    assert change is not None and change.kind == "changed"
    added = [
        line
        for line in change.diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    removed = [
        line
        for line in change.diff.splitlines()
        if line.startswith("-") and not line.startswith("---")
    ]
    assert len(added) == 1 and len(removed) == 1
    assert change.matched_terms == ["ketamine"]
    assert change.severity == "T1"  # the source's T2, one up: ketamine with compounders
    assert change.severity_reasons == [
        "FDA alert: compounded ketamine: watched at T2",
        "raised one tier: names ketamine with compounded, compounder, telemedicine",
    ]
    assert change.summary == (  # six words of context before the edit (diff.SUMMARY_CONTEXT_WORDS)
        "Changed: “…receive information about these potential risks or be monitored by a health "
        "care provider after each dose.”"
    )


def test_first_crawl_is_a_baseline_and_keeps_the_raw_body_once(
    session: Session, registered, clock: Clock
) -> None:
    (source,) = registered(make_source())
    html = page("ketamine_oral_alert_synthetic_v1.html")
    crawl_page(session, source, html, clock)
    crawl_page(session, source, html, clock)
    assert count(session, Change) == 0
    assert count(session, Snapshot) == 1
    assert count(session, Blob) == 1
    snapshot = session.exec(select(Snapshot)).one()
    assert snapshot.meta.get("content_date")  # the page's own date is kept as metadata
    assert "Content current as of" not in snapshot.text


def test_a_body_another_source_stored_first_is_kept_once(
    session: Session, registered, clock: Clock
) -> None:
    """Two sources fetching the same bytes: one blob, both snapshots point at it, no error."""
    first, second = registered(make_source(), make_source(id="fda_ketamine_mirror"))
    html = page("ketamine_oral_alert_synthetic_v1.html")
    crawl_page(session, first, html, clock)
    crawl_page(session, second, html, clock)
    snapshots = session.exec(select(Snapshot)).all()
    assert count(session, Blob) == 1 and len(snapshots) == 2
    assert {s.body_sha256 for s in snapshots} == {hashlib.sha256(html.encode()).hexdigest()}


def test_a_page_flipping_back_reuses_its_earlier_snapshot(
    session: Session, registered, clock: Clock
) -> None:
    (source,) = registered(make_source())
    v1, v5 = (
        page("ketamine_oral_alert_synthetic_v1.html"),
        page("ketamine_oral_alert_synthetic_v5_sentence_edited.html"),
    )
    for html in (v1, v5, v1):
        crawl_page(session, source, html, clock)
    changes = session.exec(select(Change).order_by(Change.id)).all()
    assert [c.kind for c in changes] == ["changed", "changed"]
    assert changes[1].new_snapshot_id == changes[0].old_snapshot_id
    assert count(session, Snapshot) == 2


@pytest.mark.parametrize(
    ("second", "version", "parsed"),
    [
        ("ketamine_oral_alert_synthetic_v1.html", "1", 0),  # the very same region: not parsed
        ("ketamine_oral_alert_synthetic_v4_reflow.html", "1", 1),  # new markup: parsed, same text
        ("ketamine_oral_alert_synthetic_v1.html", "2", 1),  # a new normalizer parses it again
    ],
)
def test_only_a_new_input_or_a_new_normalizer_is_parsed_again(
    session: Session,
    registered,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    second: str,
    version: str,
    parsed: int,
) -> None:
    (source,) = registered(make_source())
    crawl_page(session, source, page("ketamine_oral_alert_synthetic_v1.html"), clock)
    calls: list[Observation] = []
    real = canonical.normalized_text
    monkeypatch.setattr(batch, "normalized_text", lambda o: calls.append(o) or real(o))
    monkeypatch.setattr(canonical, "NORMALIZER_VERSION", version)
    assert crawl_page(session, source, page(second), clock) is None
    assert len(calls) == parsed
    assert count(session, Change) == 0 and count(session, Snapshot) == 1


def test_404_removes_a_page_once_and_its_return_is_a_change(
    session: Session, registered, clock: Clock
) -> None:
    (source,) = registered(make_source())
    html = page("ketamine_oral_alert_synthetic_v1.html")
    crawl_page(session, source, html, clock)
    for _ in range(2):
        now = clock.tick()
        HistoryWriter([source]).record_fetch(
            session, SourceFetch(source.id, source.url, GONE, now, http_status=404), now
        )
        session.commit()
    assert [c.kind for c in session.exec(select(Change)).all()] == ["removed"]
    assert session.exec(select(Document)).one().removed_at is not None
    crawl_page(session, source, html, clock)
    assert [c.kind for c in session.exec(select(Change).order_by(Change.id)).all()] == [
        "removed",
        "changed",
    ]


@pytest.mark.parametrize("outcome", [FAILED, DRIFT, NOT_MODIFIED])
def test_fetch_without_content_never_changes_content(
    session: Session, registered, clock: Clock, outcome: str
) -> None:
    (source,) = registered(make_source())
    crawl_page(session, source, page("ketamine_oral_alert_synthetic_v1.html"), clock)
    now = clock.tick()
    HistoryWriter([source]).record_fetch(
        session, SourceFetch(source.id, source.url, outcome, now, http_status=503), now
    )
    session.commit()
    assert count(session, Change) == 0
    assert count(session, Snapshot) == 1
    assert count(session, Fetch) == 2


def test_validators_are_kept_only_from_a_recorded_200(
    session: Session, registered, clock: Clock
) -> None:
    (source,) = registered(make_source())
    now = clock.tick()
    fetch = SourceFetch(
        source.id, source.url, OK, now, etag='"abc"', last_modified="Mon, 02 Nov 2026 09:00:00 GMT"
    )
    HistoryWriter([source]).record_fetch(session, fetch, now)
    HistoryWriter([source]).record_fetch(
        session, SourceFetch(source.id, source.url, FAILED, now, etag='"zzz"'), now
    )
    session.commit()
    row = session.get(Source, source.id)
    assert row is not None and row.etag == '"abc"'
    HistoryWriter([make_source(url="https://www.fda.gov/moved")]).sync_sources(session)
    assert row.etag is None  # a new URL must not be revalidated with the old ETag


MOVED = "https://www.fda.gov/drugs/human-drug-compounding/moved"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({}, {"etag": '"abc"', "documents_since": True}),
        ({"title": "Renamed"}, {"title": "Renamed", "etag": '"abc"', "documents_since": True}),
        ({"url": MOVED}, {"url": MOVED, "etag": None, "documents_since": True}),
        ({"follow_documents": False}, {"etag": '"abc"', "documents_since": False}),
    ],
    ids=["unchanged", "new-title", "new-url", "documents-no-longer-followed"],
)
def test_an_edit_of_sources_toml_reaches_the_source_row_and_nothing_else(
    session: Session, registered, clock: Clock, edit: dict[str, object], expected: dict
) -> None:
    """A new URL forgets the validators; not following documents ends their baseline."""
    (source,) = registered(make_source(follow_documents=True))
    row = session.get(Source, source.id)
    assert row is not None
    row.etag, row.documents_since = '"abc"', clock.tick()
    session.commit()

    HistoryWriter([replace(source, **edit)]).sync_sources(session)  # type: ignore[arg-type]
    session.commit()

    row = session.get(Source, source.id)
    assert row is not None
    wanted = {"title": source.title, "url": source.url, **expected}
    seen = {
        "title": row.title,
        "url": row.url,
        "etag": row.etag,
        "documents_since": row.documents_since is not None,
    }
    assert seen == wanted


def test_failing_source_alerts_once_after_threshold_and_once_on_recovery(
    session: Session, registered, clock: Clock
) -> None:
    from db.models import Alert

    (source,) = registered(make_source())
    recipients = [Recipient(email="officer@clinic.example")]
    outcomes = [FAILED, FAILED, FAILED, FAILED, OK, FAILED]
    for outcome in outcomes:
        now = clock.tick()
        HistoryWriter([source], recipients=recipients, failure_threshold=3).record_fetch(
            session, SourceFetch(source.id, source.url, outcome, now, error="HTTP 503"), now
        )
        session.commit()
    notices = [a.kind for a in session.exec(select(Alert).order_by(Alert.id)).all()]
    assert notices == ["source_failing", "source_recovered"]
    assert session.get(Source, source.id).consecutive_failures == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("batched", [False, True])
def test_a_batch_of_304s_records_what_one_by_one_recording_does(
    session: Session, registered, clock: Clock, batched: bool
) -> None:
    """The pipeline writes 304s in bulk: a failing source must still recover, once, by a 304."""
    from db.models import Alert

    failing, healthy = registered(make_source(), make_source(id="spravato_rems", url="https://a/"))
    recipients = [Recipient(email="officer@clinic.example")]
    for _ in range(3):
        now = clock.tick()
        fetch = SourceFetch(failing.id, failing.url, FAILED, now, error="HTTP 503")
        HistoryWriter([failing], recipients=recipients, failure_threshold=3).record_fetch(
            session, fetch, now
        )
        session.commit()
    now = clock.tick()
    answers = [
        SourceFetch(s.id, s.url, NOT_MODIFIED, now, http_status=304) for s in (failing, healthy)
    ]
    if batched:
        sources = {s.id: s for s in (failing, healthy)}
        HistoryWriter(sources, recipients=recipients).record_not_modified(session, answers, now)
    else:
        for answer, source in zip(answers, (failing, healthy), strict=True):
            HistoryWriter([source], recipients=recipients).record_fetch(session, answer, now)
    session.commit()
    notices = [a.kind for a in session.exec(select(Alert).order_by(Alert.id)).all()]
    assert notices == ["source_failing", "source_recovered"]
    for source in (failing, healthy):
        row = session.get(Source, source.id)
        assert row is not None and row.health == "ok" and row.consecutive_failures == 0
        assert row.last_checked_at == now
    last = session.exec(select(Fetch).order_by(col(Fetch.id).desc()).limit(2)).all()
    assert sorted((f.source_id, f.outcome, f.http_status) for f in last) == [
        (failing.id, NOT_MODIFIED, 304),
        (healthy.id, NOT_MODIFIED, 304),
    ]


FEED = make_source(id="fda_recalls_rss", kind="feed", url="https://www.fda.gov/rss.xml", tier="T3")


def crawl_feed(
    session: Session, source: SourceConfig, items: list[tuple[str, str]], clock: Clock
) -> list[Change]:
    """One fetch of a feed as the pipeline records it: its items, then the fetch record."""
    now = clock.tick()
    changes = []
    for key, text in items:
        change = HistoryWriter([source]).record_observation(
            session, item(source, key, text, text, now), now
        )
        changes += [change] if change else []
    fetch = SourceFetch(source.id, source.url, OK, now, documents=len(items))
    HistoryWriter([source]).record_fetch(session, fetch, now, changes=len(changes))
    session.commit()
    return changes


@pytest.mark.parametrize("batched", [False, True])
def test_a_batch_of_observations_records_what_one_by_one_recording_does(
    session: Session, registered, clock: Clock, batched: bool
) -> None:
    """`record_batch` writes a fetch's items as set operations; the history must not notice.

    Three fetches of a feed: a baseline, an edit plus a new item, then the edited item back at
    its first version (its earlier snapshot is reused) plus another new item.
    """
    registered(FEED)
    a, b, c, d = (f"https://www.fda.gov/{name}" for name in "abcd")
    fetches = [
        [(a, "Ketamine alert"), (b, "Egg recall")],
        [(a, "Ketamine alert, updated"), (b, "Egg recall"), (c, "Spravato REMS")],
        [(a, "Ketamine alert"), (c, "Spravato REMS"), (d, "Esketamine label")],
    ]
    for number, items in enumerate(fetches):
        now = clock.tick()
        body = f"<rss>{number}</rss>".encode()
        observed = [replace(item(FEED, key, text, text, now), body=body) for key, text in items]
        writer = HistoryWriter([FEED], recipients=[Recipient(email="officer@clinic.example")])
        if batched:
            made = writer.record_batch(session, observed, now)
        else:
            made = [
                writer.record_observation(session, observation, now) for observation in observed
            ]
        fetch = SourceFetch(FEED.id, FEED.url, OK, now, documents=len(items))
        writer.record_fetch(session, fetch, now, changes=len([m for m in made if m]))
        session.commit()

    def sha(text: str) -> str:  # what a snapshot of an item with this title and text hashes
        return normalize.content_sha256(normalize.feed_item_text(text, text))

    shas = {s.id: s.sha256 for s in session.exec(select(Snapshot)).all()}
    changes = session.exec(select(Change).order_by(Change.id)).all()
    assert [
        (ch.kind, ch.doc_key, shas.get(ch.old_snapshot_id), shas[ch.new_snapshot_id])
        for ch in changes
    ] == [
        ("changed", a, sha("Ketamine alert"), sha("Ketamine alert, updated")),
        ("new", c, None, sha("Spravato REMS")),
        ("changed", a, sha("Ketamine alert, updated"), sha("Ketamine alert")),
        ("new", d, None, sha("Esketamine label")),
    ]
    # The flip back reuses the first snapshot; the three feed bodies are stored once each, and
    # each snapshot points at the body of the fetch that made it (the evidence's raw body).
    assert (count(session, Snapshot), count(session, Blob), count(session, Alert)) == (5, 3, 4)
    bodies = [hashlib.sha256(f"<rss>{n}</rss>".encode()).hexdigest() for n in range(3)]
    made = session.exec(select(Snapshot.body_sha256).order_by(Snapshot.id)).all()
    assert made == [bodies[0], bodies[0], bodies[1], bodies[1], bodies[2]]
    current = {doc.doc_key: shas[doc.current_snapshot_id] for doc in session.exec(select(Document))}
    assert current == {
        a: sha("Ketamine alert"),
        b: sha("Egg recall"),
        c: sha("Spravato REMS"),
        d: sha("Esketamine label"),
    }


def test_feed_items_after_the_baseline_are_new_and_rolled_off_items_are_not_removed(
    session: Session, registered, clock: Clock
) -> None:
    registered(FEED)
    crawl_feed(
        session, FEED, [("https://www.fda.gov/a", "A"), ("https://www.fda.gov/b", "B")], clock
    )
    # b rolled off the feed, c appeared.
    crawl_feed(
        session, FEED, [("https://www.fda.gov/a", "A"), ("https://www.fda.gov/c", "C")], clock
    )
    changes = session.exec(select(Change)).all()
    assert [(c.kind, c.doc_key) for c in changes] == [("new", "https://www.fda.gov/c")]


def test_first_watched_item_after_a_first_crawl_that_kept_nothing_is_new(
    session: Session, registered, clock: Clock
) -> None:
    """A terms-filtered feed whose first crawl had no ketamine item has still been baselined."""
    source = make_source(
        id="fda_medwatch_rss", kind="feed", url="https://www.fda.gov/m.xml", terms=("@ketamine",)
    )
    registered(source)
    assert crawl_feed(session, source, [("https://www.fda.gov/egg", "Egg recall")], clock) == []
    (change,) = crawl_feed(
        session, source, [("https://www.fda.gov/k", "Compounded ketamine troches recalled")], clock
    )
    assert change.kind == "new" and change.doc_key == "https://www.fda.gov/k"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Compounded ketamine troches recalled", True),
        ("Spravato nasal spray: REMS update", True),
        ("Ketorolac tromethamine injection recall", False),
        ("Undeclared egg in onion soup mix", False),
    ],
)
def test_feed_terms_keep_only_matching_items(
    session: Session, registered, clock: Clock, text: str, kept: bool
) -> None:
    source = make_source(
        id="fda_medwatch_rss", kind="feed", url="https://www.fda.gov/m.xml", terms=("@ketamine",)
    )
    registered(source)
    crawl_feed(session, source, [("https://www.fda.gov/old", "ketamine")], clock)
    changes = crawl_feed(session, source, [("https://www.fda.gov/x", text)], clock)
    assert len(changes) == int(kept)
    assert count(session, Snapshot) == 1 + kept


def test_change_enqueues_alerts_in_the_same_transaction(
    session: Session, registered, clock: Clock
) -> None:
    from db.models import Alert

    (source,) = registered(make_source())
    recipients = [
        Recipient(email="officer@clinic.example"),
        Recipient(email="owner@clinic.example", min_severity="T1"),
    ]
    crawl_page(session, source, page("ketamine_oral_alert_synthetic_v1.html"), clock)
    now = clock.tick()
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()).lower())

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", seen)
    try:
        change = HistoryWriter([source], recipients=recipients).record_observation(
            session,
            observe(source, page("ketamine_oral_alert_synthetic_v5_sentence_edited.html"), now),
            now,
        )
    finally:
        event.remove(bind, "before_cursor_execute", seen)
    assert change is not None and change.severity == "T1"
    # A change made in this transaction cannot have alerts yet: none are looked up.
    assert not [s for s in statements if s.startswith("select") and " from alert" in s]
    session.flush()
    assert count(session, Alert) == 2  # a T1: the officer (T4 and up) and the owner (T1 only)
    session.rollback()  # nothing committed: the change and its alerts vanish together
    assert count(session, Change) == 0 and count(session, Alert) == 0


def test_a_groups_changes_go_in_together_and_each_gets_its_alerts(
    session: Session, registered, clock: Clock
) -> None:
    """Sources written as one group: their changes go in with one flush (each its own flush
    was ~0.75 ms a change), then the alert rows of every one of them, none looked up first
    (nothing can name a new change)."""
    sources = registered(
        *(make_source(id=f"ketamine_{n}", url=f"https://www.fda.gov/k{n}") for n in range(3))
    )
    recipients = [
        Recipient(email="officer@clinic.example"),
        Recipient(email="owner@clinic.example", min_severity="T1"),
    ]
    for source in sources:
        crawl_page(session, source, page("ketamine_oral_alert_synthetic_v1.html"), clock)
    now = clock.tick()
    edited = page("ketamine_oral_alert_synthetic_v5_sentence_edited.html")
    writer = HistoryWriter(sources, recipients=recipients)
    states = writer.states(session, [source.id for source in sources])
    plans = [
        writer.plan_batch(session, [observe(source, edited, now)], now, states[source.id])
        for source in sources
    ]
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()).lower())

    flushes: list[int] = []

    def flushed(*_args) -> None:  # type: ignore[no-untyped-def]
        flushes.append(len([s for s in statements if s.startswith("insert into change ")]))

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", seen)
    event.listen(session, "after_flush", flushed)
    try:
        made = writer.write_plans(session, plans)
    finally:
        event.remove(bind, "before_cursor_execute", seen)
        event.remove(session, "after_flush", flushed)
    assert [[change.source_id for change in changes] for changes in made] == [
        [source.id] for source in sources
    ]
    # flushes that inserted changes (SQLite: a statement per row; PostgreSQL: one for all): one
    assert len([n for i, n in enumerate(flushes) if n > (flushes[i - 1] if i else 0)]) == 1
    assert not [s for s in statements if s.startswith("select") and " from alert" in s]
    session.commit()
    alerts = session.exec(select(Alert.change_id, Alert.recipient)).all()
    assert sorted(alerts) == sorted(
        (change.id, recipient.email) for (change,) in made for recipient in recipients
    )
