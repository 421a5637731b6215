"""`python -m bench.alert_memory`: does the alert path's memory level off? (issue 21)

The daemon renders and sends every alert itself (crawls run in children), so its resident memory
follows the alert path. This sends the alerts of `make demo`'s history again and again in one
process, on a copy of its database (every alert set back to pending before each round, e-mails
written to a scratch outbox), and prints the RSS after every `--every` rounds, then the
Python-level allocations that grew after the first 20 rounds (tracemalloc). Needs `make demo`
first. Nothing here is timed or asserted.

    make demo && .venv/bin/python -m bench.alert_memory --rounds 240
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import tracemalloc
from dataclasses import replace
from pathlib import Path

from sqlalchemy import text

from monitor.cli.app import AppContext, sources_for_rendering
from monitor.delivery.alerts import send_pending
from monitor.delivery.mailer import mailer_for
from monitor.runtime.memory import release_free_memory

WARM = 20
PENDING_AGAIN = "UPDATE alert SET status = 'pending', attempts = 0, next_attempt_at = NULL"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", default="var/demo", help="the folder `make demo` wrote")
    parser.add_argument("--rounds", type=int, default=240)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument(
        "--trace", action="store_true", help="list Python allocations grown after round 20"
    )
    parser.add_argument(
        "--no-trim", action="store_true", help="skip the daemon's malloc_trim after each send"
    )
    args = parser.parse_args()
    demo = Path(args.demo)
    if not (demo / "fdawatch.db").is_file():
        raise SystemExit(f"{demo / 'fdawatch.db'} is missing: run `make demo` first")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        for name in ("fdawatch.db", "sources.toml"):
            shutil.copy(demo / name, work / name)
        config = (demo / "fdawatch.toml").read_text()
        (work / "fdawatch.toml").write_text(config.replace(str(demo.resolve()), str(work)))
        app = AppContext(
            str(work / "sources.toml"),
            f"sqlite:///{work / 'fdawatch.db'}",
            str(work / "fdawatch.toml"),
        )
        engine = app.engine()
        sources = sources_for_rendering(app)
        settings = replace(app.settings, outbox_dir=work / "outbox")
        emails, base = 0, 0.0
        for number in range(args.rounds + 1):
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "UPDATE alert SET status = 'pending', attempts = 0, next_attempt_at = NULL"
                    )
                )
            report = send_pending(engine, settings, sources, app.now(), mailer_for(settings))
            emails += report.emails
            if not args.no_trim:
                release_free_memory()  # what the daemon does after each send
            if number == WARM:
                gc.collect()
                if args.trace:  # it costs memory of its own: RSS then grows with it
                    tracemalloc.start()
                base = rss_mb()
            if number % args.every == 0:
                print(f"round {number:4d}: {emails:5d} e-mails, RSS {rss_mb():6.1f} MB", flush=True)
        gc.collect()
        print(f"RSS after round {WARM}: +{rss_mb() - base:.1f} MB")
        if args.trace:
            print("Python allocations since:")
            for stat in tracemalloc.take_snapshot().statistics("filename")[:8]:
                print(f"  {stat}")


if __name__ == "__main__":
    main()
