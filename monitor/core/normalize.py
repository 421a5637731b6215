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

from bs4 import BeautifulSoup, CData, NavigableString, Tag

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
    soup = BeautifulSoup(_as_markup(fragment), "lxml")
    found = _Furniture.find(soup)
    content_date = _strip_content_current(found)
    _strip_furniture(found)
    return NormalizedHtml(text="\n".join(render_lines(soup)), content_date=content_date)


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
    """Markup bs4 parses as HTML without warnings (no XML declaration, never a bare "URL")."""
    fragment = XML_DECLARATION.sub("", fragment, count=1)
    return fragment if "<" in fragment else f"<div>{fragment}</div>"


# --- boilerplate -------------------------------------------------------------------------------


@dataclass
class _Furniture:
    """Everything the boilerplate rules may remove, found in one walk over the parsed tree.

    Each list is in document order, as separate `find_all` calls would give it. Removing
    elements never adds any, so the rules still see exactly what a fresh search would have
    found, once `_gone` skips what an earlier rule already removed.
    """

    current_as_of: list[NavigableString] = field(default_factory=list)
    dropped: list[Tag] = field(default_factory=list)
    widgets: list[Tag] = field(default_factory=list)
    jump_links: list[NavigableString] = field(default_factory=list)
    metadata_labels: list[NavigableString] = field(default_factory=list)

    @classmethod
    def find(cls, soup: BeautifulSoup) -> _Furniture:
        found = cls()
        for element in soup.descendants:
            if isinstance(element, Tag):
                if element.name in DROP_TAG_NAMES:
                    found.dropped.append(element)
                if _is_widget(element):
                    found.widgets.append(element)
            elif isinstance(element, NavigableString) and element:  # comments too, as find_all
                if CURRENT_AS_OF.search(element):
                    found.current_as_of.append(element)
                if JUMP_LINK.search(element):
                    found.jump_links.append(element)
                if METADATA_LABEL.search(element):
                    found.metadata_labels.append(element)
        return found


def _strip_content_current(found: _Furniture) -> str | None:
    """Remove every "Content current as of" block; return the first date found (ISO).

    The block is the largest element holding only the label and its date, whatever the markup
    (`<li><h2>label</h2><p><time>…</time></p></li>`, or label and date as siblings in a `div`).
    When the label and the date sit in separate blocks, each block is removed on its own.
    """
    date_found: str | None = None
    for label in found.current_as_of:
        if _gone(label) or not _is_label_and_maybe_date(_norm(label)):
            continue
        block = _only_ancestor(label, _is_label_and_maybe_date)
        date = _date_in(block)
        if date is None:
            date_node = _next_text(block)
            if date_node is not None and _is_date_only(_norm(date_node)):
                date_block = _only_ancestor(date_node, _is_date_only)
                date = _date_in(date_block)
                date_block.extract()
        block.extract()
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


def _date_in(node: Tag | NavigableString) -> str | None:
    """ISO date of a `<time datetime>` inside node, else of an MM/DD/YYYY in its text."""
    if isinstance(node, Tag):
        times = [node] if node.name == "time" else node.find_all("time")
        for time in times:
            match = ISO_DATE.match(str(time.get("datetime") or "").strip())
            if match:
                return "-".join(match.groups())
    match = US_DATE.search(_norm(node))
    if match:
        month, day, year = (int(group) for group in match.groups())
        if 1 <= month <= 12 and 1 <= day <= 31:
            return f"{year:04d}-{month:02d}-{day:02d}"
    match = ISO_DATE.match(_norm(node).strip())
    return "-".join(match.groups()) if match else None


def _strip_furniture(found: _Furniture) -> None:
    """Drop menus, hidden elements, share/print widgets, jump links and metadata lists."""
    for tag in found.dropped:
        if not _gone(tag) and not (tag.name == "header" and tag.find_parent("article")):
            tag.decompose()
    for tag in found.widgets:
        if not _gone(tag):
            tag.decompose()
    for text in found.jump_links:
        if not _gone(text) and text.find_parent("a") is not None:
            _only_ancestor(text, JUMP_LINK.match).extract()
    for text in found.metadata_labels:
        if not _gone(text):
            _strip_metadata_list(text)


def _is_widget(tag: Tag) -> bool:
    """Hidden elements and share/print widgets."""
    if tag.has_attr("hidden") or str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    classes = _classes(tag)
    if SHARE_CLASSES.intersection(classes):
        return True
    return any("print" in name and not PRINT_HIDING_CLASS.match(name) for name in classes)


def _classes(tag: Tag) -> list[str]:
    value = tag.get("class") or []
    names = value.split() if isinstance(value, str) else list(value)
    return [name.lower() for name in names]


def _strip_metadata_list(label: NavigableString) -> None:
    """Remove a "Regulated Product(s)" / "Topic(s)" heading and the list right after it."""
    heading = _only_ancestor(label, METADATA_LABEL.match)
    following = heading.find_next_sibling()
    if isinstance(following, Tag) and (
        following.name in ("ul", "ol", "dl") or any("list" in name for name in _classes(following))
    ):
        following.extract()
    heading.extract()


# --- tree helpers ------------------------------------------------------------------------------


def _gone(node: Tag | NavigableString) -> bool:
    """True once the node or an ancestor was removed (decomposed nodes have no parent left)."""
    return node.decomposed or _is_detached(node)


def _is_detached(node: Tag | NavigableString) -> bool:
    """True once an ancestor was removed from the tree."""
    top = node
    while top.parent is not None:
        top = top.parent
    return not isinstance(top, BeautifulSoup)


def _norm(node: Tag | NavigableString) -> str:
    text = node.get_text(" ") if isinstance(node, Tag) else str(node)
    return SPACES.sub(" ", text).strip()


def _only_ancestor(
    node: NavigableString, accepts: Callable[[str], object]
) -> Tag | NavigableString:
    """The highest ancestor (or node itself) whose whole text still satisfies `accepts`."""
    best: Tag | NavigableString = node
    parent = node.parent
    while parent is not None and not isinstance(parent, BeautifulSoup) and parent.name != "body":
        if not accepts(_norm(parent)):
            break
        best, parent = parent, parent.parent
    return best


def _next_text(node: Tag | NavigableString) -> NavigableString | None:
    """The first non-blank text after node (not inside it), skipping comments."""
    last = node
    while isinstance(last, Tag) and last.contents:
        last = last.contents[-1]
    for element in last.next_elements:
        if _is_text(element) and element.strip():
            return element
    return None


def _is_text(element: object) -> bool:
    """Rendered text only: plain strings and CDATA, never comments or doctypes."""
    return type(element) in (NavigableString, CData)
