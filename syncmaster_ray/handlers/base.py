"""Handler contracts: a handler validates its params when built (no Spark needed), then connects, reads, writes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from syncmaster_ray.handlers import transforms
from syncmaster_ray.spec import ConnectionSpec, RunSpec, parse_model, table_name_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Role = Literal["source", "target"]


class ConnectionModel(BaseModel):
    """Base of each type's connection DTO (``data | auth``): unknown keys are ignored, as in SyncMaster."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class BasicAuthModel(ConnectionModel):
    user: str
    password: SecretStr


class Handler(ABC):
    """One side of a transfer. Owns its onETL connection for the lifetime of one run."""

    connection_type: ClassVar[str]
    connection_model: ClassVar[type[ConnectionModel]]
    maven_packages: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, connection: ConnectionSpec, params: dict[str, Any], spec: RunSpec, role: Role) -> None:
        self.spec = spec
        self.role = role
        self.connection_spec = connection
        self.params = params
        self.conn = parse_model(
            self.connection_model, connection.merged(), f"{role} connection {connection.id} ({connection.type})"
        )

    @property
    def describe(self) -> str:
        """A secret-free name for messages: ``postgres connection 'pg_src'``."""
        return f"{self.connection_type} connection {self.connection_spec.name!r}"

    @abstractmethod
    def connect(self, spark: SparkSession) -> None: ...

    @abstractmethod
    def read(self) -> DataFrame: ...

    @abstractmethod
    def write(self, df: DataFrame) -> None: ...


class DBHandler(Handler):
    """A table in a database, read with ``DBReader`` and written with ``DBWriter``."""

    dialect: ClassVar[transforms.Dialect]
    default_if_exists: ClassVar[str] = "replace_entire_table"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table_name = table_name_of(self.params, f"{self.role}_params")
        transformations = self.spec.transformations
        self.where = transforms.rows_filter_sql(transforms.filters_of(transformations, "dataframe_rows_filter"),
                                                self.dialect)
        self.columns = transforms.columns_filter_sql(
            transforms.filters_of(transformations, "dataframe_columns_filter"), self.dialect
        )
        self.sql_query = transforms.sql_query_of(transformations)
        self.connection: Any = None

    def connect(self, spark: SparkSession) -> None:
        self.connection = self.make_connection(spark).check()

    @abstractmethod
    def make_connection(self, spark: SparkSession) -> Any:
        """The onETL connection object for this side."""

    def read(self) -> DataFrame:
        from onetl.db import DBReader

        reader = DBReader(
            connection=self.connection,
            source=self.table_name,
            where=self.where,
            columns=self.columns,
            options=self.partitioned_read_options(),
        )
        df = reader.run()
        if self.sql_query:
            df.createOrReplaceTempView("source")
            df = self.connection.spark.sql(self.sql_query)
        return df

    def partitioned_read_options(self) -> dict[str, Any]:
        """With ``max_parallel_tasks > 1``: hash-partition on the first column, one partition per executor."""
        tasks = self.spec.resources.max_parallel_tasks
        if tasks == 1:
            return {}
        schema = self.connection.get_df_schema(source=self.table_name, columns=self.columns)
        return {
            "partition_column": self.dialect.quote_name(schema[0].name),
            "num_partitions": tasks,
            "partitioning_mode": "hash",
        }

    def write(self, df: DataFrame) -> None:
        from onetl.db import DBWriter

        DBWriter(
            connection=self.connection,
            target=self.table_name,
            options={"if_exists": self.default_if_exists},
        ).run(self.normalize_column_names(df))

    def normalize_column_names(self, df: DataFrame) -> DataFrame:
        """SyncMaster lowercases target column names (Oracle overrides with upper case)."""
        return df.toDF(*[name.lower() for name in df.columns])
