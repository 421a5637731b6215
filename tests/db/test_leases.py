"""Leases: one holder at a time, renewal by the holder, takeover after expiry."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from db import leases
from db.engine import open_database
from tests.support.paths import ROOT

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)


def test_one_holder_at_a_time_until_expiry(engine: Engine) -> None:
    assert leases.acquire(engine, "scheduler", "host-a:1", TTL, NOW)
    assert not leases.acquire(engine, "scheduler", "host-b:2", TTL, NOW + timedelta(minutes=1))
    assert leases.acquire(engine, "scheduler", "host-a:1", TTL, NOW + timedelta(minutes=4))  # renew
    assert leases.holder_of(engine, "scheduler", NOW + timedelta(minutes=8)) == "host-a:1"
    later = NOW + timedelta(minutes=10)  # host-a died: its renewal ran out at +9
    assert leases.holder_of(engine, "scheduler", later) is None
    assert leases.acquire(engine, "scheduler", "host-b:2", TTL, later)
    assert leases.holder_of(engine, "scheduler", later) == "host-b:2"


def test_release_only_by_the_holder(engine: Engine) -> None:
    assert leases.acquire(engine, "source:fda_spravato_rems", "w1", TTL, NOW)
    leases.release(engine, "source:fda_spravato_rems", "w2")
    assert leases.holder_of(engine, "source:fda_spravato_rems", NOW) == "w1"
    leases.release(engine, "source:fda_spravato_rems", "w1")
    assert leases.acquire(engine, "source:fda_spravato_rems", "w2", TTL, NOW)


def test_a_lease_on_sqlite_loads_no_other_databases_dialect(tmp_path: Path) -> None:
    """Every daemon crawl and `run --once` takes a lease: on SQLite, PostgreSQL's dialect (~35 ms
    of imports) is not loaded for it."""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    open_database(url).dispose()  # created and migrated here: the probe opens it at head
    probe = (
        "import sys\nfrom datetime import UTC, datetime, timedelta\n"
        "from db.engine import open_database\nfrom db import leases\n"
        f"engine = open_database({url!r})\n"
        "now = datetime.now(UTC)\n"
        "assert leases.acquire(engine, 'scheduler', 'a', timedelta(minutes=5), now)\n"
        "assert not leases.acquire(engine, 'scheduler', 'b', timedelta(minutes=5), now)\n"
        "print('sqlalchemy.dialects.postgresql' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
