"""Snapshot texts stored compressed (zstd), read back as the text that was hashed and diffed.

A normalized text is read whole (diffs, alerts, evidence) and never searched in SQL, so it is kept
as a zstd frame: about a third of its size, and ~0.01 ms per text to pack. `PackedText` does it
in the column type, so every ORM and Core read and write sees a `str`. A value that is still text
(a SQLite row written before migration 0007 packed it) is read as it is: a zstd frame starts with
bytes that no UTF-8 text starts with, so the two can never be confused.
"""

from __future__ import annotations

from typing import Any

import zstandard
from sqlalchemy import LargeBinary, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

#: zstd's level for texts: level 3 packs as small as zlib's 6 at a tenth of its time.
TEXT_LEVEL = 3
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def pack_text(text: str) -> bytes:
    """`text` as one zstd frame (its size recorded in the frame)."""
    data = text.encode("utf-8", "surrogatepass")
    return zstandard.ZstdCompressor(level=TEXT_LEVEL).compress(data)


def unpack_text(value: bytes | str) -> str:
    """The text of a packed value; a value stored as plain text (or UTF-8 bytes) as it is."""
    if isinstance(value, str):
        return value
    if value[:4] == ZSTD_MAGIC:
        value = zstandard.ZstdDecompressor().decompress(value)
    return value.decode("utf-8", "surrogatepass")


class PackedText(TypeDecorator[str]):
    """A text column stored as a zstd frame: `bytea` on PostgreSQL; on SQLite the column stays
    declared `TEXT` (SQLite keeps a BLOB value in any column as it is), so migrating an existing
    history rewrites the values in place instead of copying the table."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else pack_text(value)

    def process_result_value(self, value: bytes | str | None, dialect: Dialect) -> str | None:
        return None if value is None else unpack_text(value)
