"""`make soak`: time-to-alert as a benchmark — the real daemon against a site that keeps changing.

N fda.gov-shaped sources on loopback (`bench.soak_site`: pages with `#main-content`, a few RSS
feeds, noise outside the watched region, injected 500s, resets and bursts), planted edits on a
timetable with the ground truth recorded, `fdawatch run` as a child process, a real SMTP sink
(`bench.soak_mail`), /proc sampling (`bench.soak_probe`); then SIGTERM, `fdawatch alerts send`
for what was still queued, and the report (`bench.soak_report`): JSON under bench/results/soak/
and a table on stdout.

fdawatch is driven only through its command line, its FDAWATCH_* environment and the
sources.toml / fdawatch.toml written into a scratch folder; its database is read with plain
`sqlite3`, read-only. Nothing here imports fdawatch.

    python -m bench.soak --sources 45 --interval 1m --minutes 25
    python -m bench.soak --sources 6 --feeds 2 --interval 15s --minutes 1.25 --edit-every 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import fdawatch_command, fdawatch_env, machine, python_of
from bench.soak_mail import MailSink
from bench.soak_probe import Probe
from bench.soak_report import analyse, table
from bench.soak_site import Faults, SoakServer, SoakSite

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600}
RECIPIENT = "officer@example.test"


def interval_seconds(value: str) -> int:
    """'1m' → 60; the same forms sources.toml takes (s, m, h)."""
    number, unit = value[:-1].strip(), value[-1:]
    if not number.isdigit() or unit not in INTERVAL_SECONDS:
        raise argparse.ArgumentTypeError(f"interval {value!r}: use a number and s, m or h (1m)")
    return int(number) * INTERVAL_SECONDS[unit]


def timetable(args: argparse.Namespace, pages: int, feeds: int) -> list[tuple[float, str, int]]:
    """(seconds after the daemon started, "page"/"feed", index) for every edit to plant.

    Rounds every `edit_every` seconds from `first_edit`; each round edits the next pages of a
    fixed shuffled order (so a page is edited again only after all others) and the next feed.
    """
    order = list(range(pages))
    random.Random(args.seed).shuffle(order)
    plan: list[tuple[float, str, int]] = []
    at, taken, fed = args.first_edit, 0, 0
    while at < args.minutes * 60:
        for _ in range(min(args.pages_per_round, pages)):
            plan.append((at, "page", order[taken % pages]))
            taken += 1
        for _ in range(min(args.feeds_per_round, feeds)):
            plan.append((at, "feed", fed % feeds))
            fed += 1
        at += args.edit_every
    return plan


def interval_arg(value: str) -> str:
    """argparse type: an interval `interval_seconds` understands, kept as written."""
    interval_seconds(value)
    return value


def write_config(work: Path, site: SoakSite, interval: str, jitter: float | None) -> None:
    """sources.toml (pages watch `#main-content`) and fdawatch.toml (one recipient)."""
    lines: list[str] = []
    for source in site.sources():
        lines += ["[[source]]", f'id = "{source["id"]}"', f'kind = "{source["kind"]}"']
        lines += [f'url = "{source["url"]}"', f'interval = "{interval}"', 'tier = "T3"']
        if source["kind"] == "page":
            lines.append('selector = "#main-content"')
        lines.append("")
    (work / "sources.toml").write_text("\n".join(lines))
    config = f'[[recipient]]\nemail = "{RECIPIENT}"\n'
    if jitter is not None:
        config += f"\n[scheduler]\njitter = {jitter}\n"
    (work / "fdawatch.toml").write_text(config)


def niced(command: list[str], target: int) -> list[str]:
    """`command` under `nice` so it runs at niceness `target` (no-op if already there)."""
    step = target - os.nice(0)
    return ["nice", "-n", str(step), *command] if step > 0 else command


def load_average() -> str:
    """The 1, 5 and 15 minute load (other work on the machine skews every figure)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def pending_alerts(database: Path) -> dict[str, int]:
    """Alert rows by status, read-only (what the daemon left queued when it stopped)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            return dict(db.execute("SELECT status, count(*) FROM alert GROUP BY status"))
    except sqlite3.Error as error:
        return {"error": str(error)}  # type: ignore[dict-item]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_daemon(daemon: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """SIGTERM, wait up to `timeout` s; then SIGKILL its process group if anything is left."""
    facts: dict[str, Any] = {"sigterm_at": time.time(), "exited_before_sigterm": True}
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        facts["exited_before_sigterm"] = False
    try:
        facts["daemon_rc"] = daemon.wait(timeout)
        facts["killed"] = False
    except subprocess.TimeoutExpired:
        os.killpg(daemon.pid, signal.SIGKILL)
        facts["daemon_rc"] = daemon.wait()
        facts["killed"] = True
    facts["daemon_exited"] = time.time()
    left = group_alive(daemon.pid)  # a crawl child that outlived the daemon
    facts["processes_left"] = int(left)
    if left:
        os.killpg(daemon.pid, signal.SIGKILL)
    return facts


def fdawatch_json(command: list[str], env: dict[str, str], work: Path, name: str) -> int:
    """`fdawatch <command> --json` into work/<name>.jsonl; its exit code."""
    done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True)
    (work / f"{name}.jsonl").write_text(done.stdout)
    return done.returncode


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole soak; returns the report (and leaves its files in the work folder)."""
    interval = interval_seconds(args.interval)
    feeds = args.feeds if args.feeds is not None else max(1, args.sources // 9)
    pages = args.sources - feeds
    if pages < 1:
        raise SystemExit(f"--sources {args.sources} with --feeds {feeds}: no pages left")
    work = Path(args.work or tempfile.mkdtemp(prefix="fdawatch-soak-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    site = SoakSite(pages, feeds, args.seed, args.noise_frac, args.noise_every)
    faults = Faults(args.fault_rate, args.burst_share, args.burst_seconds, args.seed)
    server = SoakServer(site, faults)
    server.start()
    sink = MailSink(work / "mail")
    daemon: subprocess.Popen[bytes] | None = None
    probe: Probe | None = None
    params = vars(args) | {
        "interval_s": interval,
        "pages": pages,
        "feeds": feeds,
        "warmup_s": args.warmup,
    }
    params = {k: v for k, v in params.items() if k not in ("work", "keep", "out", "no_save")}
    facts: dict[str, Any] = {"params": params, "machine": machine()}
    try:
        write_config(work, site, args.interval, args.jitter)
        command = fdawatch_command(Path(args.fdawatch_dir).resolve())
        env = fdawatch_env(work, args.concurrency, smtp_port=sink.port)
        plan = timetable(args, pages, feeds)
        with (work / "daemon.log").open("wb") as log, (work / "samples.jsonl").open("w") as out:
            facts["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            facts["load_at_start"] = load_average()
            daemon_command = [*command, "run"]
            daemon_env = env
            if args.heap_probe:  # the same daemon, sampling its heap from inside (heap.jsonl)
                daemon_command = [*python_of(command), "-m", "bench.heap_probe", "run"]
                daemon_env = env | {
                    "BENCH_HEAP_PROBE": str(work / "heap.jsonl"),
                    "PYTHONPATH": str(Path(args.fdawatch_dir).resolve()),
                }
            daemon = subprocess.Popen(
                niced(daemon_command, args.nice),
                env=daemon_env,
                cwd=work,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so cleanup can find a child
            )
            facts["daemon_started"] = time.time()
            probe = Probe(daemon.pid, work / "fdawatch.db", out, args.sample_every)
            probe.start()
            plant(server, plan, facts["daemon_started"], args, daemon, sink, work)
            facts["load_at_stop"] = load_average()
            facts |= stop_daemon(daemon, args.stop_timeout)
            probe.stop()
        children = {str(pid): seen for pid, seen in probe.children.items()}
        (work / "children.json").write_text(json.dumps(children))
        time.sleep(1)  # the sink writes asynchronously
        facts["alerts_pending_at_stop"] = pending_alerts(work / "fdawatch.db")
        if not args.no_flush:  # what SIGTERM left queued, as an operator would send it
            sent = subprocess.run(
                niced([*command, "alerts", "send"], args.nice),
                env=env, cwd=work, capture_output=True, text=True,
            )  # fmt: skip
            time.sleep(1)
            facts["flush"] = {"rc": sent.returncode, "output": (sent.stdout + sent.stderr)[-500:]}
        fdawatch_json(niced([*command, "changes", "--json"], args.nice), env, work, "changes")
        fdawatch_json(niced([*command, "status", "--json"], args.nice), env, work, "status")
        with server.lock:
            answers = list(server.log)
        (work / "requests.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
        facts["sources"] = [
            s | {"path": s["url"][len(site.base) :], "noisy": s["kind"] == "page" and site.noisy(n)}
            for n, s in enumerate(site.sources())
        ]
        (work / "run.json").write_text(json.dumps(facts, indent=1))
        return analyse(work) | {"work": str(work)}
    finally:
        if probe is not None:
            probe.stop()
        if daemon is not None and daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        sink.stop()
        server.shutdown()
        server.server_close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def plant(
    server: SoakServer,
    plan: list[tuple[float, str, int]],
    start: float,
    args: argparse.Namespace,
    daemon: subprocess.Popen[bytes],
    sink: MailSink,
    work: Path,
) -> None:
    """Plant each edit at its time until the run's end (or the daemon's early exit)."""
    end, number, next_note = start + args.minutes * 60, 0, start + 60
    with (work / "truth.jsonl").open("w") as truth:
        while (now := time.time()) < end and daemon.poll() is None:
            while plan and start + plan[0][0] <= now:
                _, kind, index = plan.pop(0)
                number += 1
                truth.write(json.dumps(server.plant(number, kind, index).to_dict()) + "\n")
                truth.flush()
            if now >= next_note:
                print(
                    f"soak: {(now - start) / 60:.0f} of {args.minutes} min, {number} edits, "
                    f"{len(server.log)} requests, {sink.count} e-mails",
                    file=sys.stderr,
                )
                next_note += 60
            wake = min([end, next_note, *([start + plan[0][0]] if plan else [])])
            time.sleep(max(0.05, min(1.0, wake - time.time())))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    add = p.add_argument
    add("--sources", type=int, default=45, help="pages + feeds")
    add("--feeds", type=int, default=None, help="how many of the sources are RSS feeds (N / 9)")
    add("--interval", type=interval_arg, default="1m", help="every source's interval (s, m, h)")
    add("--minutes", type=float, default=25.0, help="daemon time before SIGTERM")
    add("--edit-every", type=float, default=180.0, help="seconds between rounds of edits")
    add("--first-edit", type=float, default=180.0, help="seconds before the first round")
    add("--pages-per-round", type=int, default=2)
    add("--feeds-per-round", type=int, default=1)
    add("--fault-rate", type=float, default=0.035, help="share of requests: 500 or reset")
    add("--burst-share", type=float, default=0.15, help="share of faults that start a burst")
    add("--burst-seconds", type=float, default=8.0)
    add("--noise-frac", type=float, default=0.25, help="share of pages with a changing notice")
    add("--noise-every", type=float, default=120.0, help="seconds between notice changes")
    add("--concurrency", type=int, default=8, help="FDAWATCH_CRAWL_CONCURRENCY_PER_HOST")
    add("--jitter", type=float, default=None, help="[scheduler] jitter (default: fdawatch's)")
    add("--sample-every", type=float, default=5.0, help="seconds between /proc samples")
    add("--warmup", type=float, default=600.0,
        help="seconds left out of the trend fits: the first e-mails and ten crawls")  # fmt: skip
    add("--stop-timeout", type=float, default=300.0, help="seconds to wait after SIGTERM")
    add("--no-flush", action="store_true", help="no `fdawatch alerts send` after the stop")
    add("--heap-probe", action="store_true", help="run the daemon via bench.heap_probe")
    add("--nice", type=int, default=10, help="niceness of this driver and the daemon")
    add("--seed", type=int, default=1)
    add("--fdawatch-dir", default=str(ROOT), help="checkout whose .venv runs the daemon")
    add("--work", default="", help="working folder (default: a fresh temp folder)")
    add("--keep", action="store_true", help="keep the working folder")
    add("--out", default=str(HERE / "results" / "soak"), help="folder for the JSON report")
    add("--label", default="")
    add("--no-save", action="store_true", help="print only; write no JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.nice(max(0, args.nice - os.nice(0)))  # the site and the sink too, not only the daemon
    report = run(args)
    work = report.pop("work")
    shutdown = report["shutdown"]
    if not args.no_save:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        label = f"-{args.label}" if args.label else ""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"S{args.sources}-{args.interval}-{args.minutes:g}min-{stamp}{label}.json"
        (out / name).write_text(json.dumps(report, indent=1) + "\n")
        print(f"report: {out / name}", file=sys.stderr)
    if args.keep:
        print(f"work folder: {work}", file=sys.stderr)
    print(table(report))
    if shutdown["exited_before_sigterm"] or shutdown["exit_code"]:
        last = (report["daemon_log_tail"] or ["(no output)"])[-1]
        print(
            f"bench.soak: error: the daemon exited with code {shutdown['exit_code']}"
            f"{' before SIGTERM' if shutdown['exited_before_sigterm'] else ''}: {last}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
