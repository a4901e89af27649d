"""The capacity queue: the cluster a run waits for, what it asks for and its job's heartbeat (job/capacity_queue.py).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("syncmaster_ray_run", sa.Column("capacity_cluster", sa.String(256), nullable=True))
    op.add_column("syncmaster_ray_run", sa.Column("capacity_asked", sa.JSON(), nullable=True))
    op.add_column("syncmaster_ray_run", sa.Column("capacity_heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    # Every waiting job reads its cluster's queue every second: only the few waiting rows are indexed.
    op.create_index("ix_syncmaster_ray_run_capacity_queue", "syncmaster_ray_run", ["capacity_cluster"],
                    postgresql_where=sa.text("phase = 'waiting_for_capacity'"))


def downgrade() -> None:
    op.drop_index("ix_syncmaster_ray_run_capacity_queue", table_name="syncmaster_ray_run")
    op.drop_column("syncmaster_ray_run", "capacity_heartbeat_at")
    op.drop_column("syncmaster_ray_run", "capacity_asked")
    op.drop_column("syncmaster_ray_run", "capacity_cluster")
