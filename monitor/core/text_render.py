"""Rendering a cleaned HTML tree as canonical lines: one line per block, one per table row.

Iterative (a stack of open elements), so a page nested thousands of elements deep renders like
any other instead of exhausting Python's recursion limit. `monitor.core.normalize` removes the
page furniture first and calls `render_lines` on the `HtmlTree` it cleaned.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator

from lxml import etree

from monitor.core.html_tree import HtmlTree, Node, Text

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


def render_lines(tree: HtmlTree) -> list[str]:
    """The canonical lines of the document's content."""
    builder = _LineBuilder()
    _render(tree, builder)
    return builder.finish()


def clean_line(text: str) -> str:
    """Runs of whitespace (NBSP included: `\\s` is Unicode-aware) become one space; NFC; trimmed."""
    text = INVISIBLE.sub("", text)
    return unicodedata.normalize("NFC", SPACES.sub(" ", text)).strip()


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


#: One open element while rendering: its remaining children, where their text goes, and what to
#: do once they are all rendered (end a block's line, finish a table cell or row).
_Frame = tuple[Iterator[Node], _LineBuilder, Callable[[], None] | None]


def _render(tree: HtmlTree, out: _LineBuilder) -> None:
    """Render the document into `out`, in document order.

    A block element ends the line before and after it; a table row is one line of its
    non-empty cells joined by " | ", each cell rendered on its own; `<pre>` keeps its line
    breaks; `<br>` ends a line. Iterative (a stack of open elements), so a page nested thousands
    of elements deep renders like any other instead of exhausting Python's recursion limit.
    """
    stack: list[_Frame] = [(iter(tree.top()), out, None)]
    while stack:
        children, builder, when_done = stack[-1]
        for child in children:  # resumes where this element's rendering left off
            if isinstance(child, Text):
                if tree.kind(child) == "":
                    builder.add_text(tree.value(child))
            elif isinstance(child.tag, str) and _open(tree, child, builder, stack):
                break  # the child's own children come first
        else:
            stack.pop()
            if when_done is not None:
                when_done()


def _open(tree: HtmlTree, tag: etree._Element, out: _LineBuilder, stack: list[_Frame]) -> bool:
    """Render `tag`, or push what renders its content (True: rendering goes on there)."""
    name = tag.tag
    if name == "br":
        out.newline()
        return False
    if name == "pre":
        out.newline()
        for line in _texts(tree, tag):
            out.add_line(line)
        return False
    if name == "tr":
        cells: list[str] = []
        stack.append((iter(()), out, lambda: out.add_line(" | ".join(cells))))
        row = [node for node in tree.contents(tag) if _is_cell(node)]
        for cell in reversed(row):
            builder = _LineBuilder()
            stack.append((iter(tree.contents(cell)), builder, _cell_done(builder, cells)))  # type: ignore[arg-type]
        return True
    if name in BLOCK_TAGS:
        out.newline()
        stack.append((iter(tree.contents(tag)), out, out.newline))
        return True
    stack.append((iter(tree.contents(tag)), out, None))
    return True


def _is_cell(node: Node) -> bool:
    return not isinstance(node, Text) and node.tag in ("td", "th")


def _cell_done(cell: _LineBuilder, cells: list[str]) -> Callable[[], None]:
    """What ends a table cell: its lines joined into one, kept unless empty."""

    def done() -> None:
        text = " ".join(cell.finish())
        if text:
            cells.append(text)

    return done


def _texts(tree: HtmlTree, pre: etree._Element) -> list[str]:
    """Lines of a `<pre>` block: its own line breaks are kept."""
    raw = "".join(tree.value(s) for s in tree.descendants(pre) if tree.is_text(s))
    return raw.splitlines()
