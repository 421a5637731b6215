"""API documents through the writer: one fetch of an openFDA / DailyMed / Federal Register source.

`crawl` records what one fetch of an API source yields, as the pipeline does: every document,
then the fetch record with the keys it saw (for a result-set source, a key missing from an OK
fetch counts toward a removal). Labels and records keep their content type, so the writer diffs
them by section or by field.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from db.models import Change
from monitor.history.writer import HistoryWriter
from monitor.items import OK, Observation, SourceFetch
from monitor.sources import SourceConfig


def first_result(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))["results"][0]


def observe(
    source: SourceConfig, key: str, content: str, content_type: str, at: datetime
) -> Observation:
    return Observation(
        source_id=source.id,
        key=key,
        url=source.url,
        title=key,
        content=content,
        content_type=content_type,
        fetched_at=at,
        body=content.encode(),
    )


def crawl(
    session: Session,
    source: SourceConfig,
    documents: dict[str, str],
    content_type: str,
    at: datetime,
    outcome: str = OK,
) -> list[Change]:
    """One fetch of an API source: every document, then the fetch record (as the pipeline)."""
    changes = [
        HistoryWriter([source]).record_observation(
            session, observe(source, key, text, content_type, at), at
        )
        for key, text in documents.items()
    ]
    found = [change for change in changes if change is not None]
    keys = list(documents) if outcome == OK else []
    fetch = SourceFetch(source.id, source.url, outcome, at, documents=len(keys), document_keys=keys)
    HistoryWriter([source]).record_fetch(session, fetch, at, changes=len(found))
    session.commit()
    removed = session.exec(
        select(Change).where(Change.kind == "removed", Change.detected_at == at)
    ).all()
    return found + list(removed)
