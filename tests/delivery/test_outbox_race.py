"""Two senders claiming the outbox at once, interleaved deterministically, on both databases.

`claim_due` reads the due ids, then claims them with conditional UPDATEs that re-check
`_due(now)`. The race that re-check guards against: sender A reads its candidates, sender B
claims the same rows and commits, then A's UPDATE runs. A must get nothing B owns, or both send
the same email. Here B's whole claim runs at exactly that point, inside A's claim, just before A's
first UPDATE reaches the database (a `before_cursor_execute` hook), so the interleaving happens
on every run instead of once in a thousand.

On SQLite this uses the `engine` fixture's in-memory database: one connection, transactions begun
lazily by the driver, so B's claim really lands between A's read and A's UPDATE. A SQLite *file*
(as `fdawatch run` uses) opens every transaction with `BEGIN IMMEDIATE` (`db/engine.py`), which
serialises two claimers before they read; these tests prove the guard itself, which is what
PostgreSQL (READ COMMITTED, no such lock) relies on. Remove the `_due(now)` from the UPDATE's
WHERE and both databases fail `test_a_claimer_gets_nothing_a_rival_claimed_after_its_read`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, col, select

from db.models import Alert
from monitor.config import Recipient
from monitor.delivery import outbox

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SOURCE_ID = "fda_ketamine_oral_alert"
RECIPIENTS = [Recipient(email=f"officer{n}@clinic.example") for n in (1, 2, 3)]


def queue_notices(engine: Engine, due: list[datetime | None]) -> list[int]:
    """One pending T2 notice per recipient, the n-th due at `due[n]`; their ids."""
    with Session(engine) as session:
        rows = outbox.enqueue_notice(
            session, SOURCE_ID, "source_failing", "failing 3 times in a row (SYNTHETIC)",
            RECIPIENTS[: len(due)], NOW,
        )  # fmt: skip
        for row, at in zip(rows, due, strict=True):
            row.next_attempt_at = at
        session.commit()
        return [row.id for row in rows if row.id is not None]


class Rival:
    """Claimer B: runs its whole `claim_due` just before claimer A's first UPDATE executes."""

    def __init__(self, engine: Engine, now: datetime) -> None:
        self.engine, self.now = engine, now
        self.claimed: list[int] | None = None
        self.reads_before: list[str] = []  # what claimer A had run by then

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.claimed is not None:
            return  # B has had its turn (this is B's own UPDATE, or A's, after B)
        if statement.lstrip().upper().startswith("UPDATE ALERT"):
            self.claimed = []  # set first: B's own statements pass through the hook
            self.claimed.extend(outbox.claim_due(self.engine, self.now))
        else:
            self.reads_before.append(statement.split()[0].upper())


@pytest.fixture
def rival(engine: Engine) -> Iterator[Any]:
    """Install a rival claimer (at `now`) for the next `claim_due` on `engine`."""
    installed: list[Rival] = []

    def install(now: datetime) -> Rival:
        hook = Rival(engine, now)
        event.listen(engine, "before_cursor_execute", hook)
        installed.append(hook)
        return hook

    yield install
    for hook in installed:
        event.remove(engine, "before_cursor_execute", hook)


def statuses(engine: Engine) -> list[tuple[int, str]]:
    with Session(engine) as session:
        rows = session.exec(select(Alert.id, Alert.status).order_by(col(Alert.id))).all()
        return [(row_id, status) for row_id, status in rows if row_id is not None]


def test_a_claimer_gets_nothing_a_rival_claimed_after_its_read(engine: Engine, rival) -> None:
    ids = queue_notices(engine, [None, None, None])
    b = rival(NOW)

    a = outbox.claim_due(engine, NOW)

    assert b.reads_before == ["SELECT"]  # A had read its candidates: the race window was open
    assert b.claimed == ids
    assert a == []  # A's UPDATE re-checked `_due(now)` and found the rows already `sending`
    assert statuses(engine) == [(i, "sending") for i in ids]


def test_two_claimers_split_the_due_rows_without_sharing_one(engine: Engine, rival) -> None:
    """B claims at 09:00 (one row due), A at 09:10 (all three due, read before B's commit)."""
    ids = queue_notices(engine, [NOW, NOW + timedelta(minutes=10), NOW + timedelta(minutes=10)])
    b = rival(NOW)

    a = outbox.claim_due(engine, NOW + timedelta(minutes=10))

    assert b.claimed == ids[:1]
    assert a == ids[1:]
    assert statuses(engine) == [(i, "sending") for i in ids]


def test_a_lease_that_ran_out_is_claimed_again_by_the_next_claimer(engine: Engine) -> None:
    """The other half of `_due`: a sender that died leaves `sending` rows for after the lease."""
    ids = queue_notices(engine, [None, None])
    assert outbox.claim_due(engine, NOW) == ids

    assert outbox.claim_due(engine, NOW + outbox.LEASE) == []  # not yet: the lease is "<"
    assert outbox.claim_due(engine, NOW + outbox.LEASE + timedelta(seconds=1)) == ids


def test_a_row_due_later_is_not_claimed_early(engine: Engine) -> None:
    ids = queue_notices(engine, [NOW, NOW + timedelta(minutes=5)])

    assert outbox.claim_due(engine, NOW) == ids[:1]
    assert outbox.claim_due(engine, NOW + timedelta(minutes=4)) == []
    assert outbox.claim_due(engine, NOW + timedelta(minutes=5)) == ids[1:]


@pytest.mark.parametrize("status", ["sent", "failed"])
def test_a_finished_row_is_never_claimed_again_however_old_its_claim(
    engine: Engine, status: str
) -> None:
    """Only a row still `sending` past the lease was orphaned; a sent one would be a second
    email, a failed one a retry nobody asked for."""
    ids = queue_notices(engine, [None])
    assert outbox.claim_due(engine, NOW) == ids
    with Session(engine) as session:
        row = session.get(Alert, ids[0])
        assert row is not None
        row.status = status
        session.commit()

    assert outbox.claim_due(engine, NOW + outbox.LEASE + timedelta(days=30)) == []
    assert statuses(engine) == [(ids[0], status)]


class LateRow:
    """Queues one more due notice just before the claimer's first UPDATE (after its read)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queued: list[int] | None = None

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.queued is None and statement.lstrip().upper().startswith("UPDATE ALERT"):
            self.queued = []  # set first: the INSERT below passes through the hook
            with Session(self.engine) as session:
                rows = outbox.enqueue_notice(
                    session, SOURCE_ID, "source_recovered", "ok again (SYNTHETIC)",
                    RECIPIENTS[2:], NOW,
                )  # fmt: skip
                session.commit()
                self.queued.extend(row.id for row in rows if row.id is not None)


def test_a_row_queued_after_the_read_waits_for_the_next_claim(engine: Engine) -> None:
    """A claim owns what it read and re-checked, one `CLAIM_BATCH` of ids per UPDATE; a row
    queued meanwhile is the next claim's."""
    ids = queue_notices(engine, [None, None])
    late = LateRow(engine)
    event.listen(engine, "before_cursor_execute", late)
    try:
        first = outbox.claim_due(engine, NOW)
    finally:
        event.remove(engine, "before_cursor_execute", late)

    assert late.queued is not None and len(late.queued) == 1
    assert first == ids
    assert outbox.claim_due(engine, NOW) == late.queued
