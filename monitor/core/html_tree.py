"""A parsed HTML fragment seen as BeautifulSoup saw it, on lxml's own tree (one parse, no copy).

The normalizer used to build a BeautifulSoup tree on top of lxml's parser: a Python object per
element and per string, about 60 % of its time. `HtmlTree` reads lxml's tree in place and gives the
normalizer the same view: the same parser (libxml2's HTML push parser, fed the same string), the
same string nodes (an element's text, each node's tail, comments and processing instructions),
the same string *kinds* (text inside `<script>`, `<style>`, `<template>`, `<rt>` or `<rp>` is not
page text, as BeautifulSoup's string containers have it) and the same removals: `remove` marks a
node removed instead of unlinking it (its tail stays, as BeautifulSoup's `extract` keeps the
following string), and every walk skips removed nodes. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from lxml import etree

#: Elements whose strings BeautifulSoup gives a type of their own (never rendered as text).
CONTAINERS = frozenset({"script", "style", "template", "rt", "rp"})
#: The kind of ordinary page text (BeautifulSoup's plain `NavigableString`).
PLAIN = ""
COMMENT = "#comment"
PI = "#pi"


#: libxml2 builds trees at most this deep and silently drops the rest of the document; deeper
#: documents are parsed again through a tree builder fed by parser events (no depth limit), as
#: BeautifulSoup's were. That path loses comments before the root element, which never render.
MAX_NATIVE_DEPTH = 255


def _depth(root: etree._Element) -> int:
    depth = deepest = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def _parse(markup: str, *, deep: bool) -> etree._Element | None:
    parser = etree.HTMLParser(recover=True, target=etree.TreeBuilder() if deep else None)
    parser.feed(markup)
    return parser.close()


class Text(NamedTuple):
    """A string node: `owner`'s text (tail False) or the string right after `owner` (tail True)."""

    owner: etree._Element
    tail: bool


#: A node as BeautifulSoup had it: an element (tag), a comment or processing instruction (an
#: `_Element` whose tag is not a string), or a `Text`.
Node = etree._Element | Text


