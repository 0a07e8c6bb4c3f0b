"""Back-scans and re-uploads: the upload's screened text, kept; weight fingerprints.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 12:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("upload", schema=None) as batch_op:
        batch_op.add_column(sa.Column("screen_fields", sa.JSON(), nullable=True))
    op.create_table(
        "fingerprint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("upload_pk", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("modules_key", sa.String(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_pk"],
            ["upload.id"],
            name=op.f("fk_fingerprint_upload_pk_upload"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fingerprint")),
        sa.UniqueConstraint("upload_pk", "filename", name=op.f("uq_fingerprint_upload_pk_filename")),
    )
    op.create_index(
        op.f("ix_fingerprint_modules_key"), "fingerprint", ["modules_key"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_fingerprint_modules_key"), table_name="fingerprint")
    op.drop_table("fingerprint")
    with op.batch_alter_table("upload", schema=None) as batch_op:
        batch_op.drop_column("screen_fields")
