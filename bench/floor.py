"""`python -m bench.floor`: what the design card's fetch layer costs before fdawatch does anything.

Issue 7 asks for a changed pass 4× faster than urlwatch's and an unchanged pass of ≥ 500
sources/s. This measures the floor under those figures on `make bench`'s fixture: a fresh
interpreter that only imports what `fdawatch crawl` imports, and a bare Scrapy spider (fdawatch's
Scrapy settings, no add-on, no database, no parsing) that fetches every page and feed once (all
200) and then again with the ETags it got (all 304). fdawatch's own crawl then takes a baseline,
and the unchanged pass runs interleaved, bare and whole, `--rounds` times: this machine's speed
drifts by tens of per cent within minutes, so only neighbouring runs compare. Each step is its
own process (the reactor cannot restart); the JSON goes to `bench/results/floor-*.json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fixture import Faults, FixtureServer, Site
from bench.run import (
    compile_checkout,
    fdawatch_command,
    fdawatch_env,
    machine,
    measured,
    write_config,
)

#: What `fdawatch crawl --all` imports before its first request (monitor.cli pulls in the rest).
IMPORTS = (
    "import monitor.cli, monitor.runtime.crawl, monitor.runtime.crawl_process, "
    "monitor.history.writer, scrapy.crawler"
)



def run(args: argparse.Namespace) -> dict[str, Any]:
    site = Site(pages=args.pages, feeds=args.feeds, seed=args.seed)
    server = FixtureServer(site, Faults())
    server.start()
    work = Path(tempfile.mkdtemp(prefix="fdawatch-floor-"))
    try:
        server.set_version(1)
        for number in range(args.pages):
            site.page(number, 1, server.base)
        for number in range(args.feeds):
            site.feed(number, 1, server.base)
        index = server.index()
        write_config(work, index)
        (work / "urls.json").write_text(json.dumps([*index["pages"], *index["feeds"]]))
        checkout = Path(args.fdawatch_dir).resolve()
        compile_checkout(checkout)
        venv_python = checkout / ".venv" / "bin" / "python"
        python = str(venv_python) if venv_python.exists() else sys.executable
        bare = [python, "-m", "bench.bare_spider", "urls.json", "validators.json"]
        crawl = [*fdawatch_command(checkout), "crawl", "--all"]
        env = {**fdawatch_env(work, args.concurrency), "PYTHONPATH": str(checkout)}
        env["SCRAPY_SETTINGS_MODULE"] = "spiders.settings"

        def step(name: str, command: list[str]) -> dict[str, Any]:
            server.reset_stats()
            result = measured(command, env, work, work / f"{name}.log")
            result["http"] = server.reset_stats()
            if result["rc"] != 0:
                raise SystemExit(f"{name} failed: see {work / (name + '.log')}")
            print(
                f"{name}: {result['wall_s']} s wall, {result['cpu_s']} s CPU, "
                f"{result['peak_rss_mb']} MB, HTTP {result['http']}",
                file=sys.stderr,
            )
            return result

        steps = {
            "interpreter_only": step("interpreter_only", [python, "-c", "pass"]),
            "imports": step("imports", [python, "-c", IMPORTS]),
            "bare_scrapy_200": step("bare_scrapy_200", [*bare, "1"]),
            "fdawatch_baseline": step("fdawatch_baseline", crawl),
        }
        # The unchanged pass, bare and whole, interleaved: this machine's speed drifts by
        # tens of per cent within minutes, so only neighbouring runs compare.
        rounds: list[dict[str, Any]] = []
        for _ in range(args.rounds):
            bare_304 = step("bare_scrapy_304", [*bare, "0"])
            whole = step("fdawatch_unchanged", crawl)
            rounds.append({"bare_scrapy_304": bare_304, "fdawatch_unchanged": whole})
        return {
            "params": {"pages": args.pages, "feeds": args.feeds, "seed": args.seed},
            "machine": machine(),
            "steps": steps,
            "rounds": rounds,
            "unchanged_pass_cpu_s": {
                name: statistics.median(r[name]["cpu_s"] for r in rounds)
                for name in ("bare_scrapy_304", "fdawatch_unchanged")
            },
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16, help="requests per host")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved unchanged passes")
    parser.add_argument("--fdawatch-dir", default=".", help="checkout whose .venv to measure")
    parser.add_argument("--out", default="bench/results", help="folder for the JSON result")
    args = parser.parse_args(argv)
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"floor-N{args.pages}-M{args.feeds}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    (out / name).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
