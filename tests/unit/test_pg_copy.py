"""Which writes take the Postgres COPY path, and the statement it sends."""

from __future__ import annotations

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
                    "sslmode": "require", "connect_timeout": "5"}
    assert pg_copy.libpq_conninfo("db", 5432, "shop", "u", "p", {"reWriteBatchedInserts": "true"}) is None


def test_copy_statement_names_the_table_as_spark_does_and_quotes_columns():
    assert pg_copy.copy_statement("public.t__smr_staging", ["id", 'we"ird']).as_string(None) == (
        'COPY public.t__smr_staging ("id", "we""ird") FROM STDIN (FORMAT csv)'
    )
