"""Rendering a cleaned HTML tree as canonical lines: one line per block, one per table row.

Iterative (a stack of open elements), so a page nested thousands of elements deep renders like
any other instead of exhausting Python's recursion limit. `monitor.core.normalize` removes the
page furniture first and calls `render_lines`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator

from bs4 import CData, NavigableString, PageElement, Tag

INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
SPACES = re.compile(r"\s+")

BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "html",
        "li",
        "main",
        "ol",
        "p",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)


def render_lines(root: Tag) -> list[str]:
    """The canonical lines of `root`'s content."""
    builder = _LineBuilder()
    _render(root, builder)
    return builder.finish()


def clean_line(text: str) -> str:
    """Runs of whitespace (NBSP included: `\\s` is Unicode-aware) become one space; NFC; trimmed."""
    text = INVISIBLE.sub("", text)
    return unicodedata.normalize("NFC", SPACES.sub(" ", text)).strip()


def _is_text(element: object) -> bool:
    """Rendered text only: plain strings and CDATA, never comments or doctypes."""
    return type(element) in (NavigableString, CData)


class _LineBuilder:
    """Collects inline text into lines; block boundaries and `<br>` end a line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.current: list[str] = []

    def add_text(self, text: str) -> None:
        self.current.append(text)

    def add_line(self, line: str) -> None:
        self.newline()
        self.current.append(line)
        self.newline()

    def newline(self) -> None:
        line = clean_line("".join(self.current))
        if line:
            self.lines.append(line)
        self.current = []

    def finish(self) -> list[str]:
        self.newline()
        return self.lines


#: Node types whose text is rendered (not comments, doctypes or processing instructions).
_TEXT_TYPES = (NavigableString, CData)
#: One open element while rendering: its remaining children, where their text goes, and what to
#: do once they are all rendered (end a block's line, finish a table cell or row).
_Frame = tuple[Iterator[PageElement], _LineBuilder, Callable[[], None] | None]


def _render(root: Tag, out: _LineBuilder) -> None:
    """Render `root`'s children into `out`, in document order.

    A block element ends the line before and after it; a table row is one line of its
    non-empty cells joined by " | ", each cell rendered on its own; `<pre>` keeps its line
    breaks; `<br>` ends a line. Iterative (a stack of open elements), so a page nested thousands
    of elements deep renders like any other instead of exhausting Python's recursion limit.
    """
    stack: list[_Frame] = [(iter(root.contents), out, None)]
    while stack:
        children, builder, when_done = stack[-1]
        for child in children:  # resumes where this element's rendering left off
            if type(child) in _TEXT_TYPES:
                builder.add_text(str(child))
            elif isinstance(child, Tag) and _open(child, builder, stack):
                break  # the child's own children come first
        else:
            stack.pop()
            if when_done is not None:
                when_done()


def _open(tag: Tag, out: _LineBuilder, stack: list[_Frame]) -> bool:
    """Render `tag`, or push what renders its content (True: rendering goes on there)."""
    name = tag.name
    if name == "br":
        out.newline()
        return False
    if name == "pre":
        out.newline()
        for line in _texts(tag):
            out.add_line(line)
        return False
    if name == "tr":
        cells: list[str] = []
        stack.append((iter(()), out, lambda: out.add_line(" | ".join(cells))))
        for cell in reversed(tag.find_all(["td", "th"], recursive=False)):
            builder = _LineBuilder()
            stack.append((iter(cell.contents), builder, _cell_done(builder, cells)))
        return True
    if name in BLOCK_TAGS:
        out.newline()
        stack.append((iter(tag.contents), out, out.newline))
        return True
    stack.append((iter(tag.contents), out, None))
    return True


def _cell_done(cell: _LineBuilder, cells: list[str]) -> Callable[[], None]:
    """What ends a table cell: its lines joined into one, kept unless empty."""

    def done() -> None:
        text = " ".join(cell.finish())
        if text:
            cells.append(text)

    return done


def _texts(pre: Tag) -> list[str]:
    """Lines of a `<pre>` block: its own line breaks are kept."""
    raw = "".join(str(s) for s in pre.descendants if _is_text(s))
    return raw.splitlines()
