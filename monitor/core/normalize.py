"""Turn fetched HTML and feed items into the canonical text, key and hash the history compares.

Pure functions: no I/O, no environment, no clock. The canonical text is one line per block of
the page, so a re-flow of the HTML gives the same text and an edited sentence changes one line.
Page furniture that changes without the content changing (menus, the "Content current as of"
date, share widgets) is removed here, so it never shows up as a change.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from monitor.core.html_tree import HtmlTree, Node
from monitor.core.text_render import SPACES, clean_line, render_lines

#: Elements that never carry the watched content.
DROP_TAGS = (
    "head",
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "form",
    "button",
    "iframe",
    "svg",
)
DROP_TAG_NAMES = frozenset(DROP_TAGS)
#: Elements that start a new line of text.
SHARE_CLASSES = frozenset({"social-share", "share-links"})
#: Class names that mean "hide when printing": the element is normal screen content, keep it.
PRINT_HIDING_CLASS = re.compile(
    r"^(?:no-?print|hidden-print|d-print-none|print-(?:hidden|hide|none))$"
)
CURRENT_AS_OF = re.compile(r"content\s+current\s+as\s+of\s*:?", re.IGNORECASE)
METADATA_LABEL = re.compile(r"^\s*(?:regulated\s+products?\s*\(s\)|topics?\s*\(s\))\s*:?\s*$", re.I)
#: In-page jump links ("Back to Top", "Skip to main content"): furniture, not content.
JUMP_LINK = re.compile(
    r"^\s*(?:back\s+to\s+top|skip\s+to\s+(?:the\s+)?(?:main\s+)?(?:content|navigation))\s*$",
    re.IGNORECASE,
)
#: More non-space characters than JUMP_LINK or METADATA_LABEL can match (at most 23 each).
SHORT_LABEL = 40
#: More words than a "Content current as of" label with one date line can be: the patterns
#: allow at most 20 runs of whitespace (CURRENT_AS_OF 4, DATE_LINE 15, one between), 21 words.
DATE_BLOCK_WORDS = 32
US_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
#: Query parameters that only track the visitor, never select the document.

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE_FORMS = (
    r"\d{1,2}/\d{1,2}/\d{2,4}",  # 10/10/2023
    r"\d{1,2}/\d{4}",  # 3/2024 (label revision dates)
    r"\d{1,2}-\d{1,2}-\d{4}",  # 03-24-2023
    r"\d{4}-\d{2}-\d{2}(?:t[\d:.]+z?)?",  # 2023-10-10, 2023-10-10T14:31:00Z
    rf"{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}",  # October 10, 2023
    rf"\d{{1,2}}\s+{_MONTH},?\s+\d{{4}}",  # 10 October 2023
    rf"{_MONTH},?\s+\d{{4}}",  # March 2024
)
#: Generic page/label revision stamps only: "REMS last update" is a content signal, not one.
_DATE_LABEL = (
    r"(?:content\s+current\s+as\s+of|(?:page\s+)?last\s+(?:updated|update|reviewed|modified)"
    r"|(?:page\s+)?(?:updated|reviewed)(?:\s+on)?|revised|revision(?:\s+date)?|rev\.?|date)"
)
DATE_LINE = re.compile(
    rf"^\s*(?:{_DATE_LABEL}\s*:?\s*)?"
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
    rf"(?:{'|'.join(_DATE_FORMS)})"
    r"(?:\s*(?:-|,|at)?\s*\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?(?:\s*[a-z]{2,4})?)?"
    r"\s*\.?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class NormalizedHtml:
    """The canonical text of a watched region and its "Content current as of" date (ISO)."""

    text: str
    content_date: str | None


def html_to_text(fragment: str) -> NormalizedHtml:
    """Canonical text of an HTML fragment or page: one line per block, page furniture removed."""
    tree = HtmlTree(_as_markup(fragment))
    try:
        found = _Furniture.find(tree)
        content_date = _strip_content_current(tree, found)
        _strip_furniture(tree, found)
        return NormalizedHtml(text="\n".join(render_lines(tree)), content_date=content_date)
    finally:
        tree.close()


def feed_item_text(title: str, description_html: str) -> str:
    """A feed item's text: the title line, then the description rendered like a page.

    The description is HTML (feedparser hands it over still escaped), so the HTML parser decodes
    its entities exactly once: FDA's double-escaped `&amp;amp;` becomes `&`, and a literal
    `&amp;lt;` stays `&lt;`. The title is plain text that may still carry one level of escaping.
    """
    title_line = clean_line(html.unescape(title or ""))
    body = html_to_text(description_html or "").text
    return "\n".join(part for part in (title_line, body) if part)


def content_sha256(text: str) -> str:
    """Hex sha256 of the (already normalized) text, the history's identity of a version."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def looks_like_date_line(line: str) -> bool:
    """True for a line that only carries a date stamp ("Revised: 3/2024", "10/10/2023").

    Severity calls a diff made only of such lines noise (T5). A line with any other words, such
    as "REMS last update: 12/31/2024" (a REMS modification), is content and returns False.
    """
    return bool(DATE_LINE.match(line))


