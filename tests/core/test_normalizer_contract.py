"""The normalizer's version contract: the same input gives the same text and date, to the byte.

Each snapshot stores `input_sha256`, the hash of what the normalizer read and of
`NORMALIZER_VERSION`; an input seen before is not normalized again. So any change in what
`html_to_text` or `feed_item_text` returns for an input needs a new `NORMALIZER_VERSION`.
`fixtures/normalizer_v1_digests.json` holds the digests that version 1 gave when it ran on
BeautifulSoup (main at b4efbd9); the normalizer on lxml's own tree must give the same ones for
every HTML fixture (whole, and cut to `main`, `article` and `body` as a page selector would) and
for every item of every RSS capture that existed then; fixtures added later are not covered.

To compute the digests with another checkout (only when NORMALIZER_VERSION changes):
    PYTHONPATH=<checkout> <checkout>/.venv/bin/python tests/core/test_normalizer_contract.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import feedparser
from parsel import Selector

from monitor.core.canonical import NORMALIZER_VERSION
from monitor.core.normalize import feed_item_text, html_to_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DIGESTS = FIXTURES / "normalizer_v1_digests.json"
CUTS = ("main", "article", "body")


def inputs() -> dict[str, tuple[str, str]]:
    """Every input the contract covers: name → (kind, input), kind "html" or a feed item."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(FIXTURES.rglob("*.html")):
        name = path.relative_to(FIXTURES).as_posix()
        html = path.read_text("utf-8")
        found[name] = ("html", html)
        for cut in CUTS:
            region = "\n".join(Selector(text=html, type="html").css(cut).getall())
            if region:
                found[f"{name}::{cut}"] = ("html", region)
    for path in sorted(FIXTURES.rglob("*.xml")):
        name = path.relative_to(FIXTURES).as_posix()
        for number, entry in enumerate(feedparser.parse(path.read_bytes()).entries):
            item = json.dumps([entry.get("title", ""), entry.get("description", "")])
            found[f"{name}#{number}"] = ("item", item)
    return found


def digest(kind: str, value: str) -> str:
    if kind == "item":
        title, description = json.loads(value)
        output = feed_item_text(title, description)
    else:
        page = html_to_text(value)
        output = f"{page.text}\0{page.content_date}"
    return hashlib.sha256(output.encode("utf-8", "surrogatepass")).hexdigest()


def digests(names: set[str] | None = None) -> dict[str, str]:
    found = inputs()
    wanted = found.keys() if names is None else names
    return {name: digest(*found[name]) for name in wanted if name in found}


def test_normalizer_output_is_what_version_1_gave_for_every_fixture() -> None:
    expected = json.loads(DIGESTS.read_text("utf-8"))
    assert expected["normalizer_version"] == NORMALIZER_VERSION
    assert len(expected["digests"]) == 1355
    got = digests(set(expected["digests"]))
    assert sorted(set(expected["digests"]) - set(got)) == [], "pinned fixtures must stay"
    differing = sorted(name for name, value in got.items() if expected["digests"][name] != value)
    assert differing == []


if __name__ == "__main__":
    json.dump(
        {
            "about": "sha256 of html_to_text(input) as text + NUL + content date, or of "
            "feed_item_text(title, description), per fixture input; see "
            "tests/core/test_normalizer_contract.py",
            "normalizer_version": NORMALIZER_VERSION,
            "digests": digests(),
        },
        sys.stdout,
        indent=1,
        sort_keys=True,
    )
    sys.stdout.write("\n")
