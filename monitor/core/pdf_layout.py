"""A PDF's lines (text with their place on the page) → paragraphs a reader would see. Pure.

PDF text comes out line by line, with the page's furniture in it: running headers and footers,
page numbers, the line numbers of draft guidances, hyphens where a word broke at a line end. A
re-issued document laid out again (another page size, font or printer) must read the same, so:

* a line in the top or bottom 8 % of its page whose *key* (lower case, digits masked as `#`, a
  lone roman numeral as `#`) recurs on at least half the pages is furniture and dropped: it takes
  "Page 3 of 9", "- 3 -", "Reference ID: 4690158" and "Contains Nonbinding Recommendations" off
  every page, but never a number that appears once (a guidance number on page 1 stays);
* when most lines start with a number rising by one, those are line numbers and are dropped;
* lines join into paragraphs (one line each): a new one starts at a bullet or list marker, after a
  gap taller than usual, or after a short line that ends a sentence; across a page or column turn
  only when a sentence ended and the next line starts one;
* a hyphen at a line end (PDFium marks it U+FFFE) is dropped when the joined word occurs elsewhere
  in the document, else kept ("co-dispensing").

Paragraph boundaries still depend on the layout, so a document's identity is its *word stream*
(`words_key`): all words in order, hyphens inside words ignored. Same words, same document.
"""

from __future__ import annotations

import itertools
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The part of a page, at its top and at its bottom, where running headers and footers live …
FURNITURE_ZONE = 0.08
#: … and how far from the edge a line known as a running header or footer is still taken off.
FURNITURE_REACH = 0.12
#: Line numbers: at least this share of the lines starts with a number …
LINE_NUMBERED_SHARE = 0.4
#: … and at least this share of those numbers is the previous one plus one.
LINE_NUMBERS_RISING = 0.8
#: A gap above a line this many times the page's usual line pitch starts a paragraph.
PARAGRAPH_GAP = 1.6
#: A line ending a sentence this much short of its column's right edge ends a paragraph.
SHORT_LINE = 0.2
#: PDFium's mark of a hyphen at a line end (`get_text_range`), and its other spelling.
LINE_END_HYPHENS = "\ufffe\x02"
HYPHEN_MARK = "\ufffe"

_DIGITS = re.compile(r"\d+")
_DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_ROMAN = re.compile(r"^[ivxlcdm]+$")
_SPACES = re.compile(r"\s+")
_LEADING_NUMBER = re.compile(r"^\s*(\d{1,5})(?:\s+|$)")
_MARKED_NUMBER = re.compile(r"\ufffe(\d{1,5})\s+")
_BULLET = re.compile(
    r"^(?:[•●▪■◦‣○□➢►\-–—*]\s|\(?\d{1,3}[.)]\s|\(?[a-z][.)]\s|\(?[A-Z][.)]\s|[IVX]{1,5}\.\s)"
)
_SENTENCE_END = re.compile(r"[.:;?!][\"'”’)\]]*$")
_SENTENCE_START = re.compile(r"^[\"'“‘(\[]*[A-Z0-9•]")
_WORD_HYPHEN = re.compile(r"(?<=\w)[-\u00ad\u2010\u2011\ufffe\x02](?=\w)")
_WORD_CHARS = re.compile(r"\w+")
_PRIVATE_USE = re.compile(r"[\ue000-\uf8ff]")
#: Dot leaders of a table of contents and rules drawn with characters: their length is layout.
_LEADER = re.compile(r"\s*(?:\.\s?){3,}\s*|\s*…\s*")
_RULE = re.compile(r"[-_=]{4,}|[—–]{3,}")
#: A table-of-contents entry's page number (after its leader): it moves when pages do.
_TOC_PAGE = re.compile(r"… \d{1,4}\b")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Line:
    """One line of text as PDFium laid it out; distances in points from the page's top-left.

    `first_bottom` / `last_bottom` are the bottoms of its first and last character: PDFium joins
    two physical lines at a line-end hyphen, so one "line" can span two baselines.
    """

    text: str
    left: float
    right: float
    top: float
    first_bottom: float
    last_bottom: float


