"""The benchmark still works and still scores fdawatch right: a 20-page run of `bench.run`.

Nothing here is timed: the figures are printed by `make bench`, never asserted. What is asserted
is what a user of the watcher would notice — every planted edit found, no date-only or nav-only
edit reported, new feed items found, alerts sent, and an unchanged pass answered with 304s —
on a clean fixture and on one with server errors, rate limits, cut bodies and per-request noise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from bench.fixture import Site
from bench.floor import main as floor
from bench.run import parser, run

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def bench(tmp_path: Path, *flags: str) -> dict[str, Any]:
    args: argparse.Namespace = parser().parse_args(
        ["--pages", "20", "--feeds", "3", "--work", str(tmp_path / "work"), "--no-save", *flags]
    )
    args.fdawatch_dir = str(ROOT)
    return run(args)


def test_the_fixture_plants_real_edits_and_decoys() -> None:
    truth = Site(pages=20, feeds=3).truth("http://127.0.0.1:1")
    assert truth["changed_pages"] and truth["decoy_pages"] and truth["new_feed_items"]


@pytest.mark.parametrize("flags", [(), ("--faults", "--noise")], ids=["clean", "faults+noise"])
def test_every_planted_change_is_found_and_nothing_else(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    result = bench(tmp_path, *flags)
    baseline, changed, unchanged = (result["passes"][f"pass{n}"] for n in (1, 2, 3))
    for one in (baseline, changed, unchanged):
        assert one["rc"] == 0
        assert one["pages_missed"] == one["feed_items_missed"] == []
        assert one["pages_spurious"] == one["feed_items_spurious"] == []
        assert one["decoys_reported"] == []
    assert baseline["changes"] == unchanged["changes"] == 0
    assert changed["pages_changed"] == result["truth"]["changed_pages"] > 0
    assert changed["feed_items_new"] == result["truth"]["new_feed_items"] > 0
    assert changed["emails"] >= 1
    if not flags:  # conditional requests: nothing is downloaded again when nothing changed
        assert unchanged["http"].get("304") == 23


def test_storage_keeps_each_distinct_body_once_compressed(tmp_path: Path) -> None:
    stored = bench(tmp_path)["storage"]
    assert stored["bodies_stored_bytes"] < stored["bodies_raw_bytes"] / 3
    assert stored["distinct_bodies"] <= stored["snapshots"]


def test_the_floor_measures_a_bare_crawl_of_the_same_fixture(tmp_path: Path) -> None:
    """`bench.floor`: bare and whole crawls fetch every source, then get 304 for each."""
    args = ["--pages", "20", "--feeds", "3", "--rounds", "1"]
    assert floor([*args, "--fdawatch-dir", str(ROOT), "--out", str(tmp_path)]) == 0
    [written] = tmp_path.glob("floor-N20-M3-*.json")
    result = json.loads(written.read_text())
    steps, [unchanged] = result["steps"], result["rounds"]
    assert steps["bare_scrapy_200"]["http"] == {"200": 23}
    assert steps["fdawatch_baseline"]["http"].get("200", 0) >= 23  # + robots.txt
    assert unchanged["bare_scrapy_304"]["http"] == {"304": 23}
    assert unchanged["fdawatch_unchanged"]["http"].get("304") == 23
    assert all(s["rc"] == 0 and s["cpu_s"] > 0 for s in [*steps.values(), *unchanged.values()])
