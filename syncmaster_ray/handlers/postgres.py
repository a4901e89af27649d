"""PostgreSQL, through onETL's ``Postgres`` connection (JDBC).

Writes never leave a half-written target (``staging``): rows go to ``<table>__smr_staging``, which then replaces
the target (or is appended to it and dropped) in one ``DO`` block, so one transaction. Nothing is left behind but
the staging table of a run killed before that block, which the next run drops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from syncmaster_ray.handlers import staging as staged_writes
from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import BasicAuthModel, JDBCHandler
from syncmaster_ray.handlers.staging import StagedWriteMixin, Swap

MAX_IDENTIFIER = 63  # bytes: Postgres truncates longer names


class PostgresConnection(BasicAuthModel):
    host: str
    port: int = Field(default=5432, ge=1, le=65535)
    database_name: str
    additional_params: dict[str, Any] = Field(default_factory=dict)


class PostgresHandler(StagedWriteMixin, JDBCHandler):
    connection_type = "postgres"
    connection_model = PostgresConnection
    dialect = transforms.POSTGRES
    maven_packages = ("org.postgresql:postgresql:42.7.11",)
    max_identifier_length = MAX_IDENTIFIER

    def onetl_connection_class(self) -> type:
        from onetl.connection import Postgres

        return Postgres

    def swap(self, staging: str, columns: Sequence[str], *, target_exists: bool | None = None) -> Swap:
        """One ``DO`` block, so one transaction: the staging table becomes the target, or is appended to it."""
        target, stage = self.quote_table(self.table_name), self.quote_table(staging)
        if self.appends:
            names = self.quoted_columns(columns)
            body = f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage}; DROP TABLE {stage};"
        else:
            bare_name = self.dialect.quote_name(self.table_name.split(".")[-1])
            body = f"DROP TABLE IF EXISTS {target}; ALTER TABLE {stage} RENAME TO {bare_name};"
        return Swap(commit=f"DO $smr$ BEGIN {body} END $smr$")


def staging_table_for(table_name: str) -> str:
    """``schema.table`` -> ``schema.table__smr_staging``, within Postgres' 63-byte names."""
    return staged_writes.staging_table_for(table_name, MAX_IDENTIFIER)
