"""fdawatch's storage layer: SQLModel tables, the engine and the migrations.

Imports nothing of ours, so every other layer can depend on it.
"""

from __future__ import annotations

from db.engine import make_engine, open_database, upgrade
from db.models import Alert, Blob, Change, CrawlRun, Document, Fetch, Snapshot, Source

__all__ = [
    "Alert",
    "Blob",
    "Change",
    "CrawlRun",
    "Document",
    "Fetch",
    "Snapshot",
    "Source",
    "make_engine",
    "open_database",
    "upgrade",
]
