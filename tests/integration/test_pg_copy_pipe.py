"""The Postgres COPY pipe stores exactly what onETL's JDBC reader and writer store, for the rows onETL selects.

Real Spark (local, with our session settings) and a real Postgres. The same ``DBReader`` (filter, hash partitions,
increments) reads through ``CopySourcePostgres``; its DataFrame is written once by onETL's JDBC writer and once
piped with ``COPY``, and the two tables must hold the same rows, compared as text.
"""

from __future__ import annotations

import secrets
import shutil
import urllib.parse

import psycopg
import pytest

from syncmaster_ray.handlers import pg_copy, pg_copy_pipe

pytestmark = pytest.mark.timeout(600)

# Every pipeable type, with the values at its edges (NULLs in row 4; row 6 is filtered out by the tests' WHERE).
SOURCE_DDL = """
    id int PRIMARY KEY, small smallint, big bigint, dbl double precision, flt real, amount numeric(18,4),
    free numeric, name text, code char(5), label varchar(20), flag boolean, day date, ts timestamp,
    tstz timestamptz
"""
SOURCE_ROWS = """
    (1, 1, 1, 0.1, 1.5, 12345678901234.5678, 3.14159265358979323846264338327950288, 'plain', 'ab', 'x', true,
     '2024-02-29', '2024-03-31 01:30:00.123456', '2024-03-31 01:30:00.000001+02'),
    (2, -32768, -9223372036854775808, 'NaN', 'Infinity', -0.0001, -1e-17, '', '', '', false, '0001-01-01',
     '1970-01-01 00:00:00', '1970-01-01 00:00:00+00'),
    (3, 32767, 9223372036854775807, '-Infinity', -0.0, 0, 1e19, E'quote " comma , newline \\n tab \\t back \\\\ x',
     'z    ', 'y', NULL, '9999-12-31', '9999-12-31 23:59:59.999999', '2000-06-30 23:59:59.5-07'),
    (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (5, 0, 0, 1e-300, 3.4e38, 99999999999999.9999, 0, 'строка — ünïcödé ✓ 漢字 🚀', 'é', 'NULL', true, '2000-01-01',
     '2038-01-19 03:14:08', '2038-01-19 03:14:08+00'),
    (6, 7, 7, 1, 1, 1, 1, 'filtered out', 'f', 'f', true, '2000-01-01', '2000-01-01', '2000-01-01 00:00+00')
"""


@pytest.fixture(scope="module")
def spark(local_spark):
    return local_spark


# A server (or role) whose session defaults differ from ours: the pipe must not depend on them.
ODD_SESSION_DEFAULTS = "-c TimeZone=Asia/Kolkata -c DateStyle=SQL,DMY -c extra_float_digits=0"


def _conninfo(db_url: str) -> dict:
    url = urllib.parse.urlsplit(db_url)
    conninfo = pg_copy.libpq_conninfo(url.hostname, url.port or 5432, url.path.lstrip("/"), url.username, "unused",
                                      {"connect_timeout": 10, "options": ODD_SESSION_DEFAULTS})
    assert conninfo is not None
    return conninfo


def _copy_source_postgres(spark, db_url: str):
    url = urllib.parse.urlsplit(db_url)
    connection_class = pg_copy_pipe.copy_source_connection_class()
    connection = connection_class(host=url.hostname, port=url.port or 5432, user=url.username, password="unused",
                                  database=url.path.lstrip("/"), spark=spark)
    return connection.with_copy_conninfo(_conninfo(db_url)).check()


