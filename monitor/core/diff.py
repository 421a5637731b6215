"""Line and word diffs of normalized text, and a one-line summary a reader can trust.

Pure functions over strings. The input is the canonical text from `monitor.core.normalize` (one line
per block), so a line diff is a block diff and an edited sentence is one changed line.
Everything here is derived from the two texts only; no wording is invented.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

#: Replaced lines at least this similar are shown as one edited line with a word diff.
EDIT_SIMILARITY = 0.5
SUMMARY_MAX = 160
ELLIPSIS = "…"
#: Words kept on each side of the changed words when an edited line is shortened.
SUMMARY_CONTEXT_WORDS = 6
#: Whitespace, a word (dates and numbers like 06/25/2019 stay one token), or one punctuation mark:
#: "sedation," and "sedation" share the word, so only the comma shows as inserted.
_TOKENS = re.compile(r"\s+|[^\s.,;:!?()\[\]\"“”]+|[.,;:!?()\[\]\"“”]")
_WORDS = re.compile(r"\S+")

ChangeKind = Literal["added", "removed", "edited"]
Segment = tuple[str, str]


@dataclass(frozen=True)
class LineChange:
    """One changed line: added, removed, or edited (with the word diff of old → new)."""

    kind: ChangeKind
    old: str
    new: str
    words: list[Segment] = field(default_factory=list)


def unified(old: str, new: str, old_label: str, new_label: str, context: int = 2) -> str:
    """A line-based unified diff, the plain-text body stored with a change and sent in mail."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), old_label, new_label, n=context, lineterm=""
    )
    return "\n".join(lines)


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    """(added lines, removed lines), each in document order."""
    added: list[str] = []
    removed: list[str] = []
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed.extend(matcher.a[i1:i2])
        if tag in ("replace", "insert"):
            added.extend(matcher.b[j1:j2])
    return added, removed


def word_diff(old_line: str, new_line: str) -> list[Segment]:
    """Word-level segments ("equal" | "insert" | "delete", text) turning old_line into new_line.

    Whitespace is kept as its own tokens, so joining the equal and insert segments gives
    new_line back, and joining the equal and delete segments gives old_line back.
    Punctuation is its own token, and a lone space between two changed runs joins them
    (`~~sedation and~~ ++sedation, dissociation and++` rather than interleaved fragments), so
    each run reads as one removed and one added phrase.
    """
    old_tokens = _TOKENS.findall(old_line)
    new_tokens = _TOKENS.findall(new_line)
    matcher = difflib.SequenceMatcher(None, old_tokens, new_tokens, autojunk=False)
    segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _append(segments, "equal", "".join(old_tokens[i1:i2]))
            continue
        _append(segments, "delete", "".join(old_tokens[i1:i2]))
        _append(segments, "insert", "".join(new_tokens[j1:j2]))
    return _join_runs(segments)


def paired_changes(old: str, new: str) -> list[LineChange]:
    """The changed lines, with replaced lines paired up one-to-one into "edited" entries.

    A replaced line is paired with the new line at the same offset of the replaced run when the
    two are similar enough (ratio ≥ EDIT_SIMILARITY); otherwise it is a removal plus an addition.
    """
    old_lines, new_lines = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    changes: list[LineChange] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed, added = old_lines[i1:i2], new_lines[j1:j2]
        changes.extend(pair_lines(removed, added))
    return changes


def summarize(
    old: str | None, new: str, kind: str, *, weigh: Callable[[str], int] | None = None
) -> str:
    """One plain line (≤ 160 chars) saying what changed, quoted from the texts themselves.

    Of several changed lines it quotes the one `weigh` scores highest (the caller counts the
    watched terms a line names), so "ketamine" in the third edit is not hidden behind a reworded
    first sentence; on a tie, the first edited line, else the first change.
    """
    if kind == "new" or old is None:
        return _shorten(_first_line(new))
    if kind == "removed":
        return _shorten(f"Removed: {_first_line(old)}")
    changes = paired_changes(old, new)
    if not changes:
        return "No text change"
    first = _lead(changes, weigh)
    more = len(changes) - 1
    suffix = f" and {more} more change{'s' if more != 1 else ''}" if more else ""
    label = first.kind.capitalize() if first.kind != "edited" else "Changed"
    room = SUMMARY_MAX - len(label) - len(suffix) - len(": “”")
    if first.kind == "edited":
        quote = _around_change(first.words, room)
    else:
        quote = _shorten(first.new or first.old, room)
    return f"{label}: “{quote}”{suffix}"


