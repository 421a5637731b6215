"""What an RSS capture holds, read straight from the XML: the yardstick fdawatch is checked by.

Counted independently of fdawatch's code (ElementTree, not feedparser; no fdawatch
normalization), so a test comparing fdawatch's changes with it cannot share fdawatch's mistakes.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path


def independent_items(path: Path) -> dict[str, str]:
    """link (scheme-less) → title + description text, straight from the XML."""
    items = {}
    for node in ET.parse(path).getroot().iter("item"):
        link = (node.findtext("link") or "").strip().split("://", 1)[-1]
        description = re.sub(r"<[^>]+>", " ", html.unescape(node.findtext("description") or ""))
        text = " ".join(f"{node.findtext('title') or ''} {description}".split())
        items.setdefault(link, text)
    return items
