"""The challenge-page check finds exactly what the full pattern finds, only faster.

`challenge_match` skips `CHALLENGE_BODY` when none of its literals is in the body; a body that
the pattern matches must never be skipped, whatever its case or its look-alike letters.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spiders.blocks import CHALLENGE_BODY, CHALLENGE_SCAN_BYTES, challenge_match

PAGES = Path(__file__).parents[1] / "fixtures" / "pages"

CHALLENGES = [
    "<p>You don't have permission to access /drugs on this server.</p>",
    "Reference&#32;&#35;18&#46;6f2c1402",
    "Reference #18.6f2c1402.1700000000.1a2b3c",
    '<a href="https://errors.edgesuite.net/18.6f2c1402">',
    "<title>Just a moment...</title>",
    '<div id="cf-browser-verification">',
    '<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/v1"></script>',
    "<title>Attention Required! | Cloudflare</title>",
    "Incapsula incident ID: 123",
    '<script src="/_Incapsula_Resource?SWJIYLWA=1"></script>',
    "<title>Pardon Our Interruption</title>",
    "<h1>Access Denied - Sucuri Website Firewall</h1>",
    "<TITLE>JUST A MOMENT...</TITLE>",
    # Letters that IGNORECASE matches to ASCII ones but `str.lower` does not fold onto them:
    "<title>Pardon Our Interruptıon</title>",  # dotless i
    "<h1>Access Denied - ſucuri Website Firewall</h1>",  # long s
    "Reference #18.6F2C1402.1700000000.1A2B3C",
]
ORDINARY = [
    "<p>FDA warns about compounded ketamine.</p>",
    "<p>See the reference list below.</p>",  # a literal without the rest of its pattern
    "<p>You don't have permission to access the portal; call us.</p>",
    "",
]


@pytest.mark.parametrize("text", CHALLENGES + ORDINARY)
def test_challenge_match_finds_what_the_pattern_finds(text: str) -> None:
    expected = CHALLENGE_BODY.search(text)
    found = challenge_match(text)
    assert (found and found.group(0)) == (expected and expected.group(0))


@pytest.mark.parametrize("text", CHALLENGES)
def test_every_challenge_shape_is_found(text: str) -> None:
    assert challenge_match(text) is not None


@pytest.mark.parametrize("page", sorted(PAGES.glob("*.html")), ids=lambda p: p.name)
def test_real_pages_are_not_challenges(page: Path) -> None:
    text = page.read_bytes()[:CHALLENGE_SCAN_BYTES].decode("utf-8", "replace")
    assert challenge_match(text) is None
    assert CHALLENGE_BODY.search(text) is None