def _as_markup(fragment: str) -> str:
    """Markup parsed as HTML (no XML declaration, no byte order mark, never a bare "URL")."""
    if fragment.startswith("\ufeff"):
        fragment = fragment[1:]
    fragment = XML_DECLARATION.sub("", fragment, count=1)
    return fragment if "<" in fragment else f"<div>{fragment}</div>"


# --- boilerplate -------------------------------------------------------------------------------


@dataclass
class _Furniture:
    """Everything the boilerplate rules may remove, found in one walk over the parsed tree.

    Each list is in document order, as separate searches would give it. Removing nodes never
    adds any, so the rules still see exactly what a fresh search would have found, once `gone`
    skips what an earlier rule already removed. Strings of every kind are searched (comments
    too), as BeautifulSoup's `find_all(string=…)` did.
    """

    current_as_of: list[Node] = field(default_factory=list)
    dropped: list[etree._Element] = field(default_factory=list)
    widgets: list[etree._Element] = field(default_factory=list)
    jump_links: list[Node] = field(default_factory=list)
    metadata_labels: list[Node] = field(default_factory=list)

    @classmethod
    def find(cls, tree: HtmlTree) -> _Furniture:
        found = cls()
        for node in tree.document():
            if tree.is_tag(node):
                assert isinstance(node, etree._Element)
                if node.tag in DROP_TAG_NAMES:
                    found.dropped.append(node)
                if _is_widget(node):
                    found.widgets.append(node)
                continue
            value = tree.value(node)
            if not value:
                continue
            if CURRENT_AS_OF.search(value):
                found.current_as_of.append(node)
            if JUMP_LINK.search(value):
                found.jump_links.append(node)
            if METADATA_LABEL.search(value):
                found.metadata_labels.append(node)
        return found


def _strip_content_current(tree: HtmlTree, found: _Furniture) -> str | None:
    """Remove every "Content current as of" block; return the first date found (ISO).

    The block is the largest element holding only the label and its date, whatever the markup
    (`<li><h2>label</h2><p><time>…</time></p></li>`, or label and date as siblings in a `div`).
    When the label and the date sit in separate blocks, each block is removed on its own.
    """
    date_found: str | None = None
    for label in found.current_as_of:
        if tree.gone(label) or not _is_label_and_maybe_date(_norm(tree, label)):
            continue
        block = _only_ancestor(tree, label, _is_label_and_maybe_date, words=DATE_BLOCK_WORDS)
        date = _date_in(tree, block)
        if date is None:
            date_node = _next_text(tree, block)
            if date_node is not None and _is_date_only(_norm(tree, date_node)):
                date_block = _only_ancestor(tree, date_node, _is_date_only, words=DATE_BLOCK_WORDS)
                date = _date_in(tree, date_block)
                tree.remove(date_block)
        tree.remove(block)
        date_found = date_found or date
    return date_found


def _is_date_only(text: str) -> bool:
    return bool(text) and looks_like_date_line(text)


def _is_label_and_maybe_date(text: str) -> bool:
    """Text that is the label, optionally followed by one date and nothing else."""
    match = CURRENT_AS_OF.search(text)
    if match is None or text[: match.start()].strip():
        return False
    rest = text[match.end() :]
    return not rest.strip() or _is_date_only(rest.strip())


def _date_in(tree: HtmlTree, node: Node) -> str | None:
    """ISO date of a `<time datetime>` inside node, else of an MM/DD/YYYY in its text."""
    if tree.is_tag(node):
        assert isinstance(node, etree._Element)
        if node.tag == "time":
            times = [node]
        else:
            times = [e for e in tree.descendants(node) if tree.is_tag(e) and e.tag == "time"]  # type: ignore[union-attr]
        for time in times:
            match = ISO_DATE.match(str(time.get("datetime") or "").strip())  # type: ignore[union-attr]
            if match:
                return "-".join(match.groups())
    match = US_DATE.search(_norm(tree, node))
    if match:
        month, day, year = (int(group) for group in match.groups())
        if 1 <= month <= 12 and 1 <= day <= 31:
            return f"{year:04d}-{month:02d}-{day:02d}"
    match = ISO_DATE.match(_norm(tree, node).strip())
    return "-".join(match.groups()) if match else None


