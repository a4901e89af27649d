"""PostgreSQL, through onETL's ``Postgres`` connection (JDBC).

Writes never leave a half-written target: rows go to a staging table next to the target, which then replaces the
target (or is appended to it) in one transaction. A failure or stop at any point leaves the target as it was.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import BasicAuthModel, JDBCHandler

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)
STAGING_SUFFIX = "__smr_staging"
MAX_IDENTIFIER = 63  # Postgres truncates longer names


class PostgresConnection(BasicAuthModel):
    host: str
    port: int = Field(default=5432, ge=1, le=65535)
    database_name: str
    additional_params: dict[str, Any] = Field(default_factory=dict)


class PostgresHandler(JDBCHandler):
    connection_type = "postgres"
    connection_model = PostgresConnection
    dialect = transforms.POSTGRES
    maven_packages = ("org.postgresql:postgresql:42.7.11",)

    def onetl_connection_class(self) -> type:
        from onetl.connection import Postgres

        return Postgres


    def write(self, df: DataFrame) -> None:
        from onetl.db import DBWriter

        df = self.prepare_for_write(df)
        staging = staging_table_for(self.table_name)
        # A staging table left by an earlier run that was stopped hard (its actor killed mid-write) goes first.
        self.connection.execute(f"DROP TABLE IF EXISTS {self.quote_table(staging)}")
        try:
            DBWriter(connection=self.connection, target=staging,
                     options={"if_exists": "replace_entire_table"}).run(df)
            self.connection.execute(self.swap_statement(staging, df.columns))
        except BaseException:
            self._drop_quietly(staging)
            raise

    def swap_statement(self, staging: str, columns: Sequence[str]) -> str:
        """One statement, so one transaction: the staging table becomes the target, or is appended to it."""
        target, stage = self.quote_table(self.table_name), self.quote_table(staging)
        if self.appends:
            names = ", ".join(self.dialect.quote_name(column) for column in columns)
            body = f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage}; DROP TABLE {stage};"
        else:
            bare_name = self.dialect.quote_name(self.table_name.split(".")[-1])
            body = f"DROP TABLE IF EXISTS {target}; ALTER TABLE {stage} RENAME TO {bare_name};"
        return f"DO $smr$ BEGIN {body} END $smr$"

    def quote_table(self, name: str) -> str:
        return ".".join(self.dialect.quote_name(part) for part in name.split("."))

    def _drop_quietly(self, staging: str) -> None:
        try:
            self.connection.execute(f"DROP TABLE IF EXISTS {self.quote_table(staging)}")
        except Exception:
            log.warning("Could not drop the staging table %s", staging, exc_info=True)


def staging_table_for(table_name: str) -> str:
    """``schema.table`` -> ``schema.table__smr_staging``, shortened with a hash to Postgres' 63-byte names."""
    schema, _, table = table_name.rpartition(".")
    name = f"{table}{STAGING_SUFFIX}"
    if len(name.encode()) > MAX_IDENTIFIER:
        digest = hashlib.sha256(table.encode()).hexdigest()[:8]
        name = f"{table.encode()[:MAX_IDENTIFIER - len(STAGING_SUFFIX) - 9].decode(errors='ignore')}_{digest}"
        name += STAGING_SUFFIX
    return f"{schema}.{name}" if schema else name
