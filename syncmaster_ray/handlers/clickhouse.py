"""ClickHouse, through onETL's ``Clickhouse`` connection (JDBC) and the doetl Spark dialect extension.

New target tables are created as ``MergeTree`` ordered by SyncMaster's sort column: the first column whose name
ends in "id", else the first column. ClickHouse refuses a nullable sorting key, so that column is made
non-nullable (nulls replaced by a zero-like value) before writing, as SyncMaster does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from syncmaster_ray.errors import InvalidParamsError
from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import JDBCHandler, java_class
from syncmaster_ray.handlers.models import JDBCConnectionModel, port_field

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType

# ClickHouse has ILIKE; REGEXP is its alias of match(). Backslash escapes work in its literals and quoted names.
DIALECT = transforms.Dialect(
    quote='"', regexp="REGEXP", native_ilike=True, backslash_escapes_in_literals=True, backslash_escapes_in_names=True
)
DIALECT_REGISTRY_CLASS = "io.github.mtsongithub.doetl.sparkdialectextensions.clickhouse.ClickhouseDialectRegistry"


class ClickhouseConnection(JDBCConnectionModel):
    port: int = port_field(8123)


def order_by_column(columns: Sequence[str]) -> str:
    """SyncMaster's MergeTree sort column: the first name ending in "id" (any case), else the first."""
    if not columns:
        raise InvalidParamsError("cannot write a DataFrame without columns to ClickHouse")
    return next((name for name in columns if name.lower().endswith("id")), columns[0])


class ClickhouseHandler(JDBCHandler[ClickhouseConnection]):
    connection_type = "clickhouse"
    onetl_class = "Clickhouse"
    dialect = DIALECT
    maven_packages = (
        "io.github.mtsongithub.doetl:spark-dialect-extension_2.12:0.0.4",
        "com.clickhouse:clickhouse-jdbc:0.7.2",
        "com.clickhouse:clickhouse-http-client:0.7.2",
    )

    def make_connection(self, spark: SparkSession) -> Any:
        # The dialect maps Spark types to ClickHouse ones; it must be registered before the first JDBC call.
        registry = java_class(spark, DIALECT_REGISTRY_CLASS)
        if registry is None:
            raise RuntimeError(
                f"{DIALECT_REGISTRY_CLASS} is not on the Spark classpath (add {self.maven_packages[0]} to the jars)"
            )
        registry.register()
        return super().make_connection(spark)

    def write_options(self, columns: Sequence[str] = ()) -> dict[str, Any]:
        sort_key = self.dialect.quote_name(order_by_column(columns))
        return {**super().write_options(columns), "createTableOptions": f"ENGINE = MergeTree() ORDER BY {sort_key}"}

    def prepare_for_write(self, df: DataFrame) -> DataFrame:
        from pyspark.sql import functions as F

        df = super().prepare_for_write(df)
        column = order_by_column(df.columns)
        field = df.schema[column]
        if not field.nullable:
            return df
        return df.withColumn(column, F.coalesce(F.col(column), _zero_value(field.dataType, column)))


def _zero_value(data_type: DataType, column: str) -> Column:
    """A non-null literal of ``data_type`` so ``coalesce`` makes Spark mark the column non-nullable."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if isinstance(data_type, T.NumericType | T.BooleanType) and not isinstance(data_type, T.DecimalType):
        return F.lit(0).cast(data_type)
    if isinstance(data_type, T.DecimalType):
        return F.lit(Decimal(0)).cast(data_type)
    if isinstance(data_type, T.StringType):
        return F.lit("")
    if isinstance(data_type, T.DateType | T.TimestampType | T.TimestampNTZType):
        return F.lit(datetime(1970, 1, 1, tzinfo=UTC)).cast(data_type)
    if isinstance(data_type, T.ArrayType):
        return F.array().cast(data_type)
    if isinstance(data_type, T.MapType):
        return F.map_from_arrays(F.array(), F.array()).cast(data_type)
    raise TypeError(
        f"ClickHouse sort column {column!r} has type {data_type.simpleString()}, which cannot be made non-nullable "
        "(cast it, or rename the columns so that another one is chosen, with a dataframe_columns_filter)"
    )
