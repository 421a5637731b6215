"""Recorded sources by version: what a fixture folder answers for a path at version V.

Layout: ``root/v1/<path>``, ``root/v2/<path>``, … hold what each recorded version looked like.
``GET /<path>`` at version V answers with ``root/vK/<path>`` for the largest K ≤ V that has
it, so a later version only needs the files that changed. ``root/vK/<path>.status`` (e.g.
``410``, or ``301 /new/path``) makes that path answer with that status from version K on: how a
page is retired. ``root/robots.txt`` (if any) is served at every version, else a permissive one.

A page kept elsewhere under tests/fixtures/ is not copied into a version folder: the folder's
``manifest.toml`` names it instead (``"pages/alert.html" = "../../pages/alert_v1.html"`` under
``[files]``, relative to the manifest), and it answers at that version like a file of its own.

Validators are deterministic (a strong ETag from the body, a Last-Modified per path and served
version), so a crawler's conditional GETs get 304s exactly when the body did not change.
Stdlib only; nothing here opens a socket (`tests.support.loopback` serves it).
"""

from __future__ import annotations

import hashlib
import mimetypes
import posixpath
import tomllib
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

DEFAULT_ROBOTS = b"User-agent: *\nAllow: /\n"
#: Last-Modified of a file first served from version K is this + K days (+ a per-path offset).
LAST_MODIFIED_BASE = datetime(2026, 1, 1, tzinfo=UTC)
ETAG_HEX_CHARS = 16
#: A version folder's list of files it serves from elsewhere in tests/fixtures/.
MANIFEST = "manifest.toml"
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
}


class Recorded(NamedTuple):
    """What a path answers at a version: the K whose file answered, status, body, redirect."""

    version: int
    status: int
    body: bytes
    location: str | None
    file: Path | None  # None for built-ins (the default robots.txt) and bodiless status files


def content_type_for(path: str, body: bytes) -> str:
    """Content-Type by extension; ``.xml`` is sniffed so feeds say they are feeds."""
    suffix = posixpath.splitext(path)[1].lower()
    if suffix == ".xml":
        head = body[:1024].lower()
        if b"<rss" in head:
            return "application/rss+xml; charset=utf-8"
        if b"<feed" in head:
            return "application/atom+xml; charset=utf-8"
        return "application/xml; charset=utf-8"
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


def make_etag(body: bytes) -> str:
    """A strong validator: the quoted start of the body's sha256."""
    return '"' + hashlib.sha256(body).hexdigest()[:ETAG_HEX_CHARS] + '"'


def last_modified_for(path: str, version: int) -> datetime:
    """Deterministic per (path, served version): base + K days + a stable per-path offset < 1 day.

    The offset keeps different paths distinguishable while ordering by K is preserved, so a
    file changed in a later version is always "newer" than its previous copy.
    """
    offset_minutes = int(hashlib.sha256(path.encode("utf-8")).hexdigest()[:8], 16) % (24 * 60)
    return LAST_MODIFIED_BASE + timedelta(days=version, minutes=offset_minutes)


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): ``W/`` prefixes are ignored."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.removeprefix("W/") == etag:
            return True
    return False


def not_modified(headers: Message, etag: str, last_modified: datetime) -> bool:
    """True when the client's validators say its copy is current (If-None-Match wins if sent)."""
    inm = headers.get("If-None-Match")
    if inm is not None:
        return _etag_matches(inm, etag)
    ims = headers.get("If-Modified-Since")
    if ims is None:
        return False
    try:
        since = parsedate_to_datetime(ims)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since >= last_modified


class FixtureTree:
    """A fixture folder of recorded versions (``v1/``, ``v2/``, …) and the paths it answers."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"fixture root {self.root} is not a directory")
        #: Read once, up front: a manifest naming a missing file fails here, not mid-crawl.
        self._manifests = {
            k: _read_manifest(self.root / f"v{k}" / MANIFEST) for k in self.versions()
        }

    def versions(self) -> list[int]:
        found = []
        for child in self.root.iterdir():
            name = child.name
            if child.is_dir() and name.startswith("v") and name[1:].isdigit():
                found.append(int(name[1:]))
        return sorted(found)

    def resolve(self, path: str, version: int) -> Recorded | None:
        """What ``path`` answers at ``version``; None means 404."""
        relative = _safe_relative(path)
        if relative is None:
            return None
        robots = self.root / "robots.txt"
        if relative == "robots.txt" and robots.is_file():
            return Recorded(0, 200, robots.read_bytes(), None, robots)
        if relative.endswith(".status") or relative == MANIFEST:
            return None  # status files and manifests steer answers; they are never served
        for k in sorted((v for v in self.versions() if v <= version), reverse=True):
            base = self.root / f"v{k}"
            status_file = base / (relative + ".status")
            file = base / relative
            if not file.is_file():
                file = self.manifest(k).get(relative, file)
            if status_file.is_file():
                status, location = _parse_status(status_file)
                body = file.read_bytes() if file.is_file() else f"{status}\n".encode()
                return Recorded(k, status, body, location, file if file.is_file() else None)
            if file.is_file():
                return Recorded(k, 200, file.read_bytes(), None, file)
        if relative == "robots.txt":
            return Recorded(0, 200, DEFAULT_ROBOTS, None, None)
        return None

    def manifest(self, version: int) -> dict[str, Path]:
        """``v<version>/manifest.toml``: served path → the one file it answers with (else {})."""
        return self._manifests.get(version, {})


def _read_manifest(file: Path) -> dict[str, Path]:
    """The ``[files]`` table of a manifest; every file it names must exist (named if not)."""
    if not file.is_file():
        return {}
    with file.open("rb") as handle:
        entries = tomllib.load(handle).get("files", {})
    files = {}
    for path, target in entries.items():
        resolved = (file.parent / target).resolve()
        if not resolved.is_file():
            raise FileNotFoundError(f"{file}: {path!r} names {target!r}, which does not exist")
        files[_safe_relative(path) or path] = resolved
    return files


def _safe_relative(path: str) -> str | None:
    """The request path as a path under a version directory, or None if it escapes or is empty."""
    decoded = unquote(path)
    if "\x00" in decoded or "\\" in decoded:
        return None
    parts = [p for p in decoded.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    relative = "/".join(parts)
    if decoded.endswith("/"):
        relative += "/index.html"
    return relative


def _parse_status(file: Path) -> tuple[int, str | None]:
    """``410`` or ``301 /new/path`` → (status, location)."""
    words = file.read_text(encoding="utf-8").split()
    if not words or not words[0].isdigit():
        raise ValueError(f"{file}: expected a status code like 410 or '301 /new/path'")
    status = int(words[0])
    HTTPStatus(status)  # reject nonsense early, with the file named in the traceback
    return status, (words[1] if len(words) > 1 else None)
