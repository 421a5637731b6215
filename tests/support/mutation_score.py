"""`make mutate`'s verdict: the mutation score of the signal rules, against a stated target.

Reads every mutant's status from `mutmut results --all true`, keeps the mutants in the scope
(`SCOPE`: the functions that decide whether a compliance officer is told), and subtracts the ones
`docs/mutation-survivors.md` explains as equivalent (a line starting with "- `NAME`"). The score
is killed / (in scope − explained); a timeout counts as killed (the mutant hung the tests).
Prints one line per module and every survivor nobody explained, and exits 1 below the target:
`mutmut run` itself exits 0 whatever survives.

Usage: python -m tests.support.mutation_score [--min 90] [--results FILE] [--explained FILE]
       mutmut run $(python -m tests.support.mutation_score --scope)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPLAINED = ROOT / "docs" / "mutation-survivors.md"
TARGET = 90.0
#: Mutant name patterns: `module.x_function__mutmut_N`, methods as `module.xǁClassǁmethod__…`.
SCOPE = (
    "monitor.core.severity.*",
    "monitor.core.record_severity.*",
    "monitor.core.tiers.*",
    "monitor.core.terms.*",
    "monitor.core.diff.*",
    # normalize: the furniture and dates-only rules, not feed-item assembly or hashing (the
    # rendering itself is monitor/core/text_render.py, not mutated)
    "monitor.core.normalize.x_html_to_text__*",
    "monitor.core.normalize.x_looks_like_date_line__*",
    "monitor.core.normalize.x__strip_content_current__*",
    "monitor.core.normalize.x__is_date_only__*",
    "monitor.core.normalize.x__is_label_and_maybe_date__*",
    "monitor.core.normalize.x__date_in__*",
    "monitor.core.normalize.x__strip_furniture__*",
    "monitor.core.normalize.x__is_widget__*",
    "monitor.core.normalize.x__classes__*",
    "monitor.core.normalize.x__strip_metadata_list__*",
    "monitor.core.normalize.x__only_ancestor__*",
    "monitor.core.normalize.x__next_text__*",
    "monitor.core.normalize.x__is_text__*",
    "monitor.core.normalize.x__norm__*",
    "monitor.core.normalize.x__gone__*",
    "monitor.core.normalize.x__is_detached__*",
    "monitor.core.normalize.xǁ_Furnitureǁfind__*",
    # the outbox: claiming rows to send
    "monitor.delivery.outbox.x_claim_due__*",
    "monitor.delivery.outbox.x__due__*",
)
DETECTED = {"killed", "timeout"}
RESULT_LINE = re.compile(r"^\s*(\S+): (.+?)\s*$")
EXPLAINED_LINE = re.compile(r"^- `([^`]+)`")


def in_scope(name: str) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in SCOPE)


def statuses(results: str) -> dict[str, str]:
    """{mutant name: status} of the mutants in scope, from `mutmut results --all true`."""
    found = {}
    for line in results.splitlines():
        match = RESULT_LINE.match(line)
        if match and in_scope(match.group(1)):
            found[match.group(1)] = match.group(2)
    return found


def explained(text: str) -> set[str]:
    return {m.group(1) for line in text.splitlines() if (m := EXPLAINED_LINE.match(line))}


def module(name: str) -> str:
    return name.rsplit(".", 1)[0]


def report(found: dict[str, str], equivalent: set[str], target: float) -> tuple[float, list[str]]:
    """Print the per-module table; return the score and the unexplained survivors."""
    counted = {name: status for name, status in found.items() if name not in equivalent}
    killed = Counter(module(n) for n, s in counted.items() if s in DETECTED)
    total = Counter(module(n) for n in counted)
    listed = Counter(module(n) for n in found if n in equivalent)
    for name in sorted(total):
        share = 100 * killed[name] / total[name]
        print(f"{name:<28} {killed[name]:>4} of {total[name]:>4} killed ({share:5.1f} %), "
              f"{listed[name]} explained as equivalent")  # fmt: skip
    score = 100 * sum(killed.values()) / max(1, sum(total.values()))
    print(f"score: {sum(killed.values())} of {sum(total.values())} = {score:.1f} % "
          f"(target {target:.0f} %; {len(found)} mutants in scope)")  # fmt: skip
    raw = 100 * sum(killed.values()) / len(found)
    print(f"killed of all {len(found)} mutants, the equivalent ones counted as survivors: "
          f"{raw:.1f} %")  # fmt: skip
    unexplained = sorted(n for n, s in counted.items() if s not in DETECTED)
    return score, unexplained


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=TARGET, help="the target score, in %%")
    parser.add_argument("--results", type=Path, help="saved `mutmut results --all true` output")
    parser.add_argument("--explained", type=Path, default=EXPLAINED, help="the survivors list")
    parser.add_argument("--scope", action="store_true", help="print the scope for `mutmut run`")
    args = parser.parse_args(argv)
    if args.scope:
        print(" ".join(SCOPE))
        return 0
    if args.results:
        results = args.results.read_text(encoding="utf-8")
    else:
        command = [sys.executable, "-m", "mutmut", "results", "--all", "true"]
        results = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = statuses(results)
    if not found:
        print("no mutant in scope has a result: run `make mutate` (mutmut run) first")
        return 1
    equivalent = explained(args.explained.read_text(encoding="utf-8"))
    stale = equivalent - set(found)
    score, unexplained = report(found, equivalent, args.min)
    for name in unexplained:
        print(f"  survived, not explained: {name} ({found[name]}): `mutmut show {name}`")
    for name in sorted(stale):
        print(f"  listed in {args.explained.name} but no longer a mutant in scope: {name}")
    if score < args.min:
        print(
            f"mutation score {score:.1f} % is below the target {args.min:.0f} %: kill the "
            f"survivors with tests, or explain each equivalent one in {args.explained.name}"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