def _strip_furniture(tree: HtmlTree, found: _Furniture) -> None:
    """Drop menus, hidden elements, share/print widgets, jump links and metadata lists."""
    for tag in found.dropped:
        in_article = tag.tag == "header" and tree.find_parent(tag, "article") is not None
        if not tree.gone(tag) and not in_article:
            tree.remove(tag)
    for tag in found.widgets:
        if not tree.gone(tag):
            tree.remove(tag)
    for text in found.jump_links:
        if not tree.gone(text) and tree.find_parent(text, "a") is not None:
            tree.remove(_only_ancestor(tree, text, JUMP_LINK.match, SHORT_LABEL))
    for text in found.metadata_labels:
        if not tree.gone(text):
            _strip_metadata_list(tree, text)


def _is_widget(tag: etree._Element) -> bool:
    """Hidden elements and share/print widgets."""
    if tag.get("hidden") is not None or str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    if not tag.get("class"):
        return False  # most elements: no class to read
    classes = _classes(tag)
    if SHARE_CLASSES.intersection(classes):
        return True
    return any("print" in name and not PRINT_HIDING_CLASS.match(name) for name in classes)


def _classes(tag: etree._Element) -> list[str]:
    return [name.lower() for name in (tag.get("class") or "").split()]


def _strip_metadata_list(tree: HtmlTree, label: Node) -> None:
    """Remove a "Regulated Product(s)" / "Topic(s)" heading and the list right after it."""
    heading = _only_ancestor(tree, label, METADATA_LABEL.match, SHORT_LABEL)
    following = tree.next_sibling_tag(heading)
    if following is not None and (
        following.tag in ("ul", "ol", "dl") or any("list" in name for name in _classes(following))
    ):
        tree.remove(following)
    tree.remove(heading)


# --- tree helpers ------------------------------------------------------------------------------


def _norm(tree: HtmlTree, node: Node) -> str:
    is_tag = tree.is_tag(node)
    text = tree.get_text(node, " ") if is_tag else tree.value(node)  # type: ignore[arg-type]
    return SPACES.sub(" ", text).strip()


def _only_ancestor(
    tree: HtmlTree,
    node: Node,
    accepts: Callable[[str], object],
    longest: int | None = None,
    words: int | None = None,
) -> Node:
    """The highest ancestor (or node itself) whose whole text still satisfies `accepts`.

    `longest` / `words`: the most non-space characters / words a text `accepts` can take. An
    ancestor with more is refused without joining its text (a "Back to top" link's or a
    "Content current as of" label's parents grow to whole sections: joining each was ~3 % of a
    first crawl, and ~30 % of normalizing a page whose date sits at the end of its article).
    """
    best: Node = node
    parent = tree.parent(node)
    while parent is not None and parent.tag != "body":
        text = _bounded_norm(tree, parent, longest, words)
        if text is None or not accepts(text):
            break
        best, parent = parent, parent.getparent()
    return best


def _bounded_norm(
    tree: HtmlTree, element: etree._Element, longest: int | None, words: int | None
) -> str | None:
    """`_norm` of an element, or None once its strings hold more than `longest` non-space
    characters or more than `words` words (no bound: always `_norm`)."""
    if longest is None and words is None:
        return _norm(tree, element)
    strings: list[str] = []
    size = count = 0
    for string in tree.strings(element):
        if longest is not None:
            size += len(SPACES.sub("", string))
        if words is not None:
            count += len(string.split())
        if (longest is not None and size > longest) or (words is not None and count > words):
            return None
        strings.append(string)
    return SPACES.sub(" ", " ".join(strings)).strip()


def _next_text(tree: HtmlTree, node: Node) -> Node | None:
    """The first non-blank text after node (not inside it), skipping comments."""
    last = node
    while tree.is_tag(last):
        contents = tree.contents(last)  # type: ignore[arg-type]
        if not contents:
            break
        last = contents[-1]
    for element in tree.next_nodes(last):
        if tree.is_text(element) and tree.value(element).strip():
            return element
    return None
