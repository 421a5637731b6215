"""The soak's report: what the daemon did against the timetable, from the run's folder alone.

Reads what `bench.soak` left in its working folder — the ground truth (`truth.jsonl`), every
answer the site gave (`requests.jsonl`), the /proc samples, the mail sink's log, the daemon's
stderr, `fdawatch changes --json` and `status --json`, and the SQLite database (read-only, plain
`sqlite3`: crawl runs, fetches, alerts, snapshot texts) — and scores it. It never imports
fdawatch, so it keeps working while the daemon's package layout changes.

    python -m bench.soak_report WORK_FOLDER     # re-analyse a run kept with --keep
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sqlite3
import statistics
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zstandard

#: Daemon RSS growth after warm-up below which the trend counts as flat (~48 MB a day).
RSS_FLAT_MB_PER_H = 2.0
#: The RSS target needs at least this much sampling after warm-up.
RSS_MIN_SPAN_S = 3600.0
CRAWL_SHARE_TARGET = 0.9
EMAIL_SLACK_S = 30.0
TOKEN = re.compile(r"Revision (\d{4})")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # a snapshot text packed by migration 0007 and later
SKIPPED = re.compile(r'job "(.+?) \(trigger.*skipped: maximum number of running instances')


# --- small statistics ----------------------------------------------------------------------


def spread(values: list[float], digits: int = 1) -> dict[str, Any]:
    """n, min, median, p95 (nearest rank), max: the figures every delay is reported with."""
    if not values:
        return {"n": 0, "min": None, "median": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {
        "n": len(ordered),
        "min": round(ordered[0], digits),
        "median": round(statistics.median(ordered), digits),
        "p95": round(p95, digits),
        "max": round(ordered[-1], digits),
    }


def trend(points: list[tuple[float, float]]) -> dict[str, Any]:
    """Least-squares slope per hour and R² of (seconds, value) points."""
    if len(points) < 3:
        return {"n": len(points), "per_hour": None, "r2": None, "first": None, "last": None}
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    slope = sxy / sxx if sxx else 0.0
    r2 = (sxy * sxy) / (sxx * syy) if sxx and syy else 0.0
    return {
        "n": len(points),
        "per_hour": round(slope * 3600, 2),
        "r2": round(r2, 2),
        "first": ys[0],
        "last": ys[-1],
    }


def timestamp(value: str | None) -> float | None:
    """A stored or printed datetime as epoch seconds (naive values are UTC)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


# --- reading the database --------------------------------------------------------------------


def read_database(path: Path) -> dict[str, Any]:
    """Crawl runs, fetches, alerts and each change's new tokens, from a read-only connection."""
    found: dict[str, Any] = {"runs": [], "fetches": [], "alerts": [], "tokens": {}, "errors": []}
    if not path.exists():
        found["errors"].append(f"{path} missing")
        return found
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    queries = {
        "runs": "SELECT started_at, finished_at, source_ids, status FROM crawlrun",
        "fetches": "SELECT source_id, fetched_at, outcome, run_id FROM fetch",
        "alerts": "SELECT change_id, kind, status, attempts, message_id FROM alert",
        "tokens": 'SELECT c.id, o.text, n.text, n.url FROM "change" c '
        "LEFT JOIN snapshot o ON o.id = c.old_snapshot_id "
        "LEFT JOIN snapshot n ON n.id = c.new_snapshot_id",
    }
    try:
        for name, sql in queries.items():
            try:
                rows = db.execute(sql).fetchall()
            except sqlite3.Error as error:  # the schema moved: report it, keep the rest
                found["errors"].append(f"{name}: {error}")
                continue
            if name == "tokens":
                found["tokens"] = {
                    cid: {"tokens": new_tokens(unpacked(old), unpacked(new)), "url": url}
                    for cid, old, new, url in rows
                }
            else:
                found[name] = rows
        found["integrity"] = db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()
    return found


