"""Which writes take the Postgres COPY path, and the statement it sends."""

from __future__ import annotations

import os

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DecimalType,
    IntegerType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from syncmaster_ray.handlers import pg_copy


def test_scalar_types_are_copyable_binary_and_nested_are_not():
    schema = StructType([
        StructField("id", IntegerType()), StructField("amount", DecimalType(10, 2)), StructField("name", StringType()),
        StructField("ts", TimestampType()), StructField("ts_ntz", TimestampNTZType()),
        StructField("blob", BinaryType()), StructField("tags", ArrayType(StringType())),
        StructField("attrs", MapType(StringType(), StringType())),
    ])
    assert pg_copy.uncopyable_columns(schema) == ["blob", "tags", "attrs"]


def test_libpq_takes_ssl_and_timeouts_but_not_jdbc_only_properties():
    info = pg_copy.libpq_conninfo("db", 5433, "shop", "u", "p", {"sslmode": "require", "connect_timeout": 5})
    assert info == {"host": "db", "port": 5433, "dbname": "shop", "user": "u", "password": "p",
                    "passfile": os.devnull, "sslmode": "require", "connect_timeout": "5"}
    assert pg_copy.libpq_conninfo("db", 5432, "shop", "u", "p", {"reWriteBatchedInserts": "true"}) is None


def test_copy_statement_names_the_table_as_spark_does_and_quotes_columns():
    assert pg_copy.copy_statement("public.t__smr_staging", ["id", 'we"ird']).as_string(None) == (
        'COPY public.t__smr_staging ("id", "we""ird") FROM STDIN (FORMAT csv)'
    )


def test_psql_gets_the_connection_from_its_environment_only(monkeypatch):
    """The password is never on psql's command line, and none of the node's own libpq settings reach it."""
    from syncmaster_ray.handlers import pg_copy_pipe

    monkeypatch.setenv("PGSERVICE", "operators_service")
    monkeypatch.setenv("PGSSLCERT", "/home/operator/.postgresql/postgresql.crt")
    conninfo = pg_copy.libpq_conninfo("db.example", 5433, "sales", "reader", "s3cr3t-pw",
                                      {"sslmode": "require", "options": "-c work_mem=64MB"})
    assert conninfo is not None

    env = pg_copy_pipe.libpq_environment(conninfo)
    command = pg_copy_pipe.psql_command("/usr/bin/psql", "SELECT * FROM sales")

    assert env["PGPASSWORD"] == "s3cr3t-pw" and env["PGHOST"] == "db.example" and env["PGPORT"] == "5433"
    assert env["PGSSLMODE"] == "require" and env["PGOPTIONS"] == "-c work_mem=64MB"
    assert env["PGPASSFILE"] == env["PGSERVICEFILE"] == os.devnull
    assert "PGSERVICE" not in env and "PGSSLCERT" not in env
    assert not any("s3cr3t-pw" in argument or "db.example" in argument for argument in command)
    assert "--no-psqlrc" in command and command[-1] == "COPY (SELECT * FROM sales) TO STDOUT"
