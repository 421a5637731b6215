"""The tier scale T1 (critical) … T5 (noise), a verdict with its reasons, and the shared moves.

Every severity rule (`monitor.core.severity` for pages, feeds, labels and letters,
`monitor.core.record_severity` for API records) speaks in these terms. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.core.normalize import looks_like_date_line
from monitor.core.terms import match_context, match_terms

TIERS = ("T1", "T2", "T3", "T4", "T5")


@dataclass(frozen=True)
class Verdict:
    tier: str
    reasons: tuple[str, ...]


def raise_tier(tier: str, steps: int = 1) -> str:
    """One tier more severe (T3 → T2); T1 stays T1."""
    return TIERS[max(0, TIERS.index(tier) - steps)]


def lower_tier(tier: str, floor: str = "T4") -> str:
    """One tier less severe (T2 → T3), never below `floor` (a real edit is not noise)."""
    return min(TIERS[min(len(TIERS) - 1, TIERS.index(tier) + 1)], floor)


def only_dates_changed(added: Sequence[str], removed: Sequence[str]) -> bool:
    lines = [*added, *removed]
    return bool(lines) and all(looks_like_date_line(line) for line in lines)


def escalate(
    tier: str, reasons: list[str], text: str, extra_context: Sequence[str] = ()
) -> Verdict:
    """Catalog 6.1: ketamine named with compounding, telehealth, home use or 503A/B: one up."""
    terms = match_terms(text)
    context = [*match_context(text), *extra_context]
    if terms and context and tier not in ("T1", "T5"):
        tier = raise_tier(tier)
        reasons.append(f"raised one tier: names {', '.join(terms)} with {', '.join(context)}")
    return Verdict(tier, tuple(reasons))
