"""The review of a batch before it is written: record it, hold it for a second look, or fail it.

A page whose watched text shrank to a fraction, or gained replacement characters
(`monitor.core.suspect`), is more often a transfer cut short or a CDN's error page than an edit.
Such a batch is held back — nothing of it is recorded, a `held` fetch row says why — and the
spider fetches it once more after `[crawl] second_look_delay` seconds. The change is raised only
if the second look agrees; if it disagrees the fetch fails as "content unstable". A watched region
that now reads like an error page is a failed fetch. Pure: the pipeline acts on the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.core import suspect
from monitor.items import FAILED, HELD, SourceFetch
from monitor.sources import SourceConfig

#: Only these kinds are fetched again for a second look (one request gives the whole document).
SECOND_LOOK_KINDS = ("page", "feed")


@dataclass(frozen=True)
class Review:
    """What to do with a batch: record it, hold it for a second look, or fail the fetch."""

    action: str  # "record" / "hold" / "fail"
    reason: str = ""
    held: dict[str, str] | None = None  # doc key → hash of the version held back


def review(
    source: SourceConfig,
    fetch: SourceFetch,
    edits: Sequence[tuple[str, str, str, str]],
    held_before: Mapping[str, Mapping[str, str]],
) -> Review:
    """Record, hold for a second look, or fail a batch of `source`.

    `edits` are the batch's edited documents, (key, old text, new text, new hash), reviewed
    before anything of the batch is written; `held_before` are the sources this crawl already
    held, with the hashes their first look saw.
    """
    doubtful: dict[str, str] = {}
    reasons: list[str] = []
    for key, old_text, new_text, new_sha in edits:
        why = suspect.suspicion(old_text, new_text)
        if why is None:
            continue
        message = suspect.error_page(new_text)
        if message:
            return Review(
                "fail",
                f"the watched region of {key} now reads like an error page "
                f"({message!r}): not recorded as a version",
            )
        doubtful[key] = new_sha
        reasons.append(f"{key}: {why}")
    if not doubtful:
        return Review("record")
    if fetch.second_look:
        first = held_before.get(source.id, {})
        if all(first.get(key) == sha for key, sha in doubtful.items()):
            return Review("record")  # the second look agrees: believe it
        return Review(
            "fail",
            "content unstable: a second fetch a few seconds later disagreed with the first "
            f"({'; '.join(reasons)})",
        )
    if source.kind not in SECOND_LOOK_KINDS or source.id in held_before:
        return Review("record")
    return Review("hold", "; ".join(reasons), doubtful)


def stopped(fetch: SourceFetch, progress: str) -> SourceFetch:
    """The fetch record of a source whose recording a stop signal or timeout cut short."""
    return failed(
        fetch, f"crawl stopped while recording ({progress}); the next crawl records the rest"
    )


def held(fetch: SourceFetch, reason: str, delay: float) -> SourceFetch:
    return _as(fetch, HELD, f"held for a second look in {delay:g} s: {reason}")


def failed(fetch: SourceFetch, reason: str) -> SourceFetch:
    return _as(fetch, FAILED, reason)


def _as(fetch: SourceFetch, outcome: str, error: str) -> SourceFetch:
    """The same fetch with another outcome: no validators, no document keys (nothing recorded)."""
    return SourceFetch(
        source_id=fetch.source_id,
        url=fetch.url,
        outcome=outcome,
        fetched_at=fetch.fetched_at,
        http_status=fetch.http_status,
        error=error[:300],
        bytes=fetch.bytes,
        duration_ms=fetch.duration_ms,
        final_url=fetch.final_url,
        server=fetch.server,
        second_look=fetch.second_look,
    )
