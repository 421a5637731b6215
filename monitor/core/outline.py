"""Where a change sits in its document: heading paths, context lines, the section it touched most.

Pure functions over the normalized texts (one block a line) and, for HTML pages, the heading
levels read from the stored raw page (`heading_levels`). A compliance reader sees each changed
line under "REMS Requirements › Healthcare Settings" with a line of context either side, instead
of lines from three sections run together. Nothing here invents wording: summaries quote the text.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from monitor.core.diff import ELLIPSIS, LineChange, Segment, pair_lines
from monitor.core.html_tree import HtmlTree
from monitor.core.text_render import clean_line

RowKind = Literal["context", "gap", "added", "removed", "edited"]
#: Unchanged lines shown before and after each changed run.
CONTEXT_LINES = 1
SUMMARY_MAX = 160
PATH_SEPARATOR = " › "
_HEADING_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Row:
    """One line as a reader sees it: unchanged context, a gap marker, or a change."""

    kind: RowKind
    old: str = ""
    new: str = ""
    words: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.new or self.old


@dataclass(frozen=True)
class Hunk:
    """The changed lines (with context) under one heading path."""

    path: tuple[str, ...]
    rows: list[Row]
    label: str = ""  # the path without the headings every hunk shares ("" at the top)

    @property
    def changes(self) -> list[Row]:
        return [row for row in self.rows if row.kind not in ("context", "gap")]


def heading_levels(html: str) -> dict[str, int]:
    """{heading text: level} of an HTML page's h1-h6, texts cleaned as the normalizer cleans.

    Read on lxml's own tree (`HtmlTree`), as BeautifulSoup's `get_text(" ")` saw each heading:
    a whole bench page parsed into BeautifulSoup objects cost ~22 ms, on lxml ~1.6 ms.
    """
    tree = HtmlTree(html)
    levels: dict[str, int] = {}
    try:
        if tree.root is None:
            return levels
        for tag in tree.root.iter(*_HEADING_TAGS):
            text = clean_line(tree.get_text(tag, " "))
            if text and text not in levels:
                levels[text] = int(str(tag.tag)[1])
    finally:
        tree.close()
    return levels


def hunks(
    old: str, new: str, levels: Mapping[str, int] | None = None, context: int = CONTEXT_LINES
) -> list[Hunk]:
    """The changes of old → new grouped under their heading paths, with context lines."""
    levels = levels or {}
    old_lines, new_lines = old.splitlines(), new.splitlines()
    old_paths, new_paths = _paths(old_lines, levels), _paths(new_lines, levels)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    entries: list[tuple[tuple[str, ...], Row]] = []
    opcodes = matcher.get_opcodes()
    for number, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            lead = number > 0
            tail = number < len(opcodes) - 1
            entries.extend(_context(new_lines, new_paths, j1, j2, levels, context, lead, tail))
            continue
        path = new_paths[j1] if j1 < j2 else old_paths[i1] if i1 < len(old_paths) else ()
        for change in pair_lines(old_lines[i1:i2], new_lines[j1:j2]):
            entries.append((path, _row(change)))
    return _group(entries)


def lead_hunk(found: Sequence[Hunk], weigh: Callable[[str], int] | None = None) -> Hunk | None:
    """The hunk a reader should see first: it names watched terms, then changes the most words."""

    def score(numbered: tuple[int, Hunk]) -> tuple[bool, int, int]:
        index, hunk = numbered
        text = "\n".join(f"{row.old}\n{row.new}" for row in hunk.changes)
        return (bool(weigh and weigh(text) > 0), sum(map(_changed_words, hunk.changes)), -index)

    return max(enumerate(found), key=score)[1] if found else None


def section_summary(
    found: Sequence[Hunk], weigh: Callable[[str], int] | None = None, limit: int = SUMMARY_MAX
) -> str:
    """`Healthcare Settings: added “…” (+10 more)`: quoted from the most significant section."""
    lead = lead_hunk(found, weigh)
    if lead is None:
        return "No text change"
    row = next((r for r in lead.changes if r.kind == "added"), None)
    row = row or next((r for r in lead.changes if r.kind == "edited"), lead.changes[0])
    more = sum(len(h.changes) for h in found) - 1
    suffix = f" (+{more} more)" if more else ""
    where = f"{lead.path[-1]}: " if lead.path else ""
    verb, quote = _what(row)
    verb = verb if where else verb.capitalize()
    room = limit - len(where) - len(verb) - len(" “”") - len(suffix)
    return f"{where}{verb} “{shorten(quote, room)}”{suffix}"


def lead_section(found: Sequence[Hunk], weigh: Callable[[str], int] | None = None) -> str:
    """The top heading of the most significant hunk below the shared ones (`REMS Requirements`)."""
    lead = lead_hunk(found, weigh)
    if lead is None or not lead.path:
        return ""
    shared = len(_common_prefix([h.path for h in found]))
    return lead.path[shared] if shared < len(lead.path) else lead.path[-1]


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters on a word boundary, ending with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: max(1, limit - len(ELLIPSIS))]
    space = cut.rfind(" ")
    cut = cut[:space] if space > 0 else cut
    return cut.rstrip(" ,;:.…") + ELLIPSIS


# --- helpers -----------------------------------------------------------------------------------


def _paths(lines: Sequence[str], levels: Mapping[str, int]) -> list[tuple[str, ...]]:
    """The heading path above each line (a heading's own path is its parents plus itself)."""
    stack: list[tuple[int, str]] = []
    paths: list[tuple[str, ...]] = []
    for line in lines:
        level = levels.get(line)
        if level is not None:
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, line))
        paths.append(tuple(text for _, text in stack))
    return paths


