"""Postgres -> Postgres without rows passing through Spark: ``COPY ... TO STDOUT`` piped into ``COPY ... FROM STDIN``.

The rows are exactly those onETL's reader would read: the source connection is onETL's ``Postgres`` itself
(``copy_source_connection_class``), which builds its JDBC DataFrame as always (so the schema, the filters, the
increment's window and the HWM are onETL's) and also notes, on that DataFrame, the same ``SELECT`` as ``COPY``
statements, one per partition. When the DataFrame reaches a Postgres target unchanged (no SQL transformation,
every source column of a type below) and the target writes with ``COPY`` too, each Spark task pipes its partition
from one connection to the other, in Postgres' text format, in one target transaction. Spark still schedules the
tasks on the run's executors; it only stops decoding and encoding each value.

Values keep their text form end to end, read in a session set to ``PIPE_SESSION`` (UTC, ISO dates, exact floats)
and parsed by the staging table, whose columns the JDBC writer created from onETL's schema: every pipeable source
type parses back into that column type as the same value. A source column of any other type (``time``, arrays,
``bytea``, ``interval``, ``json``...) keeps the Spark path.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from syncmaster_ray.errors import SourceError

if TYPE_CHECKING:
    from psycopg.sql import Composed
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

# Source column types (``pg_type`` OIDs) whose text form the staging column parses back as the same value:
# bool, int2, int4, int8, float4, float8, numeric, text, bpchar, varchar, date, timestamp, timestamptz. A numeric
# also needs a precision Spark's decimals hold (or none: Spark's decimal(38,18) and Postgres' numeric(38,18) round
# and overflow alike).
PIPEABLE_TYPE_OIDS = frozenset({16, 21, 23, 20, 700, 701, 1700, 25, 1042, 1043, 1082, 1114, 1184})
NUMERIC_OID = 1700
MAX_SPARK_DECIMAL_PRECISION = 38
# Both sessions of a pipe: timestamps as UTC (the JDBC path's reading of them), ISO dates, and floats printed
# exactly (what pgJDBC sets for itself).
PIPE_SESSION = ("SET TimeZone = 'UTC'", "SET DateStyle = 'ISO, YMD'", "SET extra_float_digits = 3")
# libpq's environment variable of each connection parameter we pass (``pg_copy.LIBPQ_PARAMS`` and the basics).
LIBPQ_ENVIRONMENT = {
    "host": "PGHOST", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER", "password": "PGPASSWORD",
    "passfile": "PGPASSFILE", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME", "options": "PGOPTIONS",
}
# Rows move from the reader to the writer in blocks of about this size.
BLOCK_BYTES = 1 << 20
# Where the source DataFrame keeps its ``CopySource`` (an attribute: any transformation returns a new DataFrame
# without it, so only an untouched read can be piped).
COPY_SOURCE_ATTRIBUTE = "_syncmaster_copy_source"


@dataclass(frozen=True)
class CopySource:
    """How to read a source DataFrame's rows with ``COPY``: libpq parameters and one ``SELECT`` per partition."""

    conninfo: dict[str, Any]
    queries: tuple[str, ...]

    @cached_property
    def pipeable(self) -> bool:
        """Whether every column has a type the pipe carries unchanged: asked of the source database once, and only
        by a target that would pipe (a read into any other target opens no extra connection)."""
        return pipeable(self.conninfo, self.queries[0])


def partition_queries(dialect: Any, source: str, *, columns: list[str] | None, where: list[str], hint: str | None,
                      limit: int | None, partition_column: str | None, num_partitions: int) -> tuple[str, ...]:
    """The ``SELECT`` of each partition, built by onETL's dialect as its JDBC read builds it.

    Partitions split the rows by the hash of ``partition_column`` (onETL's hash mode, NULLs in the first), whatever
    mode the JDBC read was given: the rows are the same, only their spread differs. ``limit`` needs one partition.
    """
    if not partition_column or num_partitions < 2 or limit is not None:
        return (dialect.get_sql_query(table=source, columns=columns, where=where or None, hint=hint, limit=limit),)
    bucket = dialect.get_partition_column_hash(partition_column, num_partitions)
    queries = []
    for index in range(num_partitions):
        condition = f"{bucket} = {index}"
        if index == 0:
            condition = f"{condition} OR ({partition_column}) IS NULL"
        queries.append(dialect.get_sql_query(table=source, columns=columns, where=[*where, condition], hint=hint))
    return tuple(queries)


def unpipeable_columns(conninfo: dict[str, Any], query: str) -> list[str] | None:
    """Columns of ``query`` of a type the pipe cannot carry unchanged; None when it returns no column.

    The types come from planning ``query`` with ``LIMIT 0``: no row is read.
    """
    import psycopg

    with psycopg.connect(**conninfo) as connection:  # ``query`` is onETL's, as its JDBC read runs it
        cursor = connection.execute(f"SELECT * FROM ({query}) AS smr_columns LIMIT 0")
        columns = list(cursor.description or ())
    if not columns:
        return None
    return [column.name for column in columns if column.type_code not in PIPEABLE_TYPE_OIDS
            or (column.type_code == NUMERIC_OID and (column.precision or 0) > MAX_SPARK_DECIMAL_PRECISION)]


