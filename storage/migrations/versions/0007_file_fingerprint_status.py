"""Whether each file's weight fingerprint was read: ``read``, ``known`` (linked by the hub's
hash, nothing read), or ``not available: <reason>`` (say, over the upload's byte budget).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 19:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_file") as batch:
        batch.add_column(sa.Column("fingerprint", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_file") as batch:
        batch.drop_column("fingerprint")
