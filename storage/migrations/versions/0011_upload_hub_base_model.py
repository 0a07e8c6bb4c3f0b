"""Each upload keeps the base model its hub names (Civitai ``baseModel``, Hugging Face's
``base_model``), so the probe can draw an SDXL derivative (Pony, Illustrious, NoobAI) on its
own base (#21): ``upload.hub_base_model``, NULL where the hub names none or before this.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("upload") as batch:
        batch.add_column(sa.Column("hub_base_model", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upload") as batch:
        batch.drop_column("hub_base_model")
