"""Who supervises a run (a lease renewed by heartbeats) and whether its Ray job was ever submitted.

``supervisor`` and ``supervised_at`` let exactly one worker watch a run, and let any worker take over once the lease
is stale; ``submitted_at`` tells a re-attaching worker that a job the head does not know was lost (never submit it
again: it may have written already) rather than never submitted.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("syncmaster_ray_run", sa.Column("supervisor", sa.String(128), nullable=True))
    op.add_column("syncmaster_ray_run", sa.Column("supervised_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("syncmaster_ray_run", sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("submitted_at", "supervised_at", "supervisor"):
        op.drop_column("syncmaster_ray_run", column)
