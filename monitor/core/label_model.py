"""A drug label as sections: the model both label formats (SPL XML, openFDA JSON) parse into.

A label's canonical text is one block per section, each headed by a stable header line
(`## BOXED WARNING [34066-1]` for SPL, `## boxed_warning` for openFDA), after a `## document`
block holding the set id, version and effective date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from monitor.core.normalize import looks_like_date_line

#: Observation.content_type of a DailyMed SPL XML document / of one openFDA label result.
DOCUMENT = "document"


HEADER_PREFIX = "## "


REVISED_INLINE = re.compile(
    r"\b(?:Revised|Revision\s+Date)\s*:?\s*\d{1,2}/(?:\d{1,2}/)?\d{4}\b", re.I
)


REVISED_LINE = re.compile(r"^\s*(?:revised|revision(?:\s+date)?|rev\.?)\b", re.I)


HEADER_ID = re.compile(r"\[([^\]]+)\]\s*$")


SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Section:
    """One top-level label section: its code (LOINC or openFDA field), title and text lines."""

    code: str
    title: str
    header: str  # the stable header line without "## "
    lines: tuple[str, ...]
    subsections: int = 0

    @property
    def characters(self) -> int:
        return sum(len(line) for line in self.lines)


@dataclass(frozen=True)
class Label:
    """A parsed label: what identifies the version, and its sections in document order."""

    set_id: str
    version: str
    effective_time: str
    title: str
    sections: tuple[Section, ...]
    document_id: str = ""

    def text(self) -> str:
        """The canonical text the history hashes and diffs."""
        lines = [f"{HEADER_PREFIX}{DOCUMENT}", f"set_id: {self.set_id}"]
        if self.document_id:
            lines.append(f"id: {self.document_id}")
        lines += [f"version: {self.version}", f"effective_time: {self.effective_time}"]
        for section in self.sections:
            if section.lines:
                lines.append(HEADER_PREFIX + section.header)
                lines.extend(escape_line(line) for line in section.lines)
        return "\n".join(lines)


def clean_lines(lines: Iterable[str]) -> list[str]:
    """Whitespace collapsed, "Revised: 3/2024" stamps dropped, empty lines removed."""
    kept = []
    for line in lines:
        line = SPACES.sub(" ", REVISED_INLINE.sub("", line)).strip()
        if not line or (REVISED_LINE.match(line) and looks_like_date_line(line)):
            continue
        kept.append(line)
    return kept


def escape_line(line: str) -> str:
    """A content line can never be mistaken for a section header."""
    return "# #" + line[2:] if line.startswith("##") else line


def scalar(value: Any) -> str:
    """One JSON value as one line of text (booleans as JSON spells them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return SPACES.sub(" ", str(value if value is not None else "")).strip()
