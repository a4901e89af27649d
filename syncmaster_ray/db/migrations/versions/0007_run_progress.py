"""The copy's live progress: rows so far, rows per second, percent and ETA where the source's size is known.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("syncmaster_ray_run", sa.Column("progress", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("syncmaster_ray_run", "progress")
