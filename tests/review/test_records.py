"""Review records on SQLite and PostgreSQL: acknowledge, re-review (history kept), never mutes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from db.models import Alert
from monitor.errors import NotFound
from monitor.review.records import (
    ReviewError,
    acknowledge,
    current_reviews,
    open_changes,
    review_history,
    review_record,
)
from tests.support import alert_history as factory
from tests.support.alert_history import NOW, queue_change


def test_a_change_is_open_until_acknowledged_then_a_re_review_keeps_the_first(
    engine: Engine,
) -> None:
    change_id = queue_change(engine)
    with Session(engine) as session:
        assert review_record(current_reviews(session, [change_id]).get(change_id)) == {
            "state": "open",
            "by": None,
            "at": None,
            "disposition": None,
            "note": None,
        }
        acknowledge(
            session,
            [change_id],
            reviewer="QA@Pharmacy.example",
            disposition="action-needed",
            note="update the patient leaflet",
            now=NOW,
        )
        session.commit()
        acknowledge(
            session,
            [change_id],
            reviewer="qa@pharmacy.example",
            disposition="done",
            note="leaflet v4 issued",
            now=NOW + timedelta(days=2),
        )
        session.commit()

    with Session(engine) as session:
        current = current_reviews(session, [change_id])[change_id]
        assert review_record(current) == {
            "state": "acknowledged",
            "by": "qa@pharmacy.example",
            "at": (NOW + timedelta(days=2)).isoformat(),
            "disposition": "done",
            "note": "leaflet v4 issued",
        }
        assert [(r.disposition, r.note) for r in review_history(session, change_id)] == [
            ("action-needed", "update the patient leaflet"),
            ("done", "leaflet v4 issued"),
        ]
        assert open_changes(session, ["T1", "T2", "T3"]) == []


def test_acknowledging_never_mutes_the_next_change_of_the_document(engine: Engine) -> None:
    first = queue_change(engine)
    with Session(engine) as session:
        acknowledge(
            session, [first], reviewer="qa@pharmacy.example", disposition="no-action",
            note="", now=NOW,
        )  # fmt: skip
        session.commit()
    second = queue_change(engine, detected_at=NOW + timedelta(hours=1))

    with Session(engine) as session:
        assert [c.id for c in open_changes(session, ["T2"])] == [second]
        told = session.exec(select(Alert.recipient).where(Alert.change_id == second)).all()
        assert told == [factory.ALICE.email]


@pytest.mark.parametrize(
    ("ids", "reviewer", "disposition", "error", "message"),
    [
        ([1, 99], "qa@pharmacy.example", "done", NotFound, "no change with id 99: nothing"),
        ([1], "qa at pharmacy", "done", ReviewError, "--by 'qa at pharmacy' is not an email"),
        ([1], "qa@pharmacy.example", "maybe", ReviewError, "disposition 'maybe' is unknown"),
    ],
)
def test_bad_input_records_nothing(
    engine: Engine,
    ids: list[int],
    reviewer: str,
    disposition: str,
    error: type[Exception],
    message: str,
) -> None:
    change_id = queue_change(engine)
    assert change_id == 1
    with Session(engine) as session, pytest.raises(error, match=message):
        acknowledge(
            session, ids, reviewer=reviewer, disposition=disposition, note="", now=NOW
        )
    with Session(engine) as session:
        assert review_history(session, change_id) == []
