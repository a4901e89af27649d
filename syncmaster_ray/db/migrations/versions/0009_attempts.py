"""Attempts: the current attempt of a run, the failed ones before it, and whether its write may be repeated.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("syncmaster_ray_run", sa.Column("attempt", sa.Integer(), nullable=True))
    op.add_column("syncmaster_ray_run", sa.Column("attempts", sa.JSON(), nullable=True))
    op.add_column("syncmaster_ray_run", sa.Column("repeatable", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column("syncmaster_ray_run", "repeatable")
    op.drop_column("syncmaster_ray_run", "attempts")
    op.drop_column("syncmaster_ray_run", "attempt")
