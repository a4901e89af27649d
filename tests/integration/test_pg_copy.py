"""The Postgres COPY write path stores exactly what the JDBC path stores, edge values included.

Real Spark (local, with our session settings) and a real Postgres: the same DataFrame is written once with
onETL's JDBC writer and once with ``pg_copy``, and the two tables must hold the same rows.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from decimal import Decimal

import psycopg
import pytest

from syncmaster_ray.handlers import pg_copy

pytestmark = pytest.mark.timeout(600)

EDGE_ROWS = [
    (1, 1, 1, 0.1, 1.5, Decimal("12345678901234.5678"), "plain", True, dt.date(2024, 2, 29),
     dt.datetime(2024, 3, 31, 1, 30, 0, 123456), dt.datetime(2024, 3, 31, 1, 30, 0, 1)),
    (2, -32768, -(2**63), float("nan"), float("inf"), Decimal("-0.0001"), "", False, dt.date(1, 1, 1),
     dt.datetime(1970, 1, 1), dt.datetime(1, 1, 1)),
    (3, 32767, 2**63 - 1, float("-inf"), -0.0, Decimal("0"), 'quote " comma , newline \n tab \t back \\ slash',
     None, dt.date(9999, 12, 31), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), None),
    (4, None, None, None, None, None, None, None, None, None, None),
    (5, 0, 0, 1e-300, 3.4e38, Decimal("99999999999999.9999"), "строка — ünïcödé ✓ 漢字 🚀", True,
     dt.date(2000, 1, 1), dt.datetime(2038, 1, 19, 3, 14, 8), dt.datetime(2000, 1, 1, 12)),
    (6, 7, 7, 2.2250738585072014e-308, 1.1754944e-38, Decimal("0.0001"), "NULL", False, dt.date(1582, 10, 4),
     dt.datetime(1900, 1, 1), dt.datetime(1900, 1, 1)),
]
SCHEMA = ("id int, small short, big long, dbl double, flt float, amount decimal(18,4), name string, flag boolean, "
          "day date, ts timestamp, ts_ntz timestamp_ntz")


@pytest.fixture(scope="module")
def spark(local_spark):
    return local_spark


def _onetl_postgres(spark, db_url: str):
    from onetl.connection import Postgres

    url = urllib.parse.urlsplit(db_url)
    return Postgres(host=url.hostname, port=url.port or 5432, user=url.username, password="unused",
                    database=url.path.lstrip("/"), spark=spark).check()


def _conninfo(db_url: str) -> dict:
    url = urllib.parse.urlsplit(db_url)
    conninfo = pg_copy.libpq_conninfo(url.hostname, url.port or 5432, url.path.lstrip("/"), url.username, "unused",
                                      {"connect_timeout": 10})
    assert conninfo is not None
    return conninfo


def _rows_only_in(db_url: str, left: str, right: str) -> list:
    # Text comparison: NaN = NaN and -0.0 vs 0.0 are told apart, as a reader of the table would see them.
    with psycopg.connect(db_url) as conn:
        return conn.execute(f"SELECT t::text FROM {left} t EXCEPT ALL SELECT t::text FROM {right} t").fetchall()


def test_copy_path_stores_what_the_jdbc_path_stores(spark, data_db_url):
    from onetl.db import DBWriter

    df = spark.createDataFrame(EDGE_ROWS, SCHEMA).repartition(3)
    connection = _onetl_postgres(spark, data_db_url)
    jdbc_table, copy_table = "public.pgcopy_jdbc", "public.pgcopy_copy"
    DBWriter(connection=connection, target=jdbc_table, options={"if_exists": "replace_entire_table"}).run(df)
    DBWriter(connection=connection, target=copy_table, options={"if_exists": "replace_entire_table"}).run(df.limit(0))

    copied = pg_copy.copy_rows(df, _conninfo(data_db_url), copy_table)

    assert copied == len(EDGE_ROWS)
    assert _rows_only_in(data_db_url, jdbc_table, copy_table) == []
    assert _rows_only_in(data_db_url, copy_table, jdbc_table) == []
    with psycopg.connect(data_db_url) as conn:
        empty, null = conn.execute(f"SELECT name = '', name IS NULL FROM {copy_table} WHERE id IN (2, 4) "
                                   "ORDER BY id").fetchall()
    assert empty == (True, False) and null == (None, True)  # '' stays '', NULL stays NULL


def test_a_failed_partition_copies_nothing_of_its_rows(spark, data_db_url):
    """One transaction per partition: a partition that fails mid-way leaves none of its rows."""
    df = spark.createDataFrame([(i, "x" * 10) for i in range(1000)], "id int, name string").coalesce(1)
    table = "public.pgcopy_fail"
    with psycopg.connect(data_db_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id int CHECK (id < 900), name text)")

    with pytest.raises(Exception, match="pgcopy_fail_id_check"):
        pg_copy.copy_rows(df, _conninfo(data_db_url), table)

    with psycopg.connect(data_db_url) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
