"""One SQLAlchemy engine per process, built from settings."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine, create_engine


@lru_cache(maxsize=4)
def get_engine(sync_url: str) -> Engine:
    # pool_pre_ping: the worker lives for days and Postgres restarts must not poison the pool.
    return create_engine(sync_url, pool_pre_ping=True, pool_size=2, max_overflow=4)
