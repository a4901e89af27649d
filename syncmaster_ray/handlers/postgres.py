"""PostgreSQL, through onETL's ``Postgres`` connection (JDBC).

Writes never leave a half-written target (``staging``): rows go to ``<table>__smr_staging``, which then replaces
the target (or is appended to it and dropped) in one ``DO`` block, so one transaction. Nothing is left behind but
the staging table of a run killed before that block, which the next run drops. The staging table is filled
with ``COPY`` where every column allows it (``pg_copy``; ``SYNCMASTER__SPARK__POSTGRES_COPY_WRITE``). From a
Postgres source read unchanged, the rows are piped with ``COPY`` from one database to the other, never decoded by
Spark (``pg_copy_pipe``; ``SYNCMASTER__SPARK__POSTGRES_COPY_READ``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from syncmaster_ray.handlers import pg_copy, pg_copy_pipe, transforms
from syncmaster_ray.handlers import staging as staged_writes
from syncmaster_ray.handlers.base import JDBCHandler
from syncmaster_ray.handlers.models import JDBCConnectionModel, port_field
from syncmaster_ray.handlers.staging import StagedWriteMixin, Swap

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

# Postgres truncates names longer than 63 bytes.
DIALECT = transforms.Dialect(quote='"', regexp="~", native_ilike=True, fold_unquoted="lower", max_identifier_length=63)


class PostgresConnection(JDBCConnectionModel):
    port: int = port_field(5432)
    database_name: str


class PostgresHandler(StagedWriteMixin, JDBCHandler[PostgresConnection]):
    connection_type = "postgres"
    onetl_class = "Postgres"
    dialect = DIALECT
    maven_packages = ("org.postgresql:postgresql:42.7.11",)
    # While the COPY pipe runs: the target's own count of rows piped so far (``rows_so_far``).
    _rows_so_far: Callable[[], int] | None = None
    # pgJDBC instantiates the classes these name (socket and SSL factories, callbacks, auth plugins) and opens the
    # files (log file, client keys and certificates): none of it may come from a transfer author.
    refused_params = frozenset({
        "socketfactory", "socketfactoryarg", "sslfactory", "sslfactoryarg", "sslhostnameverifier",
        "sslpasswordcallback", "authenticationpluginclassname", "loggerfile", "sslcert", "sslkey", "sslrootcert",
        "jaasapplicationname", "jaaslogin", "sspiserviceclass", "servicename", "xmlfactoryfactory",
    })

    def make_connection(self, spark: SparkSession) -> Any:
        """As a source with ``COPY`` reads on: onETL's ``Postgres`` that also notes how to ``COPY`` what it reads."""
        if self.role != "source" or not self.context.spark.postgres_copy_read:
            return super().make_connection(spark)
        connection_class = pg_copy_pipe.copy_source_connection_class()
        return connection_class(spark=spark, **self.connection_kwargs()).with_copy_conninfo(self.libpq_conninfo())

    def prepare_for_write(self, df: DataFrame) -> DataFrame:
        """Column names as the target takes them; a source's ``CopySource`` stays (renaming keeps the rows)."""
        return pg_copy_pipe.carry(df, super().prepare_for_write(df))

    def write_staging(self, df: DataFrame, staging: str) -> None:
        conninfo = self.copy_conninfo(df)
        if conninfo is None:
            self.metrics["write_path"] = "jdbc"
            super().write_staging(df, staging)
            return
        super().write_staging(df.limit(0), staging)  # the table, with the JDBC writer's column types
        source = pg_copy_pipe.source_of(df)
        if source is None:
            self.metrics["write_path"] = "copy"
            self.metrics["rows_written"] = pg_copy.copy_rows(df, conninfo, staging)
            return
        self.metrics["write_path"] = "copy_pipe"
        self._rows_so_far = partial(pg_copy_pipe.rows_so_far, conninfo, staging)
        try:
            result = pg_copy_pipe.pipe_rows(df.sparkSession, source, conninfo, staging, df.columns)
        finally:
            self._rows_so_far = None
        self.metrics.update(result.as_metrics())

    def rows_so_far(self) -> int | None:
        return self._rows_so_far() if self._rows_so_far is not None else None

    def estimated_rows(self) -> int | None:
        """Postgres' own estimate (``reltuples``, kept by ``ANALYZE`` and autovacuum) for a whole-table read; None
        when rows are filtered, read incrementally or reshaped by SQL, or the table was never analyzed."""
        if self.where or self.incremental or self.sql_query or self.connection is None:
            return None
        table = self.dialect.literal(self.table_name)
        query = f"SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass({table})"
        rows = self.connection.fetch(query).collect()
        estimate = rows[0][0] if rows else None
        return estimate if estimate is not None and estimate > 0 else None

    def copy_conninfo(self, df: DataFrame) -> dict[str, Any] | None:
        """libpq parameters for the COPY path, or None (with the reason logged) when this write keeps JDBC."""
        if not self.context.spark.postgres_copy_write:
            return None
        if columns := pg_copy.uncopyable_columns(df.schema):
            log.info("Writing with JDBC inserts: COPY does not take the types of columns %s", columns)
            return None
        return self.libpq_conninfo()

    def libpq_conninfo(self) -> dict[str, Any] | None:
        """psycopg's parameters for this connection, or None (logged) when ``additional_params`` are JDBC-only."""
        conn = self.conn
        conninfo = pg_copy.libpq_conninfo(conn.host, conn.port, conn.database_name, conn.user,
                                          conn.password.get_secret_value(), conn.additional_params)
        if conninfo is None:
            log.info("Using JDBC, not COPY: additional_params %s are not all libpq parameters",
                     sorted(conn.additional_params))
        return conninfo

    def swap(self, staging: str, columns: Sequence[str], *, target_exists: bool | None = None) -> Swap:
        """One ``DO`` block, so one transaction: the staging table becomes the target, or is appended to it."""
        target = self.target_sql
        if self.appends:
            names = self.quoted_columns(columns)
            body = f"INSERT INTO {target} ({names}) SELECT {names} FROM {staging}; DROP TABLE {staging};"
        else:
            bare_name = self.dialect.quote_name(self.target_parts[-1])
            body = f"DROP TABLE IF EXISTS {target}; ALTER TABLE {staging} RENAME TO {bare_name};"
        return Swap(commit=f"DO $smr$ BEGIN {body} END $smr$")

    def schema_exists(self) -> bool | None:
        if len(self.target_parts) < 2:
            return None
        query = f"SELECT COUNT(*) FROM pg_namespace WHERE nspname = {self.dialect.literal(self.target_parts[-2])}"
        return bool(self.connection.fetch(query).collect()[0][0])


def staging_table_for(table_name: str) -> str:
    """The staging table of a run writing ``table_name``, as Postgres stores it."""
    return staged_writes.side_table_for(DIALECT, table_name)