class HtmlTree:
    """One parsed fragment, its string kinds and the nodes removed so far."""

    def __init__(self, markup: str) -> None:
        self.root = _parse(markup, deep=False)
        if self.root is not None and _depth(self.root) >= MAX_NATIVE_DEPTH:
            self.root = _parse(markup, deep=True)
        self.removed: set[Node] = set()
        #: The string kind of each element inside a container (all others hold page text). Only
        #: these elements get a lasting proxy: lxml frees a proxy in time proportional to its
        #: depth unless its parent's proxy is alive, so a proxy per element of a deep tree
        #: would make freeing it quadratic.
        self._kinds: dict[etree._Element, str] = {}
        if self.root is not None:
            for container in self.root.iter(*CONTAINERS):
                for element in container.iter():
                    self._kinds[element] = container.tag  # inner containers come later: win

    def close(self) -> None:
        """Drop the proxies deepest first (each then frees at once; see `_kinds`)."""
        while self._kinds:
            self._kinds.popitem()
        self.removed.clear()

    # -- what a node is ----------------------------------------------------------------------

    @staticmethod
    def is_tag(node: object) -> bool:
        return isinstance(node, etree._Element) and isinstance(node.tag, str)

    def kind(self, node: Node) -> str:
        """PLAIN for page text; a container's name, COMMENT or PI for the other strings."""
        if isinstance(node, Text):
            if not self._kinds:
                return PLAIN
            home = node.owner.getparent() if node.tail else node.owner
            return self._kinds.get(home, PLAIN) if home is not None else PLAIN
        return COMMENT if node.tag is etree.Comment else PI

    @staticmethod
    def value(node: Node) -> str:
        """The string of a string node (a comment's text, a PI's target and data)."""
        if isinstance(node, Text):
            return (node.owner.tail if node.tail else node.owner.text) or ""
        if node.tag is etree.Comment:
            return node.text or ""
        return f"{node.target} {node.text or ''}"  # type: ignore[attr-defined]

    def is_text(self, node: Node) -> bool:
        """Rendered text only: page strings, never comments, scripts or ruby annotations."""
        return isinstance(node, Text) and self.kind(node) == PLAIN

    # -- structure -----------------------------------------------------------------------------

    @staticmethod
    def parent(node: Node) -> etree._Element | None:
        if isinstance(node, Text):
            return node.owner.getparent() if node.tail else node.owner
        return node.getparent()

    def top(self) -> list[Node]:
        """The document's own children: the root element and any comment beside it."""
        if self.root is None:
            return []
        before = list(self.root.itersiblings(preceding=True))[::-1]
        nodes: list[Node] = []
        for node in (*before, self.root, *self.root.itersiblings()):
            nodes.append(node)
            if node.tail is not None:
                nodes.append(Text(node, True))
        return [node for node in nodes if node not in self.removed]

    def contents(self, element: etree._Element) -> list[Node]:
        """An element's children as BeautifulSoup listed them, removed ones left out."""
        nodes: list[Node] = []
        if element.text is not None:
            nodes.append(Text(element, False))
        for child in element:
            nodes.append(child)
            if child.tail is not None:
                nodes.append(Text(child, True))
        removed = self.removed
        return [node for node in nodes if node not in removed] if removed else nodes

    def descendants(self, element: etree._Element) -> Iterator[Node]:
        """Every node under `element` in document order (iterative: any depth)."""
        stack = [iter(self.contents(element))]
        while stack:
            for node in stack[-1]:
                yield node
                if self.is_tag(node):
                    stack.append(iter(self.contents(node)))  # type: ignore[arg-type]
                    break
            else:
                stack.pop()

    def document(self) -> Iterator[Node]:
        """Every node of the document in document order."""
        for node in self.top():
            yield node
            if self.is_tag(node):
                yield from self.descendants(node)  # type: ignore[arg-type]

    def ancestors(self, node: Node) -> Iterator[etree._Element]:
        parent = self.parent(node)
        while parent is not None:
            yield parent
            parent = parent.getparent()

    def find_parent(self, node: Node, name: str) -> etree._Element | None:
        return next((a for a in self.ancestors(node) if a.tag == name), None)

    def next_sibling_tag(self, node: Node) -> etree._Element | None:
        """The next element after `node` under the same parent (strings and comments skipped)."""
        if isinstance(node, Text) and not node.tail:
            siblings: Iterator[etree._Element] = iter(node.owner)
        else:
            owner = node.owner if isinstance(node, Text) else node
            siblings = owner.itersiblings()
        for sibling in siblings:
            if self.is_tag(sibling) and sibling not in self.removed:
                return sibling
        return None

    def get_text(self, element: etree._Element, separator: str = "") -> str:
        """BeautifulSoup's `get_text`: the strings of the element's own kind, joined."""
        return separator.join(self.strings(element))

    def strings(self, element: etree._Element) -> Iterator[str]:
        """The strings `get_text` joins, in document order (a caller may stop early)."""
        wanted = element.tag if element.tag in CONTAINERS else PLAIN
        for node in self.descendants(element):
            if isinstance(node, Text) and self.kind(node) == wanted:
                yield self.value(node)

    # -- removal -------------------------------------------------------------------------------

    def remove(self, node: Node) -> None:
        self.removed.add(node)

    def gone(self, node: Node) -> bool:
        """True once the node or an ancestor was removed."""
        removed = self.removed
        return node in removed or any(a in removed for a in self.ancestors(node))

    def next_nodes(self, node: Node) -> Iterator[Node]:
        """The nodes after `node` in document order (BeautifulSoup's `next_elements`)."""
        found = False
        for other in self.document():
            if found:
                yield other
            elif other == node:
                found = True
