"""Create SyncMaster 0.3.7's tables when absent (standalone use); touch nothing when SyncMaster migrated the DB.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from syncmaster_ray.db.models import SYNCMASTER_TABLES, Base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Recorded in our own table: a downgrade must only drop what this migration created.
MARKER_TABLE = "syncmaster_ray_owned_tables"


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    missing = [name for name in SYNCMASTER_TABLES if name not in existing]
    if missing and len(missing) != len(SYNCMASTER_TABLES):
        raise RuntimeError(
            f"the database has some of SyncMaster's tables but not {missing}: run SyncMaster's own migrations "
            "(python -m syncmaster.db.migrations upgrade head) instead of creating a partial schema",
        )
    marker = op.create_table(MARKER_TABLE, sa.Column("table_name", sa.String(64), primary_key=True))
    if not missing:
        return
    tables = [Base.metadata.tables[name] for name in SYNCMASTER_TABLES]
    Base.metadata.create_all(bind, tables=tables, checkfirst=True)
    op.bulk_insert(marker, [{"table_name": name} for name in SYNCMASTER_TABLES])


def downgrade() -> None:
    bind = op.get_bind()
    owned = list(bind.execute(sa.select(sa.column("table_name", sa.String)).select_from(sa.table(MARKER_TABLE)))
                 .scalars())
    tables = [Base.metadata.tables[name] for name in SYNCMASTER_TABLES if name in owned]
    Base.metadata.drop_all(bind, tables=tables, checkfirst=True)
    op.drop_table(MARKER_TABLE)
