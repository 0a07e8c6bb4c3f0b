"""Hub history searches (resumable per artist, hub and query), takedown checks of uploads on
their hubs, and the date a finding's upload was taken down.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_search",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("artist_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("query", sa.String(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("listed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["artist_id"],
            ["artist.id"],
            name=op.f("fk_hub_search_artist_id_artist"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_search")),
        sa.UniqueConstraint(
            "artist_id", "source", "query", name=op.f("uq_hub_search_artist_id_source_query")
        ),
    )
    op.create_table(
        "hub_check",
        sa.Column("upload_pk", sa.Integer(), nullable=False),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["upload_pk"],
            ["upload.id"],
            name=op.f("fk_hub_check_upload_pk_upload"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_pk", name=op.f("pk_hub_check")),
    )
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.add_column(sa.Column("taken_down_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.drop_column("taken_down_at")
    op.drop_table("hub_check")
    op.drop_table("hub_search")
