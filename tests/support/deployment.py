"""Shared steps of the reliability tests: a deployment folder, synthetic bodies, database checks.

Every page and feed here is SYNTHETIC (written for these tests on the fda.gov structure, never FDA
text); each says so in its title.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import zstandard

from tests.support.paths import ROOT

RECIPIENT = "ops@clinic.example"

CONFIG = """\
[crawl]
delay = 0
concurrency_per_host = 16
timeout = {timeout}
retries = 1
obey_robots = false

[scheduler]
jitter = 0

[health]
failure_threshold = {threshold}

[[recipient]]
email = "{recipient}"
"""


def page(
    sentence: str, *, title: str = "Compounded ketamine (SYNTHETIC)", main: bool = True
) -> str:
    """A small fda.gov-like page; `main=False` is the same page after a redesign (no <main>)."""
    region = "main" if main else "div"
    return (
        "<!DOCTYPE html>\n<!-- SYNTHETIC test page, not FDA text -->\n"
        f"<html><head><title>{title}</title></head><body>"
        f"<nav>Home &gt; Drugs</nav><{region}><h1>{title}</h1>"
        f"<p>{sentence}</p><p>Report adverse events to MedWatch.</p></{region}>"
        "<footer>Content current as of: 01/02/2026</footer></body></html>"
    )


def rss(items: Sequence[str], *, prolog: str = "") -> str:
    """A SYNTHETIC RSS 2.0 feed from ready-made <item> elements."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{prolog}'
        '<rss version="2.0"><channel><title>SYNTHETIC FDA alerts</title>'
        "<link>https://www.fda.gov/</link><description>test feed</description>"
        + "".join(items)
        + "</channel></rss>"
    )


def item(
    title: str,
    link: str | None = None,
    *,
    guid: str | None = None,
    permalink: bool = True,
    description: str = "",
    date: str | None = "Mon, 02 Nov 2026 09:00:00 GMT",
) -> str:
    parts = [f"<title>{title}</title>"]
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if description:
        parts.append(f"<description>{description}</description>")
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="{str(permalink).lower()}">{guid}</guid>')
    return "<item>" + "".join(parts) + "</item>"


def write_deployment(
    folder: Path,
    sources: Sequence[tuple[str, str, str]],
    *,
    threshold: int = 3,
    timeout: float = 1,
    extra_source_fields: str = "",
) -> dict[str, str]:
    """sources.toml (one [[source]] per (id, kind, url)) and fdawatch.toml; the FDAWATCH_* env."""
    blocks = [
        f'[[source]]\nid = "{sid}"\nkind = "{kind}"\nurl = "{url}"\n'
        f'title = "{sid} (SYNTHETIC)"\ninterval = "6h"\ntier = "T2"\n{extra_source_fields}'
        for sid, kind, url in sources
    ]
    (folder / "sources.toml").write_text("\n".join(blocks), encoding="utf-8")
    config = folder / "fdawatch.toml"
    config.write_text(
        CONFIG.format(timeout=timeout, threshold=threshold, recipient=RECIPIENT), encoding="utf-8"
    )
    return {
        "FDAWATCH_CONFIG": str(config),
        "FDAWATCH_SOURCES": str(folder / "sources.toml"),
        "FDAWATCH_DATABASE_URL": f"sqlite:///{folder / 'history.db'}",
        "FDAWATCH_VAR_DIR": str(folder / "var"),
        "FDAWATCH_OUTBOX_DIR": str(folder / "outbox"),
    }


def child_env(env: dict[str, str]) -> dict[str, str]:
    """Our environment minus any FDAWATCH_* of the developer's shell, plus the deployment's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FDAWATCH_")}
    return {**base, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def fdawatch(
    env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real `fdawatch` command line (`python -m monitor`), run to its end."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=child_env(env),
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def integrity(db_file: Path) -> str:
    """`PRAGMA integrity_check` of a SQLite file: 'ok' when nothing is corrupt."""
    with sqlite3.connect(db_file) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def db_bytes(db_file: Path) -> bytes:
    """Everything SQLite keeps for the database (the file, its WAL and shared memory), then
    every stored value unpacked where it is packed: raw bodies (`Blob.data`, zlib, zstd or a
    zstd delta of a keyframe) and snapshot texts (zstd) are stored compressed, so a sweep of the
    file bytes alone could never find a secret in them."""
    found = b""
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db_file}{suffix}")
        if path.exists():
            found += path.read_bytes()
    if not db_file.exists():
        return found
    return found + b"".join(value for _, value in stored_values(db_file))


def stored_values(db_file: Path) -> Iterator[tuple[str, bytes]]:
    """(table, value) for every column of every row, unpacked where it is packed: zlib or zstd
    values as their bytes, and every raw body read as the product reads it (a delta through its
    keyframe), so a search sees what a body holds, not how it is stored."""
    with contextlib.closing(sqlite3.connect(db_file)) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        names = [table for (table,) in tables.fetchall()]
        for table in names:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    data = value if isinstance(value, bytes) else str(value).encode()
                    yield table, data + (_unpacked(data) if isinstance(value, bytes) else b"")
        if "blob" in names:
            blobs = [sha for (sha,) in connection.execute("SELECT sha256 FROM blob")]
            for body in _bodies(db_file, blobs) if blobs else []:
                yield "blob", body


def _unpacked(value: bytes) -> bytes:
    with contextlib.suppress(zlib.error):
        return zlib.decompress(value)
    with contextlib.suppress(zstandard.ZstdError):
        return zstandard.ZstdDecompressor().decompress(value)
    return b""


def _bodies(db_file: Path, hashes: Sequence[str]) -> list[bytes]:
    """Every stored body as the product reads it (a delta through its keyframe)."""
    from sqlmodel import Session, create_engine

    from monitor.history.blobs import read_blob

    engine = create_engine(f"sqlite:///{db_file}")
    try:
        with Session(engine) as session:
            return [read_blob(session, sha) for sha in hashes]
    finally:
        engine.dispose()
