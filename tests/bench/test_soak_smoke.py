"""`make soak` still runs end to end and scores what it planted: a 75-second soak of 6 sources.

Nothing here is timed: crawl counts, delays and the RSS trend are printed by `make soak`, never
asserted. What is asserted is that the harness drives the real daemon to a clean stop and writes
a complete report, that its ground truth adds up, and the properties a user would notice on any
machine: no fault or noise reported as a change, no e-mail sent twice. The scoring rules
themselves are checked on hand-made inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.soak import parser, run, timetable
from bench.soak_report import (
    analyse,
    crawl_counts,
    daemon_log,
    heap_trend,
    match_edits,
    memory_trend,
    spread,
    trend,
)

ROOT = Path(__file__).resolve().parents[2]
REPORT_KEYS = {
    "params", "machine", "started", "duration_s", "load", "crawls", "process_starts", "delays",
    "scores", "mail", "alerts", "faults", "trend", "shutdown", "daemon_log", "status",
    "integrity", "database_errors", "edits", "changes_not_planted", "verdict", "targets",
    "daemon_log_tail", "heap",
}  # fmt: skip
SMOKE = [
    "--sources", "6", "--feeds", "2", "--interval", "1m", "--minutes", "1.25",
    "--edit-every", "20", "--first-edit", "20", "--jitter", "0", "--fault-rate", "0.05",
    "--noise-every", "20", "--sample-every", "2", "--warmup", "20",
]  # fmt: skip


@pytest.mark.slow
def test_a_short_soak_runs_the_daemon_and_reports_every_figure(tmp_path: Path) -> None:
    args = parser().parse_args([*SMOKE, "--work", str(tmp_path / "work"), "--keep"])
    args.fdawatch_dir = str(ROOT)
    report = run(args)
    assert set(report) == REPORT_KEYS | {"work"}
    scores = report["scores"]
    # rounds at 20, 40 and 60 s, each two pages and one feed
    assert scores["planted"] == 9
    assert len((tmp_path / "work" / "truth.jsonl").read_text().splitlines()) == 9
    states = ("found_once", "found_twice", "missed", "pending_at_stop", "before_baseline")
    assert sum(scores[s] for s in states) == 9
    assert scores["changes_not_planted"] == 0, report["changes_not_planted"]
    assert report["mail"]["duplicate_message_ids"] == 0
    assert report["mail"]["changes_in_2plus_emails"] == 0
    assert report["shutdown"]["exit_code"] == 0, report["daemon_log_tail"]
    assert report["shutdown"]["exited_before_sigterm"] is False
    assert report["shutdown"]["processes_left"] == 0
    assert report["integrity"] == "ok"
    assert report["database_errors"] == []
    assert report["crawls"]["per_source"]["n"] == 6
    assert report["crawls"]["per_source"]["min"] >= 1  # the baseline at least
    assert report["process_starts"]["crawl_runs"] >= 1
    assert report["faults"]["requests"] > 0
    assert report["trend"]["samples"] >= 10
    assert report["heap"] is None  # only with --heap-probe
    assert report["targets"]["rss_flat"]["status"] == "not assessed"  # needs an hour
    assert {t["status"] for t in report["targets"].values()} <= {"met", "not met", "not assessed"}
    refit = analyse(tmp_path / "work", warmup=0.0)  # the same run, trends from the first sample
    assert refit["trend"]["warmup_s"] == 0.0
    assert refit["trend"]["daemon_rss_mb"]["n"] > report["trend"]["daemon_rss_mb"]["n"]


def test_the_timetable_edits_every_page_before_any_page_twice() -> None:
    args = parser().parse_args(["--minutes", "10", "--edit-every", "60", "--first-edit", "120"])
    plan = timetable(args, pages=4, feeds=2)
    assert [at for at, _, _ in plan] == [at for at in range(120, 600, 60) for _ in range(3)]
    pages = [index for _, kind, index in plan if kind == "page"]
    assert sorted(pages[:4]) == sorted(pages[4:8]) == [0, 1, 2, 3]
    assert [index for _, kind, index in plan if kind == "feed"] == [0, 1] * 4


def edit(path: str, at: float, token: str, item_url: str | None = None) -> dict[str, Any]:
    source = "soak_feed_00" if item_url else path.strip("/")
    return {"path": path, "at": at, "token": token, "source_id": source, "item_url": item_url}


def change(cid: int, source: str, url: str = "", summary: str = "") -> dict[str, Any]:
    return {"id": cid, "source": source, "url": url, "title": "", "summary": summary}


@pytest.mark.parametrize(
    ("answers", "changes", "tokens", "state"),
    [
        # served before and after the edit, one change brought the token
        ([(5, 200), (15, 200)], [change(1, "a")], {1: ["Revision 0001"]}, "found"),
        ([(5, 200), (15, 200), (25, 200)], [change(1, "a"), change(2, "a")],
         {1: ["Revision 0001"], 2: ["Revision 0001"]}, "found_twice"),
        # served with a 200 after the edit, nothing found it
        ([(5, 200), (15, 200)], [], {}, "missed"),
        # a change on the same source without the token is not this edit
        ([(5, 200), (15, 200)], [change(1, "a")], {1: ["Revision 0002"]}, "missed"),
        # after the edit only faults and a 304 from before it: the run ended first
        ([(5, 200), (15, 500), (16, "reset")], [], {}, "pending"),
        # never served before the edit: the baseline already had it
        ([(15, 200)], [], {}, "before_baseline"),
    ],
)  # fmt: skip
def test_an_edit_is_scored_by_what_the_site_served_and_what_was_found(
    answers: list[tuple[float, int | str]],
    changes: list[dict[str, Any]],
    tokens: dict[int, list[str]],
    state: str,
) -> None:
    planted = [edit("/a", 10, "Revision 0001")]
    found = {cid: {"tokens": t, "url": None} for cid, t in tokens.items()}
    [scored], unmatched = match_edits(planted, changes, found, {"/a": answers})
    assert scored["state"] == state
    assert [c["id"] for c in unmatched] == [
        c["id"] for c in changes if "Revision 0001" not in tokens.get(c["id"], [])
    ]


def test_a_new_feed_item_is_found_by_its_url_and_other_changes_are_not_planted() -> None:
    url = "http://127.0.0.1/news-events/press-announcements/soak-00-item-0020"
    planted = [edit("/feed.xml", 10, "Revision 0003", item_url=url)]
    changes = [change(1, "soak_feed_00", url=url), change(2, "soak_feed_00", url="http://x/1")]
    found = {1: {"tokens": [], "url": url}, 2: {"tokens": [], "url": "http://x/1"}}
    [scored], unmatched = match_edits(planted, changes, found, {"/feed.xml": [(5, 200)]})
    assert (scored["state"], scored["changes"]) == ("found", [1])
    assert [c["id"] for c in unmatched] == [2]


def test_delays_and_trends_are_summarised_the_same_way() -> None:
    assert spread([]) == {"n": 0, "min": None, "median": None, "p95": None, "max": None}
    values = [float(v) for v in range(1, 21)]  # 1 … 20 s
    assert spread(values) == {"n": 20, "min": 1.0, "median": 10.5, "p95": 19.0, "max": 20.0}
    rising = [(t * 60.0, 100 + t * 0.5) for t in range(10)]  # +0.5 MB a minute
    assert trend(rising) == {"n": 10, "per_hour": 30.0, "r2": 1.0, "first": 100.0, "last": 104.5}
    assert trend([(0.0, 5.0), (60.0, 5.0), (120.0, 5.0)])["per_hour"] == 0.0


def rss_samples(minutes: int, mb_at: Any) -> list[dict[str, Any]]:
    keys = ("tree_rss_mb", "tree_procs", "fds", "threads", "tree_cpu_s")
    return [
        {"t": m * 60.0, "rss_mb": mb_at(m)} | dict.fromkeys(keys, 1.0) for m in range(minutes + 1)
    ]


def test_a_long_run_also_reports_its_last_hour_to_tell_a_plateau_from_a_leak() -> None:
    plateau = rss_samples(150, lambda m: 80 + min(m, 60) * 0.1)  # +6 MB, then flat
    report = memory_trend(plateau, start=0.0, stop=150 * 60.0, warmup=180.0)
    assert report["daemon_rss_mb"]["per_hour"] > 2.0  # the whole run still climbs on average
    assert report["daemon_rss_last_hour_mb"]["per_hour"] == 0.0
    leak = rss_samples(150, lambda m: 80 + m * 0.05)  # +3 MB an hour, all along
    assert memory_trend(leak, 0.0, 150 * 60.0, 180.0)["daemon_rss_last_hour_mb"]["per_hour"] == 3.0
    short = memory_trend(plateau[:90], 0.0, 89 * 60.0, 180.0)  # under warm-up + 2 h: no tail
    assert short["daemon_rss_last_hour_mb"] is None


def test_the_daemon_log_counts_skipped_jobs_by_kind() -> None:
    """APScheduler 3's own wording; a crawl job is counted as "crawl", the chores by name."""
    skipped = (
        '2026-12-01 21:10:00,001 WARNING Execution of job "{} (trigger: interval[0:01:00], next '
        'run at: 2026-12-01 21:11:00 UTC)" skipped: maximum number of running instances reached '
        "(1)"
    )
    text = "\n".join(
        [
            "2026-12-01 21:09:00,000 INFO crawling soak_page_01",
            skipped.format("crawl soak_page_01"),
            skipped.format("crawl soak_feed_02"),
            skipped.format("send alerts"),
            '2026-12-01 21:12:00,000 WARNING Run time of job "send alerts (trigger: x)" was '
            "missed by 0:00:03",
            "2026-12-01 21:13:00,000 ERROR the crawl process crashed",
            "Traceback (most recent call last):",
        ]
    )
    assert daemon_log(text) == {
        "lines": 7,
        "warnings": 4,
        "errors": 1,
        "tracebacks": 1,
        "skipped_max_instances": {"crawl": 2, "send alerts": 1},
        "misfires": 1,
    }


def test_the_crawl_target_is_judged_on_unrounded_shares() -> None:
    """17 of 20 scheduled crawls is 85 %: not met, though it would round to 0.9."""
    fetches = [("a", f"2026-12-01T10:{m:02d}:00", "ok", 1) for m in range(17)]
    fetches += [("b", f"2026-12-01T10:{m:02d}:00", "ok", 1) for m in range(20)]
    counts = crawl_counts(fetches, ["a", "b"], scheduled=20.0)
    assert counts["share_of_schedule"]["min"] == 0.85
    assert counts["share_of_schedule"]["sources_at_90pct"] == 1
    assert counts["by_source"] == {"a": 17, "b": 20}
    assert counts["gap_s"]["median"] == 60.0


def test_the_heap_trend_leaves_out_the_warm_up() -> None:
    rows = [{"min": m, "heap_mb": 20 + m} for m in (1.0, 2.0, 3.0, 4.0)]
    assert heap_trend(rows, warmup=150) == {"samples": 2, "first": rows[2], "last": rows[3]}
    assert heap_trend(rows, warmup=600) is None
    assert heap_trend([], warmup=0) is None
