"""Our Postgres HWM store round-trips onETL's HWM types through the real session database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from etl_entities.hwm import ColumnDateTimeHWM, ColumnIntHWM, FileListHWM, FileModifiedTimeHWM

pytestmark = [pytest.mark.integration]


@pytest.fixture
def store(app_env):
    from syncmaster_ray.db.hwm_store import PostgresHWMStore
    from syncmaster_ray.settings import get_settings

    return PostgresHWMStore(sync_url=get_settings().database.sync_url)


@pytest.mark.parametrize(
    "hwm",
    [
        ColumnIntHWM(name="7_postgres_public.orders", expression='"id"', value=42),
        ColumnDateTimeHWM(name="8_postgres_public.events", expression='"ts"',
                          value=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        FileListHWM(name="9_sftp_/data", directory="/data", value=["/data/a.csv", "/data/b.csv"]),
        FileModifiedTimeHWM(name="10_ftp_/in", directory="/in", value=datetime(2026, 5, 6, tzinfo=UTC)),
    ],
    ids=["int", "datetime", "file-list", "file-mtime"],
)
def test_store_round_trips_each_hwm_type_and_updates_in_place(store, hwm):
    assert store.get_hwm(hwm.name) is None
    store.set_hwm(hwm)
    assert store.get_hwm(hwm.name) == hwm

    reset = hwm.model_copy(deep=True).reset()
    store.set_hwm(reset)
    assert store.get_hwm(hwm.name) == reset
    store.delete_hwm(hwm.name)
    assert store.get_hwm(hwm.name) is None


def test_store_is_usable_as_onetl_current_store(store):
    from etl_entities.hwm_store import HWMStoreStackManager

    with store:
        assert HWMStoreStackManager.get_current() is store
