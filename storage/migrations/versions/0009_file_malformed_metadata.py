"""Why each file's metadata is malformed (non-string values, nested JSON over the caps or
broken), so uploads with metadata no trainer writes are shown and counted as such.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_file") as batch:
        batch.add_column(sa.Column("malformed", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_file") as batch:
        batch.drop_column("malformed")