@dataclass(frozen=True)
class PageLines:
    width: float
    height: float
    lines: tuple[Line, ...]


def paragraphs(pages: Sequence[PageLines]) -> list[str]:
    """The document's paragraphs, furniture and line numbers removed, one string each."""
    pages = drop_furniture(pages)
    pages = drop_line_numbers(pages)
    joined = join_paragraphs(pages)
    known = set(_WORD_CHARS.findall(" ".join(joined).replace(HYPHEN_MARK, " ").lower()))
    cleaned = (clean(resolve_hyphens(paragraph, known)) for paragraph in joined)
    return [paragraph for paragraph in cleaned if paragraph]


def words_key(text: str) -> str:
    """The word stream that identifies a document's version: layout and hyphens ignored.

    The page numbers of a table of contents are left out too: they move when pages do.
    """
    return _TOC_PAGE.sub("…", _WORD_HYPHEN.sub("", " ".join(text.split())))


# --- running headers, footers, page numbers -----------------------------------------------------


def furniture_key(text: str) -> str:
    """What a running header or footer has in common from page to page."""
    key = _SPACES.sub(" ", _DASHES.sub("-", unicodedata.normalize("NFKC", text))).strip().lower()
    if _ROMAN.match(key):
        return "#"
    return _DIGITS.sub("#", key)


def in_zone(line: Line, page: PageLines, share: float = FURNITURE_ZONE) -> bool:
    zone = page.height * share
    return line.top < zone or line.last_bottom > page.height - zone