def _execute(db_url: str, *statements: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _rows_only_in(db_url: str, left: str, right: str) -> list:
    with psycopg.connect(db_url) as conn:
        return conn.execute(f"SELECT t::text FROM {left} t EXCEPT ALL SELECT t::text FROM {right} t").fetchall()


def _write_both_ways(spark, db_url: str, df, name: str) -> tuple[str, str, tuple[int, int]]:
    """``df`` written by onETL's JDBC writer and piped with COPY; the two tables and the pipe's row counts."""
    from onetl.db import DBWriter

    source = pg_copy_pipe.source_of(df)
    assert source is not None, "the read was not marked as pipeable"
    connection = _copy_source_postgres(spark, db_url)
    jdbc_table, pipe_table = f"public.{name}_jdbc", f"public.{name}_pipe"
    DBWriter(connection=connection, target=jdbc_table, options={"if_exists": "replace_entire_table"}).run(df)
    DBWriter(connection=connection, target=pipe_table, options={"if_exists": "replace_entire_table"}).run(df.limit(0))
    result = pg_copy_pipe.pipe_rows(spark, source, _conninfo(db_url), pipe_table, df.columns)
    assert result.readers == ("psql",)  # the test machine has it (cluster/setup-dev.sh)
    return jdbc_table, pipe_table, (result.rows_read, result.rows_written)


@pytest.fixture
def source_table(data_db_url):
    table = f"public.pipe_src_{secrets.token_hex(3)}"
    _execute(data_db_url, f"CREATE TABLE {table} ({SOURCE_DDL})", f"INSERT INTO {table} VALUES {SOURCE_ROWS}")
    yield table
    _execute(data_db_url, f"DROP TABLE IF EXISTS {table}")


def test_pipe_stores_what_the_jdbc_path_stores(spark, data_db_url, source_table):
    from onetl.db import DBReader

    reader = DBReader(connection=_copy_source_postgres(spark, data_db_url), source=source_table, where="id <> 6",
                      options={"partition_column": "small", "num_partitions": 3, "partitioning_mode": "range"})
    df = reader.run()
    assert len(pg_copy_pipe.source_of(df).queries) == 3  # one COPY per partition, as the JDBC read has

    jdbc_table, pipe_table, (rows_read, rows_written) = _write_both_ways(spark, data_db_url, df, "pipe_full")

    assert rows_read == rows_written == 5
    assert _rows_only_in(data_db_url, jdbc_table, pipe_table) == []
    assert _rows_only_in(data_db_url, pipe_table, jdbc_table) == []


def test_pipe_reads_only_the_increment(spark, data_db_url, source_table):
    """The second incremental read pipes only the rows past the HWM, as onETL's JDBC read selects them."""
    from etl_entities.hwm_store import MemoryHWMStore
    from onetl.db import DBReader
    from onetl.strategy import IncrementalStrategy

    connection = _copy_source_postgres(spark, data_db_url)
    with MemoryHWMStore():
        name = f"hwm_{secrets.token_hex(3)}"
        hwm = DBReader.AutoDetectHWM(name=name, expression="id")
        with IncrementalStrategy():
            DBReader(connection=connection, source=source_table, hwm=hwm).run()
        _execute(data_db_url, f"INSERT INTO {source_table} (id, name) VALUES (7, 'new'), (8, 'newer')")
        with IncrementalStrategy():
            df = DBReader(connection=connection, source=source_table, hwm=hwm).run()
            jdbc_table, pipe_table, (rows_read, _) = _write_both_ways(spark, data_db_url, df, "pipe_increment")

    assert rows_read == 2
    assert _rows_only_in(data_db_url, jdbc_table, pipe_table) == []
    assert _rows_only_in(data_db_url, pipe_table, jdbc_table) == []


@pytest.mark.parametrize("column", ["at time", "tags text[]", "payload bytea", "doc jsonb", "span interval",
                                    "wide numeric(50, 10)"])
def test_other_source_types_are_not_piped(spark, data_db_url, column):
    from onetl.db import DBReader

    table = f"public.pipe_other_{secrets.token_hex(3)}"
    _execute(data_db_url, f"CREATE TABLE {table} (id int, {column})")
    try:
        df = DBReader(connection=_copy_source_postgres(spark, data_db_url), source=table).run()
        assert pg_copy_pipe.source_of(df) is None
        assert pg_copy_pipe.source_of(df.select("id")) is None  # a transformed DataFrame is never piped
    finally:
        _execute(data_db_url, f"DROP TABLE IF EXISTS {table}")


def test_a_transformed_read_is_not_piped(spark, data_db_url, source_table):
    from onetl.db import DBReader

    df = DBReader(connection=_copy_source_postgres(spark, data_db_url), source=source_table).run()
    assert pg_copy_pipe.source_of(df) is not None
    assert pg_copy_pipe.source_of(df.filter("id > 1")) is None


def test_psql_and_psycopg_read_the_same_bytes(data_db_url, source_table):
    """The two readers of the pipe (psql where installed, else psycopg) hand the writer the same rows."""
    query = f"SELECT * FROM {source_table}"
    blocks: dict[str, list[bytes]] = {"psql": [], "psycopg": []}
    psql = shutil.which("psql")
    assert psql is not None, "the test machine has psql (cluster/setup-dev.sh installs it)"
    rows_psql = pg_copy_pipe._copy_out_with_psql(psql, _conninfo(data_db_url), query, blocks["psql"].append)
    rows_psycopg = pg_copy_pipe._copy_out_with_psycopg(_conninfo(data_db_url), query, blocks["psycopg"].append)

    assert rows_psql == rows_psycopg == 6
    assert b"".join(blocks["psql"]) == b"".join(blocks["psycopg"])


@pytest.mark.parametrize("reader", ["psql", "psycopg"])
def test_a_partition_whose_read_fails_commits_none_of_its_rows(data_db_url, reader, monkeypatch):
    """Rows already passed to the writer are rolled back when the read fails later: a retried task adds none twice."""
    if reader == "psycopg":
        monkeypatch.setattr(pg_copy_pipe.shutil, "which", lambda name: None)
    target = f"public.pipe_fail_{secrets.token_hex(3)}"
    _execute(data_db_url, f"CREATE TABLE {target} (id int, ratio int)")
    # Division by zero at the 200,000th row: several blocks of rows were written before the read fails.
    query = "SELECT g, 10 / (200000 - g) FROM generate_series(1, 300000) AS g"
    try:
        with pytest.raises(Exception, match="division by zero"):
            pg_copy_pipe.pipe_partition(_conninfo(data_db_url), query, _conninfo(data_db_url),
                                        pg_copy_pipe.copy_in_statement(target, ["id", "ratio"]))
        with psycopg.connect(data_db_url) as conn:
            assert conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0] == 0
    finally:
        _execute(data_db_url, f"DROP TABLE IF EXISTS {target}")


