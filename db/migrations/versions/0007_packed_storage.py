"""packed storage: zstd snapshot texts; blob codecs and delta bases

Snapshot texts become zstd frames (`db.packed.PackedText`: a bytea column on PostgreSQL, the
same TEXT column on SQLite) and every stored text is packed here, in batches. Blobs gain
`codec` (every existing one is `zlib`) and `base_sha256` (the keyframe of a `zstd-delta` body);
the existing bodies are left as they are. `ix_snapshot_doc` goes: the unique index on
(source_id, doc_key, sha256) serves the same lookups. Nothing copies a table: on SQLite a copy
would drop the table that snapshots, documents and changes refer to.
Downgrading unpacks the texts and turns every zstd blob back into a zlib one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 19:00:00
"""

from __future__ import annotations

import hashlib
import zlib

import sqlalchemy as sa
import sqlmodel
import zstandard
from alembic import op

from db.packed import pack_text, unpack_text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 500


def upgrade() -> None:
    op.add_column(  # ADD COLUMN in place on both databases
        "blob",
        sa.Column(
            "codec",
            sqlmodel.sql.sqltypes.AutoString(length=12),
            nullable=False,
            server_default="zlib",
        ),
    )
    op.add_column(
        "blob",
        sa.Column("base_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )
    _retype_text(sa.LargeBinary(), "convert_to(text, 'UTF8')")
    _rewrite_texts(pack_text)
    # uq_snapshot_version's index (source_id, doc_key, sha256) serves every lookup this one did
    op.drop_index("ix_snapshot_doc", table_name="snapshot")


def downgrade() -> None:
    op.create_index("ix_snapshot_doc", "snapshot", ["source_id", "doc_key"], unique=False)
    if op.get_bind().dialect.name == "postgresql":  # still a bytea column: write UTF-8 bytes
        _rewrite_texts(lambda value: unpack_text(value).encode("utf-8", "surrogatepass"))
    else:
        _rewrite_texts(unpack_text)
    _retype_text(sa.Text(), "convert_from(text, 'UTF8')")
    connection = op.get_bind()
    blob = sa.table(
        "blob",
        sa.column("sha256", sa.String),
        sa.column("data", sa.LargeBinary),
        sa.column("codec", sa.String),
        sa.column("base_sha256", sa.String),
    )
    rows = connection.execute(sa.select(blob).where(blob.c.codec != "zlib")).all()
    raw: dict[str, bytes] = {}
    for row in sorted(rows, key=lambda r: r.codec == "zstd-delta"):  # keyframes first
        if row.codec == "zstd-delta":
            base = raw.get(row.base_sha256) or _zlib_raw(connection, blob, row.base_sha256)
            dictionary = zstandard.ZstdCompressionDict(
                base, dict_type=zstandard.DICT_TYPE_RAWCONTENT
            )
            data = zstandard.ZstdDecompressor(dict_data=dictionary).decompress(row.data)
        else:
            data = zstandard.ZstdDecompressor().decompress(row.data)
        assert hashlib.sha256(data).hexdigest() == row.sha256, row.sha256
        raw[row.sha256] = data
    for sha, data in raw.items():
        connection.execute(
            blob.update().where(blob.c.sha256 == sha).values(data=zlib.compress(data, 6))
        )
    for name in ("base_sha256", "codec"):  # SQLite 3.35+ drops a column in place
        op.execute(f"ALTER TABLE blob DROP COLUMN {name}")


def _zlib_raw(connection: sa.Connection, blob: sa.TableClause, sha: str) -> bytes:
    data = connection.execute(sa.select(blob.c.data).where(blob.c.sha256 == sha)).scalar_one()
    return zlib.decompress(data)


def _retype_text(to: sa.types.TypeEngine, using: str) -> None:
    """PostgreSQL converts text and bytes in place. SQLite's column stays declared TEXT (see
    `db.packed.PackedText`): it keeps each value as it is, so nothing is copied."""
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("snapshot", "text", type_=to, postgresql_using=using)


def _rewrite_texts(convert) -> None:  # type: ignore[no-untyped-def]
    """Every snapshot's text through `convert`, BATCH rows at a time, in id order."""
    connection = op.get_bind()
    snapshot = sa.table("snapshot", sa.column("id", sa.Integer), sa.column("text"))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(snapshot.c.id, snapshot.c.text)
            .where(snapshot.c.id > last)
            .order_by(snapshot.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for snapshot_id, value in rows:
            if isinstance(value, (bytes, memoryview)):
                value = unpack_text(bytes(value))  # PostgreSQL's bytea, or a text packed before
            connection.execute(
                snapshot.update()
                .where(snapshot.c.id == snapshot_id)
                .values(text=convert(value))
            )
        last = rows[-1][0]