def _context(
    lines: Sequence[str],
    paths: Sequence[tuple[str, ...]],
    start: int,
    end: int,
    levels: Mapping[str, int],
    context: int,
    lead: bool,
    tail: bool,
) -> list[tuple[tuple[str, ...], Row]]:
    """Context lines from an unchanged run: after the change before it, before the next one."""
    wanted: list[int] = []
    if lead:
        wanted.extend(range(start, min(end, start + context)))
    if tail:
        wanted.extend(i for i in range(max(start, end - context), end) if i not in wanted)
    rows: list[tuple[tuple[str, ...], Row]] = []
    previous = None
    for index in wanted:
        if previous is not None and index > previous + 1:
            rows.append((paths[index], Row("gap")))
        previous = index
        if lines[index] in levels:
            continue  # the heading itself is the path above the rows
        rows.append((paths[index], Row("context", lines[index], lines[index])))
    return rows


def _row(change: LineChange) -> Row:
    return Row(change.kind, change.old, change.new, list(change.words))


def _group(entries: Sequence[tuple[tuple[str, ...], Row]]) -> list[Hunk]:
    """Consecutive rows under one path form a hunk; hunks of context only are dropped."""
    groups: list[tuple[tuple[str, ...], list[Row]]] = []
    for path, row in entries:
        if groups and groups[-1][0] == path:
            groups[-1][1].append(row)
        else:
            groups.append((path, [row]))
    kept = [(path, _trim(rows)) for path, rows in groups]
    kept = [(path, rows) for path, rows in kept if any(_changed(r) for r in rows)]
    paths = [path for path, _ in kept]
    if len(paths) == 1:
        return [Hunk(paths[0], kept[0][1], paths[0][-1] if paths[0] else "")]
    shared = len(_common_prefix(paths))
    return [Hunk(path, rows, _label(path, shared)) for path, rows in kept]


def _label(path: tuple[str, ...], shared: int) -> str:
    """The path below the shared headings; the nearest heading when nothing is left of it."""
    return PATH_SEPARATOR.join(path[shared:]) or (path[-1] if path else "")


def _changed(row: Row) -> bool:
    return row.kind not in ("context", "gap")


def _trim(rows: list[Row]) -> list[Row]:
    """No gap marker at either end of a hunk."""
    while rows and rows[0].kind == "gap":
        rows = rows[1:]
    while rows and rows[-1].kind == "gap":
        rows = rows[:-1]
    return rows


def _common_prefix(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    if not paths:
        return ()
    prefix = paths[0]
    for path in paths[1:]:
        size = 0
        while size < min(len(prefix), len(path)) and prefix[size] == path[size]:
            size += 1
        prefix = prefix[:size]
    return prefix


def _what(row: Row) -> tuple[str, str]:
    """("added", the added text) for a row; an edit quotes its inserted (else deleted) words."""
    if row.kind in ("added", "removed"):
        return row.kind, row.text
    inserted = [t.strip(" ,;:") for kind, t in row.words if kind == "insert" and t.strip(" ,;:")]
    if inserted:
        return "added", f" {ELLIPSIS} ".join(inserted)
    deleted = [t.strip(" ,;:") for kind, t in row.words if kind == "delete" and t.strip(" ,;:")]
    return "removed", f" {ELLIPSIS} ".join(deleted) or row.new


def _changed_words(row: Row) -> int:
    if row.kind == "edited":
        return sum(len(_WORD.findall(text)) for kind, text in row.words if kind != "equal")
    return len(_WORD.findall(row.text))