def unpacked(text: str | bytes | None) -> str | None:
    """A snapshot text as stored: plain (before migration 0007) or a zstd frame (after)."""
    if not isinstance(text, bytes):
        return text
    if text[:4] == ZSTD_MAGIC:
        text = zstandard.ZstdDecompressor().decompress(text)
    return text.decode("utf-8", "surrogatepass")


def new_tokens(old: str | None, new: str | None) -> list[str]:
    """Planted-edit tokens in the new text that the old one did not have."""
    before = set(TOKEN.findall(old or ""))
    return sorted(f"Revision {n}" for n in set(TOKEN.findall(new or "")) - before)


# --- scoring ---------------------------------------------------------------------------------


def match_edits(
    edits: list[dict[str, Any]],
    changes: list[dict[str, Any]],
    tokens: dict[int, dict[str, Any]],
    answers: dict[str, list[tuple[float, int | str]]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each planted edit with the changes that found it and its state; the unmatched changes.

    A change finds an edit when it is on the edit's source and its new snapshot brings the
    edit's token (or, for a feed item, is the planted item's URL). States: `found` (once),
    `found_twice`, `missed` (the site served the edit with a 200 and no change found it),
    `pending` (never served after it was planted: the run ended first), `before_baseline`
    (never served before it either: the first crawl saw it as the baseline).
    """
    used: set[int] = set()
    result = []
    for edit in edits:
        hits = []
        for change in changes:
            info = tokens.get(change["id"], {})
            token_hit = edit["token"] in info.get("tokens", []) or (
                not tokens and edit["token"] in f"{change.get('title')} {change.get('summary')}"
            )
            url_hit = edit.get("item_url") and edit["item_url"] in (change["url"], info.get("url"))
            if change["source"] == edit["source_id"] and (token_hit or url_hit):
                hits.append(change)
                used.add(change["id"])
        served = answers.get(edit["path"], [])
        ok = [t for t, status in served if status in (200, 304)]
        if len(hits) == 1:
            state = "found"
        elif hits:
            state = "found_twice"
        elif not any(t < edit["at"] for t in ok):
            state = "before_baseline"
        elif any(t > edit["at"] and status == 200 for t, status in served):
            state = "missed"
        else:
            state = "pending"
        result.append(edit | {"state": state, "changes": [c["id"] for c in hits]})
    return result, [c for c in changes if c["id"] not in used]


def crawl_counts(
    fetches: list[tuple[Any, ...]], sources: list[str], scheduled: float
) -> dict[str, Any]:
    """Fetches per source against duration / interval, and the gaps between them."""
    times: dict[str, list[float]] = {source: [] for source in sources}
    outcomes: Counter[str] = Counter()
    for source_id, fetched_at, outcome, _ in fetches:
        if source_id in times and (at := timestamp(fetched_at)) is not None:
            times[source_id].append(at)
            outcomes[outcome] += 1
    counts = {source: len(values) for source, values in times.items()}
    gaps = [b - a for values in times.values() for a, b in itertools.pairwise(sorted(values))]
    share = [n / scheduled for n in counts.values()] if scheduled else []
    reaching = sum(1 for s in share if s >= CRAWL_SHARE_TARGET)
    return {
        "scheduled_per_source": round(scheduled, 1),
        "per_source": spread([float(n) for n in counts.values()]),
        "share_of_schedule": spread(share, digits=3) | {"sources_at_90pct": reaching},
        "gap_s": spread(gaps) | {"mean": round(statistics.fmean(gaps), 1) if gaps else None},
        "fetch_outcomes": dict(outcomes),
        "by_source": counts,
    }


def process_starts(
    runs: list[tuple[Any, ...]], children: dict[str, Any], window: tuple[float, float]
) -> dict[str, Any]:
    """Crawl processes: the daemon's `crawlrun` rows, and the children /proc sampling saw."""
    sizes: Counter[int] = Counter()
    spans: list[tuple[float, float]] = []
    for started_at, finished_at, source_ids, _ in runs:
        ids = json.loads(source_ids) if isinstance(source_ids, str) else source_ids
        sizes[len(ids or [])] += 1
        start, end = timestamp(started_at), timestamp(finished_at)
        if start is not None:
            spans.append((start, end if end is not None else window[1]))
    busy, reach = 0.0, window[0]
    for start, end in sorted(spans):  # union of the runs' time, clipped to the daemon's life
        start, end = max(start, reach), min(end, window[1])
        if end > start:
            busy += end - start
            reach = end
    hours = (window[1] - window[0]) / 3600 or 1
    return {
        "crawl_runs": len(runs),
        "crawl_runs_per_hour": round(len(runs) / hours, 1),
        "batch_sizes": {str(k): v for k, v in sorted(sizes.items())},
        "single_source_runs": sizes.get(1, 0),
        "run_duration_s": spread([end - start for start, end in spans]),
        "crawl_busy_s": round(busy, 1),
        "crawl_busy_share": round(busy / (window[1] - window[0]), 3),
        "children_seen": len(children),
    }


def mail_scores(
    mails: list[dict[str, Any]], changes: list[dict[str, Any]], exit_at: float
) -> dict[str, Any]:
    """Duplicates by Message-ID, how many e-mails list each change, what came after the stop."""
    ids = Counter(m["message_id"] for m in mails)
    listing = Counter(cid for m in mails for cid in m["changes"])
    per_change = Counter(min(listing.get(c["id"], 0), 2) for c in changes)
    change_mails = [m for m in mails if m["changes"]]
    return {
        "emails": len(mails),
        "change_emails": len(change_mails),
        "other_emails": len(mails) - len(change_mails),  # health notices, digests
        "emails_after_stop": sum(1 for m in mails if m["t"] > exit_at),
        "distinct_message_ids": len(ids),
        "duplicate_message_ids": sum(n - 1 for n in ids.values() if n > 1),
        "changes_in_0_emails": per_change.get(0, 0),
        "changes_in_1_email": per_change.get(1, 0),
        "changes_in_2plus_emails": per_change.get(2, 0),
        "changes_per_email": spread([float(len(m["changes"])) for m in change_mails]),
        "emails_per_change": round(len(change_mails) / len(changes), 2) if changes else None,
        "recipients": sorted({m["to"] for m in mails}),
    }


def delays(
    edits: list[dict[str, Any]],
    changes: dict[int, dict[str, Any]],
    mails: list[dict[str, Any]],
    exit_at: float,
) -> dict[str, Any]:
    """Edit → detection, edit → e-mail and detection → e-mail, for e-mails sent while running."""
    first_mail: dict[int, float] = {}
    for mail in sorted(mails, key=lambda m: m["t"]):
        for cid in mail["changes"]:
            first_mail.setdefault(cid, mail["t"])
    detection, to_email, detect_to_email = [], [], []
    unsent_at_stop = 0
    for edit in edits:
        if not edit["changes"]:
            continue
        change = changes[edit["changes"][0]]
        detected = timestamp(change["detected_at"]) or 0.0
        detection.append(detected - edit["at"])
        sent = first_mail.get(change["id"])
        if sent is None or sent > exit_at:
            unsent_at_stop += 1
            continue
        to_email.append(sent - edit["at"])
        detect_to_email.append(sent - detected)
    return {
        "detection_s": spread(detection),
        "edit_to_email_s": spread(to_email),
        "detection_to_email_s": spread(detect_to_email),
        "found_but_not_emailed_by_stop": unsent_at_stop,
    }


def fault_counts(requests: list[dict[str, Any]], robots: str = "/robots.txt") -> dict[str, Any]:
    faults = [r for r in requests if r["fault"]]
    return {
        "requests": len(requests),
        "status": dict(Counter(str(r["status"]) for r in requests)),
        "faults": len(faults),
        "fault_share": round(len(faults) / len(requests), 4) if requests else None,
        "by_kind": dict(Counter(r["fault"] for r in faults)),
        "bursts": sum(1 for r in requests if r.get("burst")),
        "on_robots_txt": sum(1 for r in faults if r["path"] == robots),
        "robots_txt_requests": sum(1 for r in requests if r["path"] == robots),
    }


def noise_refetches(
    requests: list[dict[str, Any]], edits: list[dict[str, Any]], noisy: list[str]
) -> int:
    """Full 200 answers to noisy pages that no planted edit explains (the noise's re-downloads)."""
    planted: dict[str, list[float]] = {}
    for edit in edits:
        planted.setdefault(edit["path"], []).append(edit["at"])
    count = 0
    for path in noisy:
        answers = [(r["t"], r["status"]) for r in requests if r["path"] == path]
        last_ok = None
        for at, status in answers:
            if status not in (200, 304):
                continue
            edited = last_ok is not None and any(last_ok < t < at for t in planted.get(path, []))
            if status == 200 and last_ok is not None and not edited:
                count += 1
            last_ok = at
    return count


def daemon_log(text: str) -> dict[str, Any]:
    skipped: Counter[str] = Counter()
    for line in text.splitlines():
        if match := SKIPPED.search(line):
            name = match.group(1)
            skipped["crawl" if name.startswith("crawl ") else name] += 1
    return {
        "lines": len(text.splitlines()),
        "warnings": sum(1 for line in text.splitlines() if " WARNING " in line),
        "errors": sum(1 for line in text.splitlines() if " ERROR " in line),
        "tracebacks": text.count("Traceback (most recent call last)"),
        "skipped_max_instances": dict(skipped),
        "misfires": sum(1 for line in text.splitlines() if "was missed by" in line),
    }


def memory_trend(
    samples: list[dict[str, Any]], start: float, stop: float, warmup: float
) -> dict[str, Any]:
    """Least-squares trends from `warmup` s after the start to SIGTERM (not the shutdown)."""
    after = [s for s in samples if start + warmup <= s["t"] <= stop]
    span = (after[-1]["t"] - after[0]["t"]) if len(after) > 1 else 0.0

    def fit(key: str) -> dict[str, Any]:
        return trend([(s["t"] - start, float(s[key])) for s in after if s.get(key) is not None])

    keys = ("rss_mb", "tree_rss_mb", "tree_procs", "fds", "threads", "tree_cpu_s")
    series, due = [], start
    for sample in samples:  # one sample a minute, for the README's time table
        if start <= sample["t"] <= stop and sample["t"] >= due:
            minute = round((sample["t"] - start) / 60, 1)
            series.append({"min": minute} | {k: sample[k] for k in keys})
            due += 60
    last_hour = [s for s in after if s["t"] >= stop - RSS_MIN_SPAN_S]
    return {
        "warmup_s": warmup,
        "span_after_warmup_s": round(span, 1),
        "samples": len(samples),
        "daemon_rss_mb": fit("rss_mb"),
        # A run longer than warm-up + 1 h: does the growth slow down, or keep its pace?
        "daemon_rss_last_hour_mb": (
            trend([(s["t"] - start, float(s["rss_mb"])) for s in last_hour])
            if span >= 2 * RSS_MIN_SPAN_S
            else None
        ),
        "tree_rss_mb": fit("tree_rss_mb"),
        "fds": fit("fds"),
        "threads": fit("threads"),
        "max_tree_procs": max((s["tree_procs"] for s in samples), default=None),
        "peak_tree_rss_mb": max((s["tree_rss_mb"] for s in samples), default=None),
        "cpu_s": samples[-1]["tree_cpu_s"] if samples else None,
        "per_minute": series,
    }


def targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's three targets as met / not met (/ not assessed when the run cannot tell)."""
    interval = report["params"]["interval_s"]
    share = report["crawls"]["share_of_schedule"]["min"]
    p95 = report["delays"]["edit_to_email_s"]["p95"]
    rss = report["trend"]["daemon_rss_mb"]["per_hour"]
    span = report["trend"]["span_after_warmup_s"]

    def verdict(ok: bool | None) -> str:
        return "not assessed" if ok is None else "met" if ok else "not met"

    return {
        "crawls": {
            "target": f"every source crawled >= {CRAWL_SHARE_TARGET:.0%} of its scheduled times",
            "measured": share,
            "status": verdict(None if share is None else share >= CRAWL_SHARE_TARGET),
        },
        "edit_to_email": {
            "target": f"edit-to-email p95 <= interval + {EMAIL_SLACK_S:.0f} s "
            f"({interval + EMAIL_SLACK_S:.0f} s)",
            "measured": p95,
            "status": verdict(None if p95 is None else p95 <= interval + EMAIL_SLACK_S),
        },
        "rss_flat": {
            "target": f"daemon RSS slope <= {RSS_FLAT_MB_PER_H} MB/h after warm-up, over >= "
            f"{RSS_MIN_SPAN_S / 3600:.0f} h",
            "measured": rss,
            "status": verdict(
                None if rss is None or span < RSS_MIN_SPAN_S else rss <= RSS_FLAT_MB_PER_H
            ),
        },
    }


# --- the whole report ------------------------------------------------------------------------


def heap_trend(rows: list[dict[str, Any]], warmup: float) -> dict[str, Any] | None:
    """`--heap-probe`: the daemon's heap from inside, first and last sample after warm-up."""
    after = [row for row in rows if row["min"] * 60 >= warmup]
    if not after:
        return None
    return {"samples": len(after), "first": after[0], "last": after[-1]}


def analyse(work: Path, warmup: float | None = None) -> dict[str, Any]:
    """The report of a kept soak folder; `warmup` (s) re-fits the trends from another start."""
    run = json.loads((work / "run.json").read_text())
    params = run["params"]
    if warmup is not None:
        params["warmup_s"] = warmup
    start, stop, exit_at = run["daemon_started"], run["sigterm_at"], run["daemon_exited"]
    edits = lines(work / "truth.jsonl")
    requests = lines(work / "requests.jsonl")
    samples = lines(work / "samples.jsonl")
    mails = lines(work / "mail" / "received.jsonl")
    changes = lines(work / "changes.jsonl")
    status = lines(work / "status.jsonl")
    children = json.loads((work / "children.json").read_text())
    db = read_database(work / "fdawatch.db")
    log = work / "daemon.log"
    log_text = log.read_text(errors="replace") if log.exists() else ""
    answers: dict[str, list[tuple[float, int | str]]] = {}
    for r in requests:
        answers.setdefault(r["path"], []).append((r["t"], r["status"]))
    scored, unmatched = match_edits(edits, changes, db["tokens"], answers)
    states = Counter(e["state"] for e in scored)
    sources = [s["id"] for s in run["sources"]]
    noisy = [s["path"] for s in run["sources"] if s.get("noisy")]
    alerts = db["alerts"]
    report: dict[str, Any] = {
        "params": params,
        "machine": run.get("machine", {}),
        "started": run["started"],
        "duration_s": round(stop - start, 1),
        "load": {"start": run.get("load_at_start"), "stop": run.get("load_at_stop")},
        "crawls": crawl_counts(db["fetches"], sources, (stop - start) / params["interval_s"]),
        "process_starts": process_starts(db["runs"], children, (start, exit_at)),
        "delays": delays(scored, {c["id"]: c for c in changes}, mails, exit_at),
        "scores": {
            "planted": len(scored),
            "found_once": states["found"],
            "found_twice": states["found_twice"],
            "missed": states["missed"],
            "pending_at_stop": states["pending"],
            "before_baseline": states["before_baseline"],
            "changes": len(changes),
            "changes_not_planted": len(unmatched),
            "noise_pages": len(noisy),
            "noise_full_refetches": noise_refetches(requests, edits, noisy),
            "failed_fetches": sum(1 for f in db["fetches"] if f[2] == "failed"),
        },
        "mail": mail_scores(mails, changes, exit_at),
        "alerts": {
            "by_status": dict(Counter(a[2] for a in alerts)),
            "by_kind": dict(Counter(a[1] for a in alerts)),
            "max_attempts": max((a[3] for a in alerts), default=None),
            "pending_at_stop": run.get("alerts_pending_at_stop"),
            "flush": run.get("flush"),
        },
        "faults": fault_counts(requests),
        "trend": memory_trend(samples, start, stop, params["warmup_s"]),
        "heap": heap_trend(lines(work / "heap.jsonl"), params["warmup_s"]),
        "shutdown": {
            "sigterm_to_exit_s": round(exit_at - stop, 2),
            "exit_code": run["daemon_rc"],
            "exited_before_sigterm": run.get("exited_before_sigterm", False),
            "killed": run.get("killed", False),
            "processes_left": run.get("processes_left", 0),
        },
        "daemon_log": daemon_log(log_text),
        "daemon_log_tail": log_text.splitlines()[-5:],
        "status": {
            "states": dict(Counter(row.get("state") for row in status)),
            "max_failures_in_row": max((r.get("failures_in_row", 0) for r in status), default=0),
        },
        "integrity": db.get("integrity"),
        "database_errors": db["errors"],
        "edits": scored,
        "changes_not_planted": [
            {k: c.get(k) for k in ("id", "source", "kind", "detected_at", "summary")}
            for c in unmatched
        ],
    }
    scores, mail = report["scores"], report["mail"]
    report["verdict"] = {
        "daemon_ran_until_sigterm": not report["shutdown"]["exited_before_sigterm"],
        "planted_found_exactly_once": scores["found_twice"] == scores["missed"] == 0,
        "no_fault_or_noise_as_change": scores["changes_not_planted"] == 0,
        "no_duplicate_email": mail["duplicate_message_ids"] == mail["changes_in_2plus_emails"] == 0,
        "every_change_emailed": mail["changes_in_0_emails"] == 0,
    }
    report["targets"] = targets(report)
    return report


def table(report: dict[str, Any]) -> str:
    """The printed summary: one Markdown table, then the targets."""
    p, c, ps = report["params"], report["crawls"], report["process_starts"]
    d, s, m, t = report["delays"], report["scores"], report["mail"], report["trend"]
    f, sd, lg = report["faults"], report["shutdown"], report["daemon_log"]

    def three(x: dict[str, Any]) -> str:
        return f"{x['median']} / {x['p95']} / {x['max']} s (n {x['n']})"

    def slope(x: dict[str, Any], unit: str) -> str:
        return f"{x['first']} → {x['last']} {unit}, {x['per_hour']} {unit}/h (R² {x['r2']})"

    rows = [
        ("run", f"{p['sources']} sources ({p['feeds']} feeds) at {p['interval']}, "
                f"{report['duration_s']} s, faults {p['fault_rate']:.1%}; load "
                f"{report['load']['start']} → {report['load']['stop']}"),
        ("crawls per source", f"{c['per_source']['min']}–{c['per_source']['max']} "
                              f"(median {c['per_source']['median']}) of "
                              f"{c['scheduled_per_source']} scheduled; "
                              f"{c['share_of_schedule']['sources_at_90pct']} sources ≥ 90 %"),
        ("gap between crawls", f"median {c['gap_s']['median']} s, mean {c['gap_s']['mean']} s, "
                               f"max {c['gap_s']['max']} s"),
        ("crawl processes", f"{ps['crawl_runs']} runs ({ps['crawl_runs_per_hour']}/h), "
                            f"{ps['single_source_runs']} of one source; batch sizes "
                            f"{ps['batch_sizes']}; busy {ps['crawl_busy_share']:.0%}; "
                            f"{ps['children_seen']} children seen in /proc"),
        ("edit → detection (median / p95 / max)", three(d["detection_s"])),
        ("edit → e-mail (median / p95 / max)", three(d["edit_to_email_s"])),
        ("detection → e-mail (median / p95 / max)", three(d["detection_to_email_s"])),
        ("planted changes", f"{s['planted']}: {s['found_once']} found once, {s['found_twice']} "
                            f"twice, {s['missed']} missed, {s['pending_at_stop']} pending at "
                            f"stop, {s['before_baseline']} before the baseline"),
        ("changes not planted (fault or noise)", f"{s['changes_not_planted']} (noise re-fetches "
                                                 f"{s['noise_full_refetches']}, failed fetches "
                                                 f"{s['failed_fetches']})"),
        ("e-mails", f"{m['emails']} ({m['change_emails']} with changes, {m['other_emails']} "
                    f"other, {m['emails_after_stop']} after the stop); "
                    f"{m['duplicate_message_ids']} duplicate Message-IDs; changes in 0 / 1 / 2+ "
                    f"e-mails: {m['changes_in_0_emails']} / {m['changes_in_1_email']} / "
                    f"{m['changes_in_2plus_emails']}; found but unsent at stop "
                    f"{d['found_but_not_emailed_by_stop']}"),
        ("faults injected", f"{f['faults']} of {f['requests']} requests ({f['by_kind']}, "
                            f"{f['bursts']} bursts, {f['on_robots_txt']} on robots.txt; "
                            f"{f['robots_txt_requests']} robots.txt requests in all)"),
        ("daemon RSS (after warm-up)", slope(t["daemon_rss_mb"], "MB")),
        *(
            [("daemon RSS (last hour)", slope(t["daemon_rss_last_hour_mb"], "MB"))]
            if t.get("daemon_rss_last_hour_mb")
            else []
        ),
        ("tree RSS (after warm-up)", slope(t["tree_rss_mb"], "MB")),
        ("daemon fds / threads", f"{slope(t['fds'], 'fds')}; {slope(t['threads'], 'threads')}"),
        ("CPU (daemon + children)", f"{t['cpu_s']} s"),
        ("shutdown", f"SIGTERM → exit {sd['sigterm_to_exit_s']} s, code {sd['exit_code']}, "
                     f"{sd['processes_left']} processes left"),
        ("daemon log", f"{lg['warnings']} warnings, {lg['errors']} errors, {lg['tracebacks']} "
                       f"tracebacks; skipped (max instances) {lg['skipped_max_instances']}"),
        ("database", f"integrity {report['integrity']}"),
    ]  # fmt: skip
    heap = report.get("heap")
    if heap:  # --heap-probe: what the resident size is made of
        a, b = heap["first"], heap["last"]
        rows.append((
            f"daemon heap, minute {a['min']:.0f} → {b['min']:.0f} (glibc / in use / SQLite)",
            f"{a['heap_mb']} → {b['heap_mb']} MB; {a['heap_in_use_mb']} → {b['heap_in_use_mb']}"
            f" MB; {a['sqlite_mb']} → {b['sqlite_mb']} MB",
        ))
        if "sqlite_cache_mb" in a and "sqlite_cache_mb" in b:  # probes of 7 December 2026 on
            rows.append((
                "SQLite by kind (page cache / prepared statements)",
                f"{a['sqlite_cache_mb']} → {b['sqlite_cache_mb']} MB; "
                f"{a['sqlite_statements_mb']} → {b['sqlite_statements_mb']} MB "
                f"over {b['sqlite_connections']} connections",
            ))
    out = ["| measure | result |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    if sd["exited_before_sigterm"]:  # a run that never happened must not read like one
        out = ["**The daemon exited before SIGTERM**; its last lines:", "", "    "
               + "\n    ".join(report["daemon_log_tail"]), "", *out]  # fmt: skip
    out += ["", "| target | measured | status |", "|---|---|---|"]
    out += [
        f"| {x['target']} | {x['measured']} | **{x['status']}** |"
        for x in report["targets"].values()
    ]
    verdict = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in report["verdict"].items())
    return "\n".join([*out, "", f"scores: {verdict}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak_report", description=__doc__)
    parser.add_argument("work", help="a soak's working folder (kept with --keep)")
    parser.add_argument("--json", default="", help="also write the report to this file")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds left out of the trends (default: run's)"
    )
    args = parser.parse_args(argv)
    report = analyse(Path(args.work), args.warmup)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
