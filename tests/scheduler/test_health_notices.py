"""`history.record_fetch` health bookkeeping, fetch by fetch: when notices are queued, and to whom.

The real-crawl tests (test_source_health.py) show the same through Scrapy; these walk longer
sequences of outcomes cheaply on an in-memory history.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from db.models import Alert, Source
from monitor.config import Recipient
from monitor.history.health import untold_problems
from monitor.history.writer import HistoryWriter
from monitor.items import DRIFT, FAILED, NOT_MODIFIED, OK, SourceFetch
from tests.conftest import T0, make_source

OPS = Recipient(email="ops@example.org")


def replay(
    session: Session,
    outcomes: list[str],
    threshold: int = 3,
    recipients: tuple[Recipient, ...] = (OPS,),
    **source: object,
) -> list[list[str]]:
    """Record one fetch per outcome; return the notice kinds queued after each."""
    config = make_source(**source)
    HistoryWriter([config]).sync_sources(session)
    queued: list[list[str]] = []
    for number, outcome in enumerate(outcomes):
        now = T0 + timedelta(hours=number)
        fetch = SourceFetch(
            source_id=config.id,
            url=config.url,
            outcome=outcome,
            fetched_at=now,
            http_status=500 if outcome == FAILED else 200,
            error="HTTP 500" if outcome == FAILED else None,
        )
        HistoryWriter([config], recipients=recipients, failure_threshold=threshold).record_fetch(
            session, fetch, now
        )
        session.commit()
        queued.append([a.kind for a in session.exec(select(Alert).order_by(Alert.id)).all()])
    return queued


F, D, K, N = FAILED, DRIFT, OK, NOT_MODIFIED
FAILING, DRIFTING, RECOVERED = "source_failing", "layout_drift", "source_recovered"


@pytest.mark.parametrize(
    ("outcomes", "threshold", "overrides", "final"),
    [
        ([K, F, K, F, F, K], 3, {}, []),  # never 3 in a row: nothing at all
        ([K, F, F, F], 3, {}, [FAILING]),
        ([K, F, F, F, F, F, F], 3, {}, [FAILING]),  # one notice, however long it lasts
        ([K, F, F, F, N], 3, {}, [FAILING, RECOVERED]),  # a 304 is a success
        ([K, F, F, F, K, F, F, F], 3, {}, [FAILING, RECOVERED, FAILING]),  # a new episode
        ([K, D, D, D, K], 3, {}, [DRIFTING, RECOVERED]),
        ([K, F], 3, {"failure_threshold": 1}, [FAILING]),  # per-source threshold wins
        ([K, F, F, F, F], 5, {}, []),  # Settings.failure_threshold
    ],
)
def test_notices_follow_failures_in_a_row(
    session: Session, outcomes: list[str], threshold: int, overrides: dict, final: list[str]
) -> None:
    assert replay(session, outcomes, threshold, **overrides)[-1] == final


def test_the_source_row_says_what_went_wrong_and_clears_on_success(session: Session) -> None:
    replay(session, [K, F, F, F])
    row = session.get(Source, make_source().id)
    assert row is not None
    assert (row.health, row.consecutive_failures, row.last_error) == ("failing", 3, "HTTP 500")
    replay(session, [K])
    session.refresh(row)
    assert (row.health, row.consecutive_failures, row.last_error) == ("ok", 0, None)


def test_a_recipient_following_by_tag_gets_the_failing_notice(session: Session) -> None:
    by_tag = Recipient(email="ketamine-desk@example.org", tags=("ketamine",))
    queued = replay(session, [K, F, F, F], tags=("ketamine",), recipients=(by_tag,))
    assert queued[-1] == [FAILING]


def test_a_notice_nobody_follows_stays_owed_and_goes_out_once_someone_does(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """No recipient: the failing notice is not marked done, so configuring one later still
    tells them at the next failed check (it used to be spent on nobody)."""
    source_id = make_source().id
    with caplog.at_level("WARNING", logger="fdawatch.health"):
        assert replay(session, [K, F, F, F], recipients=())[-1] == []
    row = session.get(Source, source_id)
    assert row is not None
    assert (row.health, row.consecutive_failures, row.failure_alerted_at) == ("failing", 3, None)
    warning = (
        f"nobody was told that {source_id} is failing (3 failures in a row): no [[recipient]] "
        "in fdawatch.toml follows it; the notice goes out at its next failed check once one does"
    )
    assert caplog.messages == [warning]
    assert untold_problems(session, {}, 3) == [warning]
    assert untold_problems(session, {}, 4) == []  # a higher threshold: nothing owed yet

    assert replay(session, [F])[-1] == [FAILING]  # now OPS follows every source
    session.refresh(row)
    assert row.failure_alerted_at is not None
    assert untold_problems(session, {}, 3) == []
    assert replay(session, [K])[-1] == [FAILING, RECOVERED]


def test_a_recipient_of_other_sources_only_leaves_the_notice_owed(session: Session) -> None:
    elsewhere = Recipient(email="medwatch-desk@example.org", sources=("fda_medwatch_rss",))
    assert replay(session, [K, F, F, F], recipients=(elsewhere,))[-1] == []
    assert len(untold_problems(session, {}, 3)) == 1
