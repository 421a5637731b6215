"""The term patterns as built, not as cached: each spelling a watched term must (not) match.

`match_terms` compiles one pattern per term once per process (`terms._matchers` is an LRU
cache), so a test run that matched any text earlier uses patterns built before the test began:
a broken pattern builder would go unseen by every later test, and by mutation testing, whose
workers inherit the cache. These rows build the patterns afresh (`_matchers.__wrapped__`).
"""

from __future__ import annotations

import re

import pytest

from monitor.core import terms
from monitor.core.terms import CONTEXT_TERMS, KETAMINE_TERMS


def fresh_match(text: str, watched: tuple[str, ...] = KETAMINE_TERMS) -> list[str]:
    patterns = terms._matchers.__wrapped__(terms.expand_terms(watched))
    return sorted({term for term, pattern in patterns if pattern.search(text)})


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Compounded KETAMINE troches", ["ketamine"]),
        ("compounded ketamines", ["ketamine"]),
        ("esketamines", ["esketamine"]),
        ("ketamine-induced cystitis", ["ketamine"]),
        ("Ketamine  Hydrochloride\ninjection", ["ketamine", "ketamine hydrochloride"]),
        ("S\u2010ketamine, S\u2011ketamine, S\u2012ketamine, S\u2013ketamine",
         ["ketamine", "s-ketamine"]),
        ("(S)-ketamine", ["(s)-ketamine", "ketamine"]),
        ("(±)-ketamine", ["(±)-ketamine", "ketamine"]),
        ("(+/-)-ketamine and (+-)-ketamine", ["(±)-ketamine", "ketamine"]),
        ("NDA 211243", ["211243", "NDA 211243"]),
        ("NDA #211243", ["211243", "NDA 211243"]),
        ("NDA211243", ["NDA 211243"]),
        ("nda   016812", ["016812", "NDA 016812"]),
        ("NDC 50458-028-02", ["50458-028"]),
        ("50458\u2013028", ["50458-028"]),
        ("unii o18yuo0i83", ["O18YUO0I83"]),
        ("bketamine", []),
        ("ketaminex", []),
        ("ketamine2", []),
        ("ketamine_protocol.pdf", ["ketamine"]),  # "_" is neither a letter nor a digit
        ("NDA 2112430", []),
        ("ketorolac", []),
    ],
)  # fmt: skip
def test_each_ketamine_spelling_matches_its_canonical_terms(text: str, found: list[str]) -> None:
    assert fresh_match(text) == found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("compounders and a compounder", ["compounder"]),
        ("two outsourcing  facilities", ["outsourcing facility"]),
        ("sold direct to consumer", ["direct-to-consumer"]),
        ("direct\u2011to\u2011consumer", ["direct-to-consumer"]),
        ("at-home use", ["at-home", "home use"]),
        ("503a and 503B", ["503A", "503B"]),
        ("telehealthy", []),
        ("compoundings", []),  # only "compounder" has a plural form
        ("5503B", []),
    ],
)
def test_each_context_spelling_matches_its_canonical_word(text: str, found: list[str]) -> None:
    assert fresh_match(text, CONTEXT_TERMS) == found


def test_a_user_term_is_matched_whole_and_case_blind() -> None:
    assert fresh_match("Compounded Remdesivir", ("remdesivir",)) == ["remdesivir"]
    assert fresh_match("remdesivirs", ("remdesivir",)) == []  # plurals: the ketamine set only
    assert fresh_match("semaglutide+ketamine", ("semaglutide",)) == ["semaglutide"]


@pytest.mark.parametrize(
    ("term", "regex"),
    [
        ("ketamine", r"(?<![^\W_])(?:ketamine)s?(?![^\W_])"),
        ("ketamine hcl", r"(?<![^\W_])(?:ketamine\s+hcl)(?![^\W_])"),
        ("NDA 211243", r"(?<![^\W_])(?:nda[\s#]*211243)(?![^\W_])"),
        ("compounder", r"(?<![^\W_])(?:compounder|compounders)(?![^\W_])"),
        ("(±)-ketamine",
         r"(?<![^\W_])(?:\((?:±|\+/-|\+-)\)" "[-\u2010\u2011\u2012\u2013]" r"ketamine)s?"
         r"(?![^\W_])"),
    ],
)  # fmt: skip
def test_the_pattern_of_a_term_is_whole_word_and_spacing_tolerant(term: str, regex: str) -> None:
    assert terms._term_regex(term) == regex
    re.compile(regex)
