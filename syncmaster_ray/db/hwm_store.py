"""``PostgresHWMStore``: onETL/etl-entities HWM store backed by our table in SyncMaster's database.

SyncMaster 0.3.7 only knows Horizon, and crashes on incremental transfers without it; this store makes them work
with nothing but the database the worker already has. It runs inside the Ray job (the transfer actor).
"""

from __future__ import annotations

from typing import Any

from etl_entities.hwm import HWM
from etl_entities.hwm.hwm_type_registry import HWMTypeRegistry
from etl_entities.hwm_store import BaseHWMStore, register_hwm_store_class
from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from syncmaster_ray.db.engine import get_engine
from syncmaster_ray.db.models import HWMRecord


@register_hwm_store_class("syncmaster_ray_postgres")
class PostgresHWMStore(BaseHWMStore):
    sync_url: SecretStr

    def _session(self) -> Session:
        return Session(get_engine(self.sync_url.get_secret_value()))

    def get_hwm(self, name: str) -> HWM | None:
        with self._session() as session:
            value = session.scalar(select(HWMRecord.value).where(HWMRecord.name == name))
        return HWMTypeRegistry.parse(value) if value is not None else None

    def set_hwm(self, hwm: HWM) -> Any:
        value = hwm.serialize()
        statement = insert(HWMRecord).values(name=hwm.name, value=value)
        statement = statement.on_conflict_do_update(index_elements=[HWMRecord.name], set_={"value": value})
        with self._session() as session, session.begin():
            session.execute(statement)

    def delete_hwm(self, name: str) -> None:
        with self._session() as session, session.begin():
            session.execute(delete(HWMRecord).where(HWMRecord.name == name))