# --- helpers -----------------------------------------------------------------------------------


def _lead(changes: list[LineChange], weigh: Callable[[str], int] | None) -> LineChange:
    """The change a summary quotes: highest weight, then an edit over an add/remove, then first."""
    if len(changes) == 1:
        return changes[0]  # nothing to weigh it against

    def rank(numbered: tuple[int, LineChange]) -> tuple[int, bool, int]:
        index, change = numbered
        weight = weigh(f"{change.old}\n{change.new}") if weigh else 0
        return (weight, change.kind == "edited", -index)

    return max(enumerate(changes), key=rank)[1]


def _append(segments: list[Segment], kind: str, text: str) -> None:
    """Add a segment, merging it into the previous one of the same kind; skip empty text."""
    if not text:
        return
    if segments and segments[-1][0] == kind:
        segments[-1] = (kind, segments[-1][1] + text)
    else:
        segments.append((kind, text))


def pair_lines(removed: list[str], added: list[str]) -> list[LineChange]:
    """Pair a replaced run line by line; unpaired or dissimilar lines stay removed / added."""
    changes: list[LineChange] = []
    for index in range(max(len(removed), len(added))):
        old = removed[index] if index < len(removed) else None
        new = added[index] if index < len(added) else None
        if old is not None and new is not None and _similar(old, new):
            changes.append(LineChange("edited", old, new, word_diff(old, new)))
            continue
        if old is not None:
            changes.append(LineChange("removed", old, ""))
        if new is not None:
            changes.append(LineChange("added", "", new))
    return changes


def _join_runs(segments: list[Segment]) -> list[Segment]:
    """Fold an equal run of bare whitespace or one punctuation mark between changes into both
    sides, so a reader sees one removed phrase then one added phrase."""
    out: list[Segment] = []
    index = 0
    while index < len(segments):
        kind, text = segments[index]
        if kind != "equal":
            run_end = index
            while run_end < len(segments) and (
                segments[run_end][0] != "equal"
                or (
                    _is_glue(segments[run_end][1])
                    and run_end + 1 < len(segments)
                    and segments[run_end + 1][0] != "equal"
                )
            ):
                run_end += 1
            run = segments[index:run_end]
            deleted = "".join(t for k, t in run if k != "insert")
            inserted = "".join(t for k, t in run if k != "delete")
            _append(out, "delete", deleted if any(k == "delete" for k, _ in run) else "")
            _append(out, "insert", inserted if any(k == "insert" for k, _ in run) else "")
            index = run_end
            continue
        _append(out, kind, text)
        index += 1
    return out


def _is_glue(text: str) -> bool:
    return not text.strip() or (len(text.strip()) == 1 and text.strip() in ".,;:")


def _similar(old: str, new: str) -> bool:
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return matcher.ratio() >= EDIT_SIMILARITY


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _around_change(words: list[Segment], limit: int) -> str:
    """The new line from a few words before its first change on, cut to `limit` characters."""
    first = next((i for i, (kind, _) in enumerate(words) if kind != "equal"), len(words))
    before = "".join(text for _, text in words[:first])
    after = "".join(text for kind, text in words[first:] if kind != "delete")
    lead = list(_WORDS.finditer(before))
    if len(lead) > SUMMARY_CONTEXT_WORDS:
        before = ELLIPSIS + before[lead[-SUMMARY_CONTEXT_WORDS].start() :]
    return _shorten(before + after, limit)


def _shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """text cut to `limit` characters on a word boundary, ending with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS) + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > 0 else cut[: limit - len(ELLIPSIS)]
    return cut.rstrip(" ,;:") + ELLIPSIS
