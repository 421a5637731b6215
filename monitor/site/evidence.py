"""Evidence bundles for compliance records: what fdawatch saw, byte for byte, with its hashes.

A bundle is a zip holding, for the versions before and after one change, the raw response body
exactly as fetched (the decompressed `Blob`), the normalized text that was hashed and diffed, the
diff, and `manifest.json` with URLs, fetch times, HTTP status and headers and the SHA-256 of every
file, plus the change's delivery log and review history. The zip is deterministic (fixed member
order and timestamps), so building a bundle twice from the same history gives the same bytes and
the bundle's own hash can be recorded too.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from db.models import Change, Snapshot, Source
from monitor.core.diff import unified
from monitor.errors import EvidenceError
from monitor.history.blobs import raw_body
from monitor.review.audit import deliveries, delivery_record, review_event
from monitor.review.records import review_history

FORMAT = "fdawatch-evidence/1"
MANIFEST = "manifest.json"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
_EXTENSIONS = {
    "html": ".html", "xml": ".xml", "rss": ".xml", "atom": ".xml", "json": ".json", "pdf": ".pdf",
}  # fmt: skip


def bundle_name(change_id: int) -> str:
    """`change-12.zip`: the file name used on the site and by `fdawatch evidence`."""
    return f"change-{change_id}.zip"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat()


def _extension(headers: dict[str, Any]) -> str:
    """The raw body's file extension, from its Content-Type (the body is kept as bytes)."""
    content_type = next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "")
    subtype = content_type.split(";")[0].strip().lower().rsplit("/", 1)[-1]
    return next((ext for key, ext in _EXTENSIONS.items() if key in subtype), ".bin")


def _version(
    session: Session, label: str, snapshot: Snapshot | None, files: dict[str, bytes]
) -> dict[str, Any] | None:
    """Add one version's files to `files`; return its manifest entry."""
    if snapshot is None:
        return None
    normalized = f"{label}/normalized.txt"
    files[normalized] = snapshot.text.encode("utf-8")
    body = raw_body(session, snapshot)
    body_file = None
    if body is not None:
        body_file = f"{label}/raw-body{_extension(snapshot.headers)}"
        files[body_file] = body
    return {
        "snapshot_id": snapshot.id,
        "url": snapshot.url,
        "title": snapshot.title,
        "fetched_at": _iso(snapshot.fetched_at),
        "http_status": snapshot.http_status,
        "content_date": snapshot.meta.get("content_date"),  # FDA's "Content current as of"
        "headers": snapshot.headers,
        "normalized_sha256": snapshot.sha256,
        "normalized_file": normalized,
        "raw_body_sha256": snapshot.body_sha256,
        "raw_body_file": body_file,
    }


def bundle_files(session: Session, change_id: int) -> dict[str, bytes]:
    """Every file of the bundle by its path in the zip, `manifest.json` included."""
    change = session.get(Change, change_id)
    if change is None:
        raise EvidenceError(f"no change {change_id!r}; `fdawatch changes` lists them")
    old = session.get(Snapshot, change.old_snapshot_id) if change.old_snapshot_id else None
    new = session.get(Snapshot, change.new_snapshot_id) if change.new_snapshot_id else None
    files: dict[str, bytes] = {}
    before = _version(session, "before", old, files)
    after = _version(session, "after", new, files)
    diff = change.diff or unified(
        old.text if old else "", new.text if new else "", "before", "after"
    )
    files["diff.txt"] = diff.encode("utf-8")
    source = session.get(Source, change.source_id)
    manifest = {
        "format": FORMAT,
        "change": {
            "id": change.id,
            "kind": change.kind,
            "severity": change.severity,
            "severity_reasons": change.severity_reasons,
            "title": change.title,
            "summary": change.summary,
            "document_key": change.doc_key,
            "matched_terms": change.matched_terms,
            "sections": change.sections,
            "detected_at": _iso(change.detected_at),
        },
        "source": {
            "id": change.source_id,
            "title": source.title if source else "",
            "url": source.url if source else "",
        },
        "before": before,
        "after": after,
        "deliveries": [delivery_record(a) for a in deliveries(session, change_id=change_id)],
        "reviews": [review_event(r) for r in review_history(session, change_id)],
        "files": [
            {"path": path, "sha256": _sha256(data), "bytes": len(data)}
            for path, data in sorted(files.items())
        ],
        "note": (
            "raw-body files are the HTTP response bodies exactly as fetched; normalized.txt is "
            "the text fdawatch hashed (normalized_sha256) and diffed (diff.txt); deliveries are "
            "the alerts and escalations sent (or refused) about the change, reviews every review "
            "of it, oldest first, as recorded when the bundle was written."
        ),
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return files


def build_bundle(session: Session, change_id: int) -> bytes:
    """The zip's bytes; the same history gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in sorted(bundle_files(session, change_id).items()):
            info = zipfile.ZipInfo(path, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temp file and a rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        temp.chmod(0o644)
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path

