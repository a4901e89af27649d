from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from syncmaster_ray.db.migrations import VERSION_TABLE
from syncmaster_ray.db.models import Base

engine = create_engine(context.config.attributes["sync_url"], poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