def test_reading_asks_the_source_nothing_until_a_target_would_pipe(spark, data_db_url, source_table, monkeypatch):
    """The column-type check (a libpq connection to the source) runs only when a Postgres target asks to pipe:
    a read into any other target costs no extra connection."""
    from onetl.db import DBReader

    asked = []
    monkeypatch.setattr(pg_copy_pipe, "pipeable", lambda conninfo, query: asked.append(query) or True)
    df = DBReader(connection=_copy_source_postgres(spark, data_db_url), source=source_table).run()
    assert asked == []

    assert pg_copy_pipe.source_of(df) is not None
    assert pg_copy_pipe.source_of(df) is not None
    assert len(asked) == 1  # asked once per read, however often a target looks


def test_rows_so_far_counts_the_rows_of_a_copy_in_flight_then_once_committed(data_db_url):
    """The pipe's progress: rows of the COPY commands in flight into the table, then, once a partition commits,
    the table's insert count (never both for one partition)."""
    from tests.fixtures.runs import wait_for

    target = f"public.pipe_progress_{secrets.token_hex(3)}"
    _execute(data_db_url, f"CREATE TABLE {target} (id int)")
    conninfo = _conninfo(data_db_url)
    try:
        assert pg_copy_pipe.rows_so_far(conninfo, target) == 0
        with psycopg.connect(data_db_url) as writer:
            with writer.cursor() as cursor, cursor.copy(f"COPY {target} (id) FROM STDIN") as copy:
                copy.write("".join(f"{n}\n" for n in range(5000)))
                wait_for(lambda: pg_copy_pipe.rows_so_far(conninfo, target) == 5000, 30, "the rows in flight")
            assert pg_copy_pipe.rows_so_far(conninfo, target) in (0, 5000)  # ended, not yet committed
        wait_for(lambda: pg_copy_pipe.rows_so_far(conninfo, target) == 5000, 30, "the committed rows")
    finally:
        _execute(data_db_url, f"DROP TABLE IF EXISTS {target}")


def test_spark_rows_read_counts_what_stages_read_from_its_start(spark, data_db_url, source_table):
    from onetl.db import DBReader

    from syncmaster_ray.job.progress import spark_rows_read

    connection = _copy_source_postgres(spark, data_db_url)
    df = DBReader(connection=connection, source=source_table).run()
    df.count()
    count = spark_rows_read(spark)
    assert count() == 0  # what ran before does not count

    df.collect()

    with psycopg.connect(data_db_url) as conn:
        assert count() == conn.execute(f"SELECT count(*) FROM {source_table}").fetchone()[0] > 0
