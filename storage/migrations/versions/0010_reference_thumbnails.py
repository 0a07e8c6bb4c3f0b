"""Each reference image remembers the thumbnail made when it was taken, so the web UI never
decodes a big image to show it (#20): ``reference_image.thumb_sha256``, a blob key.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 06:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reference_image") as batch:
        batch.add_column(sa.Column("thumb_sha256", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reference_image") as batch:
        batch.drop_column("thumb_sha256")
