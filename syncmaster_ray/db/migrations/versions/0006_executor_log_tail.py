"""The end of each Spark executor's log, kept with the run (``run logs`` shows it beside the job's).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("syncmaster_ray_run", sa.Column("executor_log_tail", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("syncmaster_ray_run", "executor_log_tail")
