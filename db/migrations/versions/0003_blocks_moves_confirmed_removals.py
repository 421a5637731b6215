"""blocks, moves and confirmed removals

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hostbackoff",
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=253), nullable=False),
        sa.Column("refusals", sa.Integer(), nullable=False),
        sa.Column("first_refused_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_refused_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("host"),
    )
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.add_column(sa.Column("moved_to", sa.Text(), nullable=True))
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("missing_checks", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("fetch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("final_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("server", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fetch", schema=None) as batch_op:
        batch_op.drop_column("server")
        batch_op.drop_column("final_url")
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_column("missing_checks")
    with op.batch_alter_table("source", schema=None) as batch_op:
        batch_op.drop_column("moved_to")
    op.drop_table("hostbackoff")
