"""Alembic migrations of our own, tracked in ``syncmaster_ray_alembic_version`` (never SyncMaster's table)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

VERSION_TABLE = "syncmaster_ray_alembic_version"


def alembic_config(sync_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    # Passed as an attribute, not an ini option: keeps the password out of alembic's logged config.
    config.attributes["sync_url"] = sync_url
    return config


def upgrade(sync_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(sync_url), revision)


def downgrade(sync_url: str, revision: str) -> None:
    command.downgrade(alembic_config(sync_url), revision)


def current(sync_url: str) -> None:
    command.current(alembic_config(sync_url))