def pipeable(conninfo: dict[str, Any], query: str) -> bool:
    """Whether every column of ``query`` has a type the pipe carries unchanged (logged when not)."""
    others = unpipeable_columns(conninfo, query)
    if others:
        log.info("Reading through Spark: COPY does not carry the types of source columns %s", others)
    return others == []


def mark(df: DataFrame, source: CopySource) -> DataFrame:
    setattr(df, COPY_SOURCE_ATTRIBUTE, source)
    return df


def carry(source_df: DataFrame, renamed: DataFrame) -> DataFrame:
    """``renamed`` (``source_df`` with other column names, the same rows) marked as ``source_df`` is, if it is."""
    source = getattr(source_df, COPY_SOURCE_ATTRIBUTE, None)
    return mark(renamed, source) if source is not None else renamed


def source_of(df: DataFrame) -> CopySource | None:
    """The ``CopySource`` of a DataFrame that is still exactly what the source read and whose every column the
    pipe carries (None otherwise)."""
    source = getattr(df, COPY_SOURCE_ATTRIBUTE, None)
    return source if source is not None and source.pipeable else None


def copy_out_sql(query: str) -> str:
    return f"COPY ({query}) TO STDOUT"  # ``query``: onETL's, as its JDBC read runs it


def copy_in_statement(table: str, columns: Sequence[str]) -> Composed:
    from psycopg import sql

    return sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
        table=sql.SQL(table), columns=sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    )


def pipe_partition(source_conninfo: dict[str, Any], query: str, target_conninfo: dict[str, Any],
                   copy_in: Composed) -> tuple[int, int, str]:
    """Copy one partition's rows into the target in one transaction; returns the rows read and written, and the
    reader (``psql`` or ``psycopg``).

    The transaction commits only once the whole partition was read: a task Spark retries never adds rows twice.
    """
    import psycopg

    psql = shutil.which("psql")
    with psycopg.connect(**target_conninfo) as writer:
        _set_pipe_session(writer)
        with writer.cursor() as cursor:
            with cursor.copy(copy_in) as into:
                if psql is None:
                    rows_read = _copy_out_with_psycopg(source_conninfo, query, into.write)
                else:
                    rows_read = _copy_out_with_psql(psql, source_conninfo, query, into.write)
            rows_written = cursor.rowcount
    return rows_read, rows_written, "psycopg" if psql is None else "psql"


def _set_pipe_session(connection: Any) -> None:
    for setting in PIPE_SESSION:
        connection.execute(setting)


def libpq_environment(conninfo: dict[str, Any]) -> dict[str, str]:
    """``psql``'s whole environment: the connection as libpq variables, and nothing of the node's own libpq
    settings (no password file, service file or defaults of the node's user)."""
    env = {LIBPQ_ENVIRONMENT[key]: str(value) for key, value in conninfo.items()}
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGPASSFILE": os.devnull,
            "PGSERVICEFILE": os.devnull, "PGSYSCONFDIR": os.devnull, "PGCLIENTENCODING": "UTF8", **env}


def psql_command(psql: str, query: str) -> list[str]:
    """``psql`` reading ``query`` to its stdout; the connection (and its password) is all in its environment.

    ``-c`` strings go to the server as they are: psql runs no backslash command found in them.
    """
    return [psql, "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1",
            *(argument for setting in PIPE_SESSION for argument in ("-c", setting)), "-c", copy_out_sql(query)]