def drop_furniture(pages: Sequence[PageLines]) -> list[PageLines]:
    """Pages without the lines in the header/footer zone whose key recurs on half the pages."""
    if len(pages) < 2:
        return list(pages)
    seen: Counter[str] = Counter()
    for page in pages:
        seen.update({furniture_key(line.text) for line in page.lines if in_zone(line, page)})
    needed = max(2, (len(pages) + 1) // 2)
    running = {key for key, count in seen.items() if count >= needed and key}
    return [
        PageLines(
            page.width,
            page.height,
            tuple(
                line
                for line in page.lines
                if not (
                    in_zone(line, page, FURNITURE_REACH) and furniture_key(line.text) in running
                )
            ),
        )
        for page in pages
    ]


# --- line numbers -------------------------------------------------------------------------------


def drop_line_numbers(pages: Sequence[PageLines]) -> list[PageLines]:
    """Pages without the margin line numbers of a line-numbered draft (none if it has none)."""
    lines = [line for page in pages for line in page.lines if line.text.strip()]
    numbers = [int(m.group(1)) for line in lines if (m := _LEADING_NUMBER.match(line.text))]
    if not lines or len(numbers) < LINE_NUMBERED_SHARE * len(lines) or len(numbers) < 10:
        return list(pages)
    rising = sum(1 for before, after in itertools.pairwise(numbers) if after == before + 1)
    if rising < LINE_NUMBERS_RISING * (len(numbers) - 1):
        return list(pages)
    stripper = _NumberStripper()
    return [
        PageLines(page.width, page.height, tuple(stripper.strip(line) for line in page.lines))
        for page in pages
    ]


class _NumberStripper:
    """Takes a line number off a line when it continues the count (a footnote's "6" does not)."""

    def __init__(self) -> None:
        self.last = 0

    def continues(self, number: int) -> bool:
        return self.last < number <= self.last + 50

    def strip(self, line: Line) -> Line:
        text = line.text
        match = _LEADING_NUMBER.match(text)
        if match and self.continues(int(match.group(1))):
            self.last = int(match.group(1))
            text = text[match.end() :]
        marked = _MARKED_NUMBER.search(text)
        if marked and self.continues(int(marked.group(1))):
            self.last = int(marked.group(1))
            text = text[: marked.start()] + HYPHEN_MARK + text[marked.end() :]
        return Line(text, line.left, line.right, line.top, line.first_bottom, line.last_bottom)


# --- paragraphs ---------------------------------------------------------------------------------


def join_paragraphs(pages: Sequence[PageLines]) -> list[str]:
    """Lines joined into paragraphs across pages (raw text: hyphen marks still in)."""
    found: list[list[str]] = []
    previous: Line | None = None
    for page in pages:
        lines = [line for line in page.lines if line.text.strip()]
        pitch = usual_pitch(lines)
        for index, line in enumerate(lines):
            text = line.text.strip()
            if previous is None or starts_paragraph(
                previous, line, page, lines, pitch, turned=index == 0
            ):
                found.append([text])
            else:
                found[-1].append(text)
            previous = line
    return [join_lines(parts) for parts in found]


def usual_pitch(lines: Sequence[Line]) -> float:
    """The page's median distance from one line's bottom to the next one's (0: unknown)."""
    steps = [
        after.first_bottom - before.last_bottom
        for before, after in itertools.pairwise(lines)
        if after.first_bottom > before.last_bottom
    ]
    return statistics.median(steps) if steps else 0.0


def starts_paragraph(
    previous: Line,
    line: Line,
    page: PageLines,
    lines: Sequence[Line],
    pitch: float,
    *,
    turned: bool,
) -> bool:
    """Whether `line` begins a new paragraph after `previous` (see the module docstring)."""
    text, before = line.text.strip(), previous.text.strip()
    if _BULLET.match(text):
        return True
    step = line.first_bottom - previous.last_bottom
    if turned or step <= 0:  # a new page, or back up to the next column
        return bool(_SENTENCE_END.search(before) and _SENTENCE_START.match(text))
    if pitch and step > PARAGRAPH_GAP * pitch:
        return True
    if _SENTENCE_END.search(before):
        left, right = column(previous, lines)
        return previous.right < right - SHORT_LINE * (right - left)
    return False


def column(line: Line, lines: Sequence[Line]) -> tuple[float, float]:
    """(left, right) edge of the column a line sits in: the lines that overlap it sideways."""
    beside = [other for other in lines if other.left < line.right and other.right > line.left]
    return min(o.left for o in beside), max(o.right for o in beside)


def join_lines(parts: Iterable[str]) -> str:
    """One paragraph: a word broken by a hyphen at a line end is marked and joined."""
    text = ""
    for part in parts:
        if text.endswith("-") and len(text) > 1 and text[-2].isalpha() and part[:1].islower():
            text = text[:-1] + HYPHEN_MARK + part
        elif text.endswith(HYPHEN_MARK) or not text:
            text += part
        else:
            text += " " + part
    return text


def resolve_hyphens(paragraph: str, known: set[str]) -> str:
    """Each marked line-end hyphen: dropped when the joined word occurs elsewhere, else kept."""
    if HYPHEN_MARK not in paragraph and "\x02" not in paragraph:
        return paragraph
    paragraph = paragraph.replace("\x02", HYPHEN_MARK)

    def decide(match: re.Match[str]) -> str:
        head, tail = match.group(1), match.group(2)
        return head + tail if (head + tail).lower() in known else f"{head}-{tail}"

    return re.sub(r"(\w*)\ufffe\s*(\w*)", decide, paragraph)


def clean(text: str) -> str:
    """NFKC (ligatures), symbol-font bullets as •, no control characters, spaces collapsed.

    Dot leaders become one "…" and character-drawn rules one "—": their length is layout.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _PRIVATE_USE.sub("•", _CONTROL.sub(" ", text))
    text = _RULE.sub("—", _LEADER.sub(" … ", text.replace(HYPHEN_MARK, "-")))
    return _SPACES.sub(" ", text).strip()
