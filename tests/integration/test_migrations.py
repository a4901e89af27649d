"""``syncmaster-ray db upgrade``: standalone it builds SyncMaster 0.3.7's schema; beside it, it adds only ours."""

from __future__ import annotations

import psycopg
import pytest

from syncmaster_ray.db.migrations import downgrade, upgrade
from syncmaster_ray.db.models import SYNCMASTER_TABLES
from syncmaster_ray.settings import to_psycopg_url
from tests.fixtures.services import PG_ADMIN_URL
from tests.fixtures.syncmaster_server import syncmaster_migrate, temporary_database

pytestmark = [pytest.mark.integration]

COLUMNS = """
SELECT table_name, column_name, data_type, udt_name, is_nullable, character_maximum_length, column_default,
       is_generated, regexp_replace(coalesce(generation_expression, ''), '\\s+', ' ', 'g')
FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ANY(%(tables)s)
ORDER BY table_name, column_name
"""
CONSTRAINTS = """
SELECT rel.relname, con.conname, con.contype, pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
WHERE rel.relname = ANY(%(tables)s) ORDER BY 1, 2
"""
INDEXES = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%(tables)s) ORDER BY 1, 2"
TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"


def snapshot(db_url: str, tables: list[str]) -> dict[str, list[tuple]]:
    with psycopg.connect(db_url) as conn:
        return {
            name: conn.execute(query, {"tables": tables}).fetchall()
            for name, query in (("columns", COLUMNS), ("constraints", CONSTRAINTS), ("indexes", INDEXES))
        }


def tables_of(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return [row[0] for row in conn.execute(TABLES)]


@pytest.fixture(scope="module")
def syncmaster_migrated_db():
    with temporary_database(PG_ADMIN_URL, prefix="smr_mig_sm") as url:
        syncmaster_migrate(url)
        yield url


def test_upgrade_beside_syncmaster_touches_nothing_of_syncmaster(syncmaster_migrated_db):
    tables = tables_of(syncmaster_migrated_db)
    before = snapshot(syncmaster_migrated_db, tables)

    upgrade(to_psycopg_url(syncmaster_migrated_db))
    upgrade(to_psycopg_url(syncmaster_migrated_db))  # idempotent

    assert snapshot(syncmaster_migrated_db, tables) == before
    assert set(tables_of(syncmaster_migrated_db)) - set(tables) == {
        "syncmaster_ray_run", "syncmaster_ray_hwm", "syncmaster_ray_alembic_version", "syncmaster_ray_owned_tables"
    }
    downgrade(to_psycopg_url(syncmaster_migrated_db), "base")
    assert tables_of(syncmaster_migrated_db) == sorted([*tables, "syncmaster_ray_alembic_version"])
    assert snapshot(syncmaster_migrated_db, tables) == before


def test_standalone_upgrade_builds_syncmaster_schema_byte_compatibly(syncmaster_migrated_db):
    with temporary_database(PG_ADMIN_URL, prefix="smr_mig_own") as url:
        upgrade(to_psycopg_url(url))
        ours = snapshot(url, list(SYNCMASTER_TABLES))
        theirs = snapshot(syncmaster_migrated_db, list(SYNCMASTER_TABLES))
        assert ours["columns"] == theirs["columns"]
        assert ours["constraints"] == theirs["constraints"]
        assert ours["indexes"] == theirs["indexes"]

        downgrade(to_psycopg_url(url), "base")
        assert tables_of(url) == ["syncmaster_ray_alembic_version"]


def test_partial_syncmaster_schema_is_refused():
    with temporary_database(PG_ADMIN_URL, prefix="smr_mig_part") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute('CREATE TABLE "run" (id bigint primary key)')
        with pytest.raises(RuntimeError, match="run SyncMaster's own migrations"):
            upgrade(to_psycopg_url(url))