def _copy_out_with_psql(psql: str, conninfo: dict[str, Any], query: str, write: Callable[[bytes], Any]) -> int:
    """Pass ``query``'s rows, in Postgres' text format, to ``write`` in blocks; returns how many rows.

    psql is C: about a tenth of the CPU of psycopg's row-by-row reads (``_copy_out_with_psycopg``, used without it).
    """
    rows = 0
    with subprocess.Popen(psql_command(psql, query), env=libpq_environment(conninfo), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        while block := process.stdout.read(BLOCK_BYTES):
            rows += block.count(b"\n")  # the text format escapes newlines within values
            write(block)
        error = process.stderr.read().decode(errors="replace").strip()
    if process.returncode != 0:
        raise SourceError(f"reading the source with COPY failed: {error or f'psql exited {process.returncode}'}")
    return rows


def _copy_out_with_psycopg(conninfo: dict[str, Any], query: str, write: Callable[[bytes], Any]) -> int:
    import psycopg

    rows, buffer = 0, bytearray()
    with psycopg.connect(**conninfo, client_encoding="utf8") as reader:
        _set_pipe_session(reader)
        with reader.cursor() as cursor, cursor.copy(copy_out_sql(query)) as out:
            for row in out:  # libpq hands COPY data over a row at a time
                buffer += row
                rows += 1
                if len(buffer) >= BLOCK_BYTES:
                    write(bytes(buffer))
                    buffer.clear()
    if buffer:
        write(bytes(buffer))
    return rows


PartitionResult = tuple[int, int, str, float]  # rows read, rows written, reader, seconds
# A task's SourceError, as the last line of its Python traceback inside Spark's error on the driver.
_TASK_SOURCE_ERROR = re.compile(rf"^{re.escape(SourceError.__module__)}\.SourceError: (.+)$", re.MULTILINE)


def partition_pipe(source: CopySource, target_conninfo: dict[str, Any],
                   copy_in: Composed) -> Callable[[int], PartitionResult]:
    """The function each Spark task runs on its partition's number."""

    def pipe(index: int) -> PartitionResult:
        started = time.monotonic()
        read, written, reader = pipe_partition(source.conninfo, source.queries[index], target_conninfo, copy_in)
        return read, written, reader, time.monotonic() - started

    return pipe


@dataclass(frozen=True)
class PipeResult:
    """What the pipe did: rows as Postgres counted them, the readers used, the slowest partition's seconds."""

    rows_read: int
    rows_written: int
    readers: tuple[str, ...]
    slowest_partition_seconds: float

    def as_metrics(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "rows_written": self.rows_written,
                "copy_pipe_reader": ",".join(self.readers),
                "copy_pipe_slowest_partition_seconds": round(self.slowest_partition_seconds, 3)}


def pipe_rows(spark: SparkSession, source: CopySource, target_conninfo: dict[str, Any], table: str,
              columns: Sequence[str]) -> PipeResult:
    """Pipe every partition of ``source`` into the existing ``table`` (these columns, in the source's order).

    One Spark task per partition, as a plain RDD job: no row passes through Spark, so there is nothing for its SQL
    planner, code generation or Arrow to do.
    """
    count = len(source.queries)
    pipe = partition_pipe(source, target_conninfo, copy_in_statement(table, columns))
    try:
        partitions = spark.sparkContext.parallelize(range(count), count).map(pipe).collect()
    except Exception as exc:
        # A task's SourceError (the source's COPY failed) reaches here inside Spark's error: blame the source.
        if reading := _TASK_SOURCE_ERROR.findall(str(exc)):
            raise SourceError(reading[-1].strip()) from exc
        raise
    return PipeResult(rows_read=sum(p[0] for p in partitions), rows_written=sum(p[1] for p in partitions),
                      readers=tuple(sorted({p[2] for p in partitions})),
                      slowest_partition_seconds=max((p[3] for p in partitions), default=0.0))


def rows_so_far(target_conninfo: dict[str, Any], table: str) -> int:
    """Rows piped into ``table`` so far: those of its ``COPY`` commands in flight, plus those of committed
    partitions (the table's insert count, which Postgres' statistics take in at each commit)."""
    import psycopg

    with psycopg.connect(**{"connect_timeout": 5, **target_conninfo}) as conn:
        row = conn.execute(
            "SELECT coalesce((SELECT sum(tuples_processed) FROM pg_stat_progress_copy WHERE relid = to_regclass(%s) "
            "AND command = 'COPY FROM'), 0) + coalesce((SELECT n_tup_ins FROM pg_stat_all_tables "
            "WHERE relid = to_regclass(%s)), 0)", (table, table)).fetchone()
    return int(row[0])


def copy_source_connection_class() -> type:
    """onETL's ``Postgres``, whose JDBC reads also note their ``CopySource`` when given libpq parameters."""
    from onetl.connection import Postgres
    from pydantic import PrivateAttr

    class CopySourcePostgres(Postgres):
        _copy_conninfo: dict[str, Any] | None = PrivateAttr(default=None)

        def with_copy_conninfo(self, conninfo: dict[str, Any] | None) -> CopySourcePostgres:
            self._copy_conninfo = conninfo
            return self

        def read_source_as_df(self, *, source: str, columns: list[str] | None = None, hint: str | None = None,
                              where: Any = None, df_schema: Any = None, window: Any = None, limit: int | None = None,
                              options: Any = None) -> DataFrame:
            df = super().read_source_as_df(source=source, columns=columns, hint=hint, where=where,
                                           df_schema=df_schema, window=window, limit=limit, options=options)
            if self._copy_conninfo is None or df_schema is not None or limit == 0:
                return df
            read_options = self.ReadOptions.parse(options)
            queries = partition_queries(
                self.dialect, source, columns=columns, where=self.dialect.apply_window(where, window), hint=hint,
                limit=limit, partition_column=read_options.partition_column,
                num_partitions=read_options.num_partitions or 1,
            )
            return mark(df, CopySource(conninfo=self._copy_conninfo, queries=queries))

    return CopySourcePostgres
