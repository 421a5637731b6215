"""Claims: every due source goes to exactly one worker; a dead worker's claims run out."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from db.models import Source
from monitor.runtime import claims
from tests.support.sources import make_source

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)
SOURCES = [
    make_source(id=f"fda_source_{n:02d}", url=f"https://www.fda.gov/{n}", interval="6h")
    for n in range(12)
]


def ids(sources: list) -> list[str]:  # type: ignore[type-arg]
    return [source.id for source in sources]


def test_a_claimed_source_is_nobody_elses_until_released_or_expired(engine: Engine) -> None:
    mine = claims.claim_sources(engine, "host-a:1", SOURCES[:3], NOW, LEASE)
    assert ids(mine) == ids(SOURCES[:3])
    theirs = claims.claim_sources(engine, "host-b:2", SOURCES[:5], NOW + timedelta(minutes=1))
    assert ids(theirs) == ids(SOURCES[3:5])
    assert claims.claimed_by(engine, SOURCES[0].id, NOW) == "host-a:1"

    claims.release_sources(engine, "host-a:1", SOURCES[:1])
    claims.release_sources(engine, "host-b:2", SOURCES[1:2])  # not b's: a keeps it
    later = NOW + timedelta(minutes=2)
    assert ids(claims.claim_sources(engine, "host-b:2", SOURCES[:3], later)) == [SOURCES[0].id]

    # host-a died without releasing: its claims on 1 and 2 run out after the lease.
    after_expiry = NOW + LEASE + timedelta(seconds=1)
    assert claims.claimed_by(engine, SOURCES[1].id, after_expiry) is None
    taken = claims.claim_sources(engine, "host-c:3", SOURCES[1:3], after_expiry, LEASE)
    assert ids(taken) == ids(SOURCES[1:3])


def test_a_source_another_worker_just_checked_is_not_crawled_again(engine: Engine) -> None:
    hourly = make_source(id="fda_spravato_rems", interval="1h")
    nightly = make_source(id="fda_ketamine_oral_alert", cron="0 2 * * *")
    with Session(engine) as session:
        for source, checked in ((hourly, NOW - timedelta(minutes=20)), (nightly, NOW)):
            session.add(Source(id=source.id, kind="page", url=source.url, last_checked_at=checked))
        session.commit()
    assert claims.claim_sources(engine, "w2", [hourly, nightly], NOW) == []
    assert claims.claimed_by(engine, hourly.id, NOW) is None  # no lease left behind
    assert ids(claims.claim_sources(engine, "w2", [hourly], NOW + timedelta(minutes=11))) == [
        hourly.id
    ]
    later = NOW + claims.CRON_RECHECK
    assert ids(claims.claim_sources(engine, "w3", [nightly], later)) == [nightly.id]


def test_limit_leaves_the_rest_of_a_batch_to_the_other_workers(engine: Engine) -> None:
    first = claims.claim_sources(engine, "w1", SOURCES, NOW, LEASE, limit=5)
    second = claims.claim_sources(engine, "w2", SOURCES, NOW, LEASE, limit=5)
    third = claims.claim_sources(engine, "w3", SOURCES, NOW, LEASE, limit=5)
    assert (len(first), len(second), len(third)) == (5, 5, 2)
    assert sorted(ids(first + second + third)) == ids(SOURCES)


def test_racing_workers_never_claim_the_same_source(shared_engine: Engine) -> None:
    workers = 6
    start = threading.Barrier(workers)
    won: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            start.wait()
            won[name] = ids(claims.claim_sources(shared_engine, name, SOURCES, NOW, LEASE))
        except BaseException as error:  # reported by the assertion below, not lost in a thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    every_claim = [source_id for claimed in won.values() for source_id in claimed]
    assert sorted(every_claim) == ids(SOURCES)  # each exactly once, none lost
    for name, claimed in won.items():
        for source_id in claimed:
            assert claims.claimed_by(shared_engine, source_id, NOW) == name
