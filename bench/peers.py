"""Ratios of fdawatch to its peers from one run of the shared peer harness (`make bench PEERS=1`).

The harness (../shared/bench/run_peers.py) runs urlwatch, changedetection.io and fdawatch on one
fixture in the same run and writes one JSON file; this prints, for the changed pass (pass 2) and
the baseline (pass 1), how many times faster fdawatch was in wall and CPU time, and its peak RSS
against each peer's, and stores the ratios beside the harness's file.

    python -m bench.peers bench/results/peers            # newest file in that folder
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    tools = {t["tool"]: t for t in result["tools"] if "error" not in t}
    ours = tools.get("fdawatch")
    if ours is None:
        raise SystemExit("the harness result has no fdawatch run")
    out: dict[str, Any] = {}
    for name, peer in tools.items():
        if name == "fdawatch":
            continue
        for pas in ("pass1", "pass2"):
            mine, theirs = ours.get(pas), peer.get(pas)
            if not mine or not theirs:
                continue
            out[f"{name} {pas}"] = {
                "wall_x": round(theirs["wall_s"] / max(mine["wall_s"], 1e-3), 2),
                "cpu_x": round(theirs["cpu_s"] / max(mine["cpu_s"], 1e-3), 2),
                "rss_fdawatch_mb": mine["peak_rss_mb"],
                "rss_peer_mb": theirs["peak_rss_mb"],
                "found": f"{mine.get('changed', '-')}/{mine.get('true_changed', '-')} vs "
                f"{theirs.get('changed', '-')}/{theirs.get('true_changed', '-')}",
            }
    return out


def main(argv: list[str] | None = None) -> int:
    folder = Path((argv or sys.argv[1:] or ["bench/results/peers"])[0])
    files = sorted(p for p in folder.glob("N*.json") if not p.name.endswith(".ratios.json"))
    if not files:
        raise SystemExit(f"no harness results in {folder}")
    path = files[-1]
    table = ratios(json.loads(path.read_text()))
    print(f"fdawatch against its peers ({path.name}); x = times faster than the peer")
    print("| peer, pass | wall x | CPU x | fdawatch RSS MB | peer RSS MB | found (ours vs peer) |")
    print("|---|---|---|---|---|---|")
    for key, row in table.items():
        print(
            f"| {key} | {row['wall_x']} | {row['cpu_x']} | {row['rss_fdawatch_mb']} "
            f"| {row['rss_peer_mb']} | {row['found']} |"
        )
    path.with_suffix(".ratios.json").write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
