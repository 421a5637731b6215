"""`make bench`: fdawatch against the loopback fixture, three passes, scored against the truth.

Pass 1 is the baseline (every source new, no change may be reported), pass 2 runs after the
fixture switched to version 2 (planted edits must all be found; date-only and nav-only edits must
not count), pass 3 runs again with nothing changed (304s). Each pass is one `fdawatch crawl --all`
(which also sends the alerts) measured from outside: wall time, CPU time (user + sys of the
command and every child it waited for), peak RSS of the process tree. Results go to
bench/results/ as JSON, and a Markdown table to stdout.

    python -m bench.run --pages 1000 --feeds 50
    python -m bench.run --pages 200 --feeds 20 --faults --label faults
    python -m bench.run --pages 200 --feeds 20 --noise --label noise
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import zstandard

from bench.fixture import Faults, FixtureServer, Site

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class MailSink:
    """An SMTP server on loopback that counts the messages it receives (`received` is called
    with each one's bytes; `bench.soak_mail` also stores them)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.count = 0
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.received(envelope.original_content or envelope.content)
                return "250 OK"

        with socket.socket() as probe:  # aiosmtpd cannot listen on port 0
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def received(self, data: bytes | str) -> None:
        self.count += 1

    def stop(self) -> None:
        self.controller.stop()


class TreeSampler(threading.Thread):
    """Peak RSS of a process and its descendants, summed, sampled from /proc every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self.done.wait(0.05)

    def stop(self) -> int:
        self.done.set()
        self.join(2)
        return self.peak


def tree_rss(root: int) -> int:
    """Bytes resident in `root` and its descendants (Linux /proc; 0 elsewhere)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text().split()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(statm[1]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def measured(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run a command to its end: wall, user + sys CPU (children included), peak RSS."""
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    peak = sampler.stop()
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "cpu_user_s": round(usage.ru_utime, 3),
        "cpu_sys_s": round(usage.ru_stime, 3),
        # The sampler sums the tree (50 ms samples). ru_maxrss is only a fallback: it is the
        # largest single process and counts the (v)forked parent's pages before exec, i.e. the
        # fixture this driver holds in memory.
        "peak_rss_mb": round((peak or usage.ru_maxrss * 1024) / 2**20, 1),
        "ru_maxrss_mb": round(usage.ru_maxrss / 1024, 1),
        "rc": process.returncode,
    }


def write_config(work: Path, index: dict[str, list[str]]) -> dict[str, str]:
    """sources.toml and fdawatch.toml for the fixture; returns source id → URL."""
    ids: dict[str, str] = {}
    lines: list[str] = []
    for number, url in enumerate(index["pages"]):
        ids[f"p{number:05d}"] = url
        lines += ["[[source]]", f'id = "p{number:05d}"', 'kind = "page"', f'url = "{url}"']
        lines += ['selector = "main"', ""]
    for number, url in enumerate(index["feeds"]):
        ids[f"f{number:05d}"] = url
        lines += ["[[source]]", f'id = "f{number:05d}"', 'kind = "feed"', f'url = "{url}"', ""]
    (work / "sources.toml").write_text("\n".join(lines))
    (work / "fdawatch.toml").write_text('[[recipient]]\nemail = "sink@bench.invalid"\n')
    return ids


#: The packages every measured `fdawatch` process imports from the checkout.
PACKAGES = ("monitor", "db", "spiders")


def compile_checkout(checkout: Path) -> None:
    """Write the checkout's .pyc files before anything is timed.

    An installed package has them; a checkout run with PYTHONDONTWRITEBYTECODE (set on the
    benchmark machine) would otherwise compile every module in every measured process: ~4 % of
    an unchanged crawl, and unevenly between two checkouts compared (bench/README.md).
    """
    for package in PACKAGES:
        compileall.compile_dir(checkout / package, quiet=1)


def fdawatch_command(checkout: Path) -> list[str]:
    exe = checkout / ".venv" / "bin" / "fdawatch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "monitor"]


def fdawatch_env(work: Path, concurrency: int, smtp_port: int | None = None) -> dict[str, str]:
    """The environment that points `fdawatch` at the bench's files, database and mail sink.

    Without an SMTP port, alerts are written as .eml files under the work folder.
    """
    env = {
        **os.environ,
        "FDAWATCH_DATABASE_URL": f"sqlite:///{work}/fdawatch.db",
        "FDAWATCH_SOURCES": str(work / "sources.toml"),
        "FDAWATCH_CONFIG": str(work / "fdawatch.toml"),
        "FDAWATCH_VAR_DIR": str(work / "var"),
        "FDAWATCH_MAIL_FROM": "fdawatch@bench.invalid",
        "FDAWATCH_CRAWL_DELAY": "0",
        "FDAWATCH_CRAWL_CONCURRENCY_PER_HOST": str(concurrency),
    }
    if smtp_port is not None:
        env |= {"FDAWATCH_SMTP_HOST": "127.0.0.1", "FDAWATCH_SMTP_PORT": str(smtp_port)}
    return env


def python_of(command: list[str]) -> list[str]:
    """The interpreter that runs `command` (the venv's python next to its `fdawatch`)."""
    if command[0].endswith("fdawatch"):
        return [str(Path(command[0]).with_name("python"))]
    return command[:1]


def changes(command: list[str], env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [*command, "changes", "--json"], env=env, cwd=cwd, capture_output=True, text=True
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def storage(database: Path) -> dict[str, Any]:
    """Database bytes per stored version against the zlib size of the distinct versions.

    The yardstick is fixed whatever fdawatch stores: each distinct raw body and each snapshot
    text compressed alone with zlib at level 6. Bodies and texts are read back from any layout
    (zlib bodies and plain texts before migration 0007; zstd, zstd deltas and zstd texts after)
    without importing the measured tree.
    """
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, size = (
            db.execute("PRAGMA page_count").fetchone()[0],
            db.execute("PRAGMA page_size").fetchone()[0],
        )
        snapshots = db.execute("SELECT count(*) FROM snapshot").fetchone()[0]
        columns = {row[1] for row in db.execute("PRAGMA table_info(blob)")}
        codec = "codec, base_sha256" if "codec" in columns else "'zlib', NULL"
        blobs = db.execute(f"SELECT sha256, size, data, {codec} FROM blob").fetchall()
        texts = [_text(row[0]) for row in db.execute("SELECT text FROM snapshot")]
    bodies = _bodies(blobs)
    blob_raw = sum(row[1] for row in blobs)
    blob_stored = sum(len(row[2]) for row in blobs)
    body_z = sum(len(zlib.compress(body, 6)) for body in bodies.values())
    text_raw = sum(len(t.encode()) for t in texts)
    text_z = sum(len(zlib.compress(t.encode(), 6)) for t in texts)
    db_bytes = pages * size
    return {
        "db_bytes": db_bytes,
        "snapshots": snapshots,
        "db_bytes_per_version": round(db_bytes / snapshots) if snapshots else None,
        "distinct_bodies": len(blobs),
        "bodies_raw_bytes": blob_raw,
        "bodies_stored_bytes": blob_stored,
        "bodies_zlib_bytes": body_z,
        "body_bytes_per_version_compressed": round(body_z / len(blobs)) if blobs else None,
        "codecs": dict(Counter(row[3] for row in blobs)),
        "texts_raw_bytes": text_raw,
        "texts_zlib_bytes": text_z,
        "overhead_vs_compressed_versions": round(db_bytes / (body_z + text_z), 2)
        if body_z + text_z
        else None,
    }


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        if value[:4] == ZSTD_MAGIC:
            value = zstandard.ZstdDecompressor().decompress(value)
        return value.decode("utf-8", "surrogatepass")
    return value


def _bodies(blobs: list[tuple[str, int, bytes, str, str | None]]) -> dict[str, bytes]:
    """Every stored body unpacked, keyframes first (a delta needs its keyframe's bytes)."""
    found: dict[str, bytes] = {}
    for sha, _, data, codec, base in sorted(blobs, key=lambda row: row[3] == "zstd-delta"):
        if codec == "zlib":
            found[sha] = zlib.decompress(data)
        elif codec == "zstd":
            found[sha] = zstandard.ZstdDecompressor().decompress(data)
        else:
            frame = zstandard.ZstdCompressionDict(
                found[base or ""], dict_type=zstandard.DICT_TYPE_RAWCONTENT
            )
            found[sha] = zstandard.ZstdDecompressor(dict_data=frame).decompress(data)
        if hashlib.sha256(found[sha]).hexdigest() != sha:
            raise SystemExit(f"bench: stored body {sha} does not unpack to its hash")
    return found


def score(
    rows: list[dict[str, Any]], ids: dict[str, str], truth: dict[str, Any], expect_changes: bool
) -> dict[str, Any]:
    """Changes reported in one pass against what the fixture planted."""
    pages = {ids[r["source"]] for r in rows if r["source"].startswith("p")}
    items = {r["url"] for r in rows if r["source"].startswith("f") and r["kind"] == "new"}
    true_pages = set(truth["changed_pages"]) if expect_changes else set()
    true_items = set(truth["new_feed_items"]) if expect_changes else set()
    other = [r for r in rows if r["source"].startswith("f") and r["kind"] != "new"]
    return {
        "changes": len(rows),
        "pages_changed": len(pages),
        "pages_true": len(true_pages),
        "pages_missed": sorted(true_pages - pages),
        "pages_spurious": sorted(pages - true_pages),
        "decoys_reported": sorted(pages & set(truth["decoy_pages"])),
        "feed_items_new": len(items),
        "feed_items_true": len(true_items),
        "feed_items_missed": sorted(true_items - items),
        "feed_items_spurious": sorted(items - true_items) + [r["url"] for r in other],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    site = Site(pages=args.pages, feeds=args.feeds, seed=args.seed)
    faults = Faults(noise=args.noise)
    if args.faults:
        faults.err500 = faults.err429 = faults.slow = 0.05
        faults.truncate = 0.03
    server = FixtureServer(site, faults)
    server.start()
    sink = MailSink()
    work = Path(args.work or tempfile.mkdtemp(prefix="fdawatch-bench-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    try:
        ids = write_config(work, server.index())
        truth = site.truth(server.base)
        checkout = Path(args.fdawatch_dir).resolve()
        compile_checkout(checkout)
        command = fdawatch_command(checkout)
        env = fdawatch_env(work, args.concurrency, smtp_port=sink.port)
        sources = args.pages + args.feeds
        passes: dict[str, Any] = {}
        seen = 0
        for name, version in (("pass1", 1), ("pass2", 2), ("pass3", 2)):
            server.set_version(version)
            site.page(0, version, server.base)  # pre-render outside the measured time
            for number in range(args.pages):
                site.page(number, version, server.base)
            for number in range(args.feeds):
                site.feed(number, version, server.base)
            server.reset_stats()
            mails = sink.count
            crawl = [*command, "crawl", "--all"]
            if args.profile:  # cProfile of the whole command, one .prof file per pass
                prof = Path(args.profile) / f"{name}.prof"
                crawl = [*python_of(command), "-m", "cProfile", "-o", str(prof), "-m", "monitor"]
                crawl += ["crawl", "--all"]
            result = measured(crawl, env, work, work / f"{name}.log")
            time.sleep(0.2)  # the sink counts asynchronously
            rows = [r for r in changes(command, env, work) if r["id"] > seen]
            seen = max([seen, *(r["id"] for r in rows)])
            result.update(
                sources=sources,
                sources_per_s=round(sources / result["wall_s"], 1),
                emails=sink.count - mails,
                http=server.reset_stats(),
                **score(rows, ids, truth, expect_changes=name == "pass2"),
            )
            passes[name] = result
            print(
                f"{name}: {result['wall_s']} s wall, {result['cpu_s']} s CPU, "
                f"{result['peak_rss_mb']} MB, {result['sources_per_s']} sources/s, "
                f"pages {result['pages_changed']}/{result['pages_true']} "
                f"(missed {len(result['pages_missed'])}, spurious "
                f"{len(result['pages_spurious'])}), feed items {result['feed_items_new']}/"
                f"{result['feed_items_true']}, e-mails {result['emails']}, rc {result['rc']}",
                file=sys.stderr,
            )
        return {
            "params": {k: v for k, v in vars(args).items() if k != "work"},
            "machine": machine(),
            "truth": {k: v for k, v in truth.items() if not isinstance(v, list)}
            | {
                "changed_pages": len(truth["changed_pages"]),
                "decoy_pages": len(truth["decoy_pages"]),
                "new_feed_items": len(truth["new_feed_items"]),
            },
            "passes": passes,
            "storage": storage(work / "fdawatch.db"),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    finally:
        sink.stop()
        server.shutdown()
        server.server_close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory = meminfo.read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        "| pass | sources | wall s | CPU s | peak RSS MB | sources/s | pages found / true "
        "| missed | spurious | feed items new / true | e-mails | HTTP |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in result["passes"].items():
        http = ", ".join(f"{k}: {v}" for k, v in sorted(p["http"].items()))
        lines.append(
            f"| {name[-1]} | {p['sources']} | {p['wall_s']} | {p['cpu_s']} | {p['peak_rss_mb']} "
            f"| {p['sources_per_s']} | {p['pages_changed']} / {p['pages_true']} "
            f"| {len(p['pages_missed']) + len(p['feed_items_missed'])} "
            f"| {len(p['pages_spurious']) + len(p['feed_items_spurious'])} "
            f"| {p['feed_items_new']} / {p['feed_items_true']} | {p['emails']} | {http} |"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--pages", type=int, default=1000)
    p.add_argument("--feeds", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=16, help="requests per host (fixture only)")
    p.add_argument("--faults", action="store_true", help="5%% 500s, 5%% 429s, 3%% cut, 5%% slow")
    p.add_argument("--noise", action="store_true", help="invisible per-request tokens")
    p.add_argument("--fdawatch-dir", default=str(ROOT), help="checkout whose .venv to measure")
    p.add_argument("--work", default="", help="working folder (default: a fresh temp folder)")
    p.add_argument("--keep", action="store_true", help="keep the working folder")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for the JSON result")
    p.add_argument("--label", default="")
    p.add_argument("--profile", default="", help="folder for a cProfile .prof file per pass")
    p.add_argument("--no-save", action="store_true", help="print only; write no JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = run(args)
    if not args.no_save:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        label = f"-{args.label}" if args.label else ""
        path = out / f"N{args.pages}-M{args.feeds}-{time.strftime('%Y%m%d-%H%M%S')}{label}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"results: {path}", file=sys.stderr)
    print(table(result))
    storage_ = result["storage"]
    print(
        f"\nstorage: {storage_['db_bytes']} database bytes for {storage_['snapshots']} versions "
        f"({storage_['db_bytes_per_version']} B each); distinct bodies zlib-compressed "
        f"{storage_['body_bytes_per_version_compressed']} B each, stored as "
        f"{storage_['codecs']}; database / (zlib bodies + zlib texts) = "
        f"{storage_['overhead_vs_compressed_versions']}"
    )
    bad = [
        name
        for name, p in result["passes"].items()
        if p["rc"] or p["pages_missed"] or p["pages_spurious"]
        or p["feed_items_missed"] or p["feed_items_spurious"]
    ]  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
