"""How a raw body is packed in the blob table: zstd, and a new version as a delta of an old one.

A watched page changes a sentence at a time, and every version's body is kept as evidence. Packed
alone, each version costs the whole page again (~16 KB for a 100 KB fda.gov page); packed with
the document's previous body as a zstd dictionary, an edit costs what it changed (~1 KB). A delta
always refers to a *keyframe* (a body packed alone), never to another delta, so reading any body
needs at most one other blob. A delta that would not save at least half is stored alone instead
(a page rewritten from top to bottom, a PDF, whose streams are compressed already).

Codecs: `zlib` (every blob stored before migration 0007), `zstd` (alone), `zstd-delta` (its
`base_sha256` names the keyframe). Pure; no database.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import zstandard

ZLIB, ZSTD, DELTA = "zlib", "zstd", "zstd-delta"
#: zstd's level for bodies: on the real fixtures 6 % smaller than zlib's level 6 (the bench's
#: random-word pages: 2 % larger), in about half its time (bench/README.md, fifth round).
BODY_LEVEL = 6
#: A delta is kept only when it is at most this share of the keyframe's packed size.
DELTA_MAX_SHARE = 0.5
#: Bodies that never delta well (already compressed inside).
_NO_DELTA_PREFIXES = (b"%PDF", b"PK\x03\x04", b"\x1f\x8b")


@dataclass(frozen=True)
class Packed:
    """A body as stored: its codec, its bytes, and the keyframe a delta refers to."""

    codec: str
    data: bytes
    base_sha256: str | None = None


@dataclass(frozen=True)
class Keyframe:
    """A stored body packed alone, that a new version may be packed against."""

    sha256: str
    raw: bytes
    packed_size: int


def pack(body: bytes, keyframe: Keyframe | None = None) -> Packed:
    """`body` packed against `keyframe` when that saves at least half, else alone."""
    if keyframe is not None and not body.startswith(_NO_DELTA_PREFIXES):
        dictionary = zstandard.ZstdCompressionDict(
            keyframe.raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT
        )
        delta = zstandard.ZstdCompressor(level=BODY_LEVEL, dict_data=dictionary).compress(body)
        if len(delta) <= keyframe.packed_size * DELTA_MAX_SHARE:
            return Packed(DELTA, delta, keyframe.sha256)
    return Packed(ZSTD, zstandard.ZstdCompressor(level=BODY_LEVEL).compress(body))


def unpack(codec: str, data: bytes, keyframe_raw: bytes | None = None) -> bytes:
    """The raw body of a stored blob; a delta needs its keyframe's raw body."""
    if codec == ZLIB:
        return zlib.decompress(data)
    if codec == ZSTD:
        return zstandard.ZstdDecompressor().decompress(data)
    if codec == DELTA:
        if keyframe_raw is None:
            raise ValueError("a zstd-delta blob needs its keyframe's raw body")
        dictionary = zstandard.ZstdCompressionDict(
            keyframe_raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT
        )
        return zstandard.ZstdDecompressor(dict_data=dictionary).decompress(data)
    raise ValueError(f"unknown blob codec {codec!r}")


def is_keyframe(codec: str) -> bool:
    return codec != DELTA
