"""Where a running job is (waiting for capacity, transferring), for ``syncmaster-ray status``.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("syncmaster_ray_run", sa.Column("phase", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("syncmaster_ray_run", "phase")
