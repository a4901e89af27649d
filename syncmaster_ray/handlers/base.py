"""Handler contracts: a handler validates its params when built (no Spark needed), then connects, reads, writes."""

from __future__ import annotations

import dataclasses
import importlib
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from syncmaster_ray.errors import InvalidParamsError
from syncmaster_ray.handlers import sql_guard, transforms
from syncmaster_ray.handlers.context import HandlerContext
from syncmaster_ray.handlers.models import ConnectionModel, JDBCConnectionModel, ServerModel
from syncmaster_ray.spec import ConnectionSpec, RunSpec, hwm_name, parse_model, table_name_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["ConnectionModelT", "DBHandler", "Handler", "JDBCHandler", "Role", "java_class"]

Role = Literal["source", "target"]


def java_class(spark: SparkSession, name: str) -> Any | None:
    """The JVM class ``name`` as py4j sees it (as onETL looks drivers up), or None when it is not on the classpath."""
    from py4j.java_gateway import JavaClass

    found = getattr(spark._jvm, name)
    return found if isinstance(found, JavaClass) else None


Step = TypeVar("Step")  # an onETL DBReader or DBWriter
ConnectionModelT = TypeVar("ConnectionModelT", bound=ConnectionModel)


class Handler(ABC, Generic[ConnectionModelT]):
    """One side of a transfer. Owns its onETL connection for the lifetime of one run.

    A type's handler names its connection model as the type argument (``FileHandler[SFTPConnection]``) and its
    onETL class by name (``onetl_class = "SFTP"``, imported on first use only, so building a handler never loads
    onETL). ``connection_kwargs`` passes the model's fields one to one unless the type overrides it.
    """

    connection_type: ClassVar[str]
    connection_model: ClassVar[type[ConnectionModel]]
    # The onETL connection class: its name in ``onetl.connection``.
    onetl_class: ClassVar[str]
    # Connection-model fields not passed to the onETL class, and fixed arguments it gets besides them.
    excluded_fields: ClassVar[frozenset[str]] = frozenset()
    fixed_kwargs: ClassVar[Mapping[str, Any]] = {}
    # Maven coordinates this side needs (`SYNCMASTER__SPARK__USE_MAVEN_PACKAGES`); file handlers add format jars.
    maven_packages: tuple[str, ...] = ()
    # True when this side reads or writes files on the Spark driver's local disk, which executors must see too:
    # the job then reserves the driver and every executor on one node (a STRICT_PACK placement group).
    driver_local_files: bool = False
    # True when a write either completes or leaves the target as it was, even if the process dies mid-write (a
    # staging table swapped in, one commit): a failed run may then be tried again (attempts.py).
    atomic_write: ClassVar[bool] = False

    def __init__(self, *, connection: ConnectionSpec, params: dict[str, Any], spec: RunSpec, role: Role,
                 context: HandlerContext | None = None) -> None:
        self.spec = spec
        self.role = role
        self.connection_spec = connection
        self.params = params
        self.conn: ConnectionModelT = parse_model(
            self.connection_model, connection.merged(), f"{role} connection {connection.id} ({connection.type})"
        )
        self.context = context or HandlerContext(hwm_name=hwm_name(spec))
        # Counters merged into the run's metrics (e.g. files read or written).
        self.metrics: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """``connection_model`` from the type argument: ``class SFTPHandler(FileHandler[SFTPConnection])``."""
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            for argument in typing.get_args(base):
                if isinstance(argument, type) and issubclass(argument, ConnectionModel):
                    cls.connection_model = argument

    def update_context(self, **changes: Any) -> None:
        """Replace fields of the context as the job learns them (the work dir, the executors probe, the HWM)."""
        self.context = dataclasses.replace(self.context, **changes)

    @property
    def previous_hwm(self) -> Any:
        """The transfer's HWM before this run (incremental strategy)."""
        return self.context.previous_hwm

    @property
    def work_dir(self) -> Path | None:
        return self.context.work_dir

    @property
    def incremental(self) -> bool:
        return self.spec.strategy.type == "incremental"

    @property
    def appends(self) -> bool:
        """An incremental run with an HWM already moved appends instead of replacing (SyncMaster's rule)."""
        return self.incremental and getattr(self.previous_hwm, "value", None) not in (None, set(), frozenset())

    @property
    def describe(self) -> str:
        """A secret-free name for messages: ``postgres connection 'pg_src'``."""
        return f"{self.connection_type} connection {self.connection_spec.name!r}"

    def onetl_connection_class(self) -> type:
        """The onETL connection class ``onetl_class`` names (imported here, so building a handler never loads onETL)."""
        return getattr(importlib.import_module("onetl.connection"), self.onetl_class)

    def connection_kwargs(self) -> dict[str, Any]:
        """Everything passed to the onETL connection class except ``spark``: every field of the model but
        ``excluded_fields``, one to one (a server's missing port is its well-known one), plus ``fixed_kwargs``.
        Secrets stay ``SecretStr``."""
        kwargs = {name: value for name, value in self.conn if name not in self.excluded_fields}
        if isinstance(self.conn, ServerModel) and "port" in kwargs:
            kwargs["port"] = self.conn.effective_port
        return {**kwargs, **self.fixed_kwargs}

    def maven_exclusions(self) -> tuple[str, ...]:
        """``spark.jars.excludes`` for ``maven_packages`` (called inside the Ray job only)."""
        return ()

    @abstractmethod
    def connect(self, spark: SparkSession) -> None: ...

    @abstractmethod
    def read(self) -> DataFrame | None:
        """The source's rows, or None when there is nothing new to transfer (an incremental file source)."""

    @abstractmethod
    def write(self, df: DataFrame) -> None: ...

    def estimated_rows(self) -> int | None:
        """As a source: a cheap estimate of how many rows ``read`` returns (for progress), or None."""
        return None

    def rows_so_far(self) -> int | None:
        """As a target: rows taken so far, where this target counts what passes outside Spark; None: Spark's
        count of rows read stands for it."""
        return None


class DBHandler(Handler[ConnectionModelT]):
    """A table in a database, read with ``DBReader`` and written with ``DBWriter``.

    The pure part (``connection_kwargs``, ``write_options``, ``target_column_names``, the filter SQL) needs no
    Spark; ``make_connection`` adds the session: ``OnetlClass(spark=spark, **connection_kwargs())``.
    """

    dialect: ClassVar[transforms.Dialect]
    default_if_exists: ClassVar[str] = "replace_entire_table"
    # SyncMaster lowercases target column names; Oracle upper-cases them.
    column_case: ClassVar[Literal["lower", "upper"]] = "lower"
    # SyncMaster reads Hive and Iceberg with one Spark scan, never with JDBC-style partitioning.
    partitioned_reads: ClassVar[bool] = True
    # Hive and Iceberg run the filters as Spark SQL in our session, not in a database of their own.
    filters_run_in_spark: ClassVar[bool] = False

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
        if self.role == "source" and self.incremental and not self.spec.strategy.increment_by:
            raise InvalidParamsError("incremental strategy_params need 'increment_by' (a column of the source table)")

    def connect(self, spark: SparkSession) -> None:
        self.connection = self.make_connection(spark).check()

    def make_connection(self, spark: SparkSession) -> Any:
        """The onETL connection object for this side (JVM-side preparation belongs in overrides of this)."""
        return self.onetl_connection_class()(spark=spark, **self.connection_kwargs())

    def read(self) -> DataFrame:
        from onetl.db import DBReader

        hwm = None
        if self.incremental:
            hwm = DBReader.AutoDetectHWM(name=self.context.hwm_name, expression=self.increment_expression)
        if self.filters_run_in_spark:
            sql_guard.check_filters(self.connection.spark, self.where, self.columns)
        reader = self.checked(DBReader(
            connection=self.connection,
            source=self.table_name,
            where=self.where,
            columns=self.columns,
            hwm=hwm,
            options=self.partitioned_read_options() or None,
        ))
        df = reader.run()
        if self.sql_query:
            df = sql_guard.run_sql_step(self.connection.spark, df, self.sql_query)
        return df

    @property
    def increment_expression(self) -> str:
        return self.dialect.quote_name(self.spec.strategy.increment_by or "")

    def partitioned_read_options(self) -> dict[str, Any]:
        """With ``max_parallel_tasks > 1``: one partition per executor.

        Incremental: on the increment column, by range once the HWM has a value (an indexed key, cheap min/max),
        else by hash. Full: hash of the first column, which works for any type.
        """
        tasks = self.spec.resources.max_parallel_tasks
        if tasks == 1 or not self.partitioned_reads:
            return {}
        if self.incremental:
            return {
                "partition_column": self.increment_expression,
                "num_partitions": tasks,
                "partitioning_mode": "range" if self.appends else "hash",
            }
        schema = self.connection.get_df_schema(source=self.table_name, columns=self.columns)
        return {
            "partition_column": self.dialect.quote_name(schema[0].name),
            "num_partitions": tasks,
            "partitioning_mode": "hash",
        }

    def write(self, df: DataFrame) -> None:
        df = self.prepare_for_write(df)
        self.writer(self.table_name, self.write_options(df.columns)).run(df)

    def writer(self, target: str, options: dict[str, Any]) -> Any:
        """onETL's ``DBWriter`` of ``target`` on this side's connection, which ``connect`` has checked."""
        from onetl.db import DBWriter

        return self.checked(DBWriter(connection=self.connection, target=target, options=options))

    @staticmethod
    def checked(step: Step) -> Step:
        """``step`` (a ``DBReader`` or ``DBWriter`` on ``self.connection``) without its own connection check.

        onETL checks the connection again on a reader's or writer's first ``run``; ``connect`` has just checked it
        (both sides at once, each failure with its own reason), so that second round trip, 0.2-0.3 s of JDBC set-up
        each, is skipped.
        """
        step._connection_checked = True  # onETL 0.17's flag for it (a pydantic private attribute of both)
        return step

    def quote_table(self, name: str) -> str:
        """``schema.table`` with each part quoted in this handler's dialect."""
        return ".".join(self.dialect.quote_name(part) for part in name.split("."))

    def drop_statement(self, table: str) -> str:
        return f"DROP TABLE IF EXISTS {self.quote_table(table)}"

    def write_options(self, columns: Sequence[str] = ()) -> dict[str, Any]:
        """``DBWriter`` options for a DataFrame with these (already normalised) columns."""
        return {"if_exists": "append" if self.appends else self.default_if_exists}

    def prepare_for_write(self, df: DataFrame) -> DataFrame:
        return self.normalize_column_names(df)

    def normalize_column_names(self, df: DataFrame) -> DataFrame:
        return df.toDF(*self.target_column_names(df.columns))

    @classmethod
    def target_column_names(cls, columns: Iterable[str]) -> list[str]:
        """Column names as written to the target: lower case, or upper case where ``column_case`` says so."""
        if cls.column_case == "upper":
            return [name.upper() for name in columns]
        return [name.lower() for name in columns]


class JDBCHandler(DBHandler[ConnectionModelT]):
    """A database reached over JDBC. Its connection model is a ``JDBCConnectionModel`` (``host``, ``port``,
    ``database_name``, ``additional_params``, basic auth) unless the type overrides ``connection_kwargs``
    (Oracle)."""

    def connection_kwargs(self) -> dict[str, Any]:
        conn = self.conn
        assert isinstance(conn, JDBCConnectionModel)
        return {
            "host": conn.host,
            "port": conn.port,
            "user": conn.user,
            "password": conn.password,
            "database": conn.database_name,
            "extra": self.extra_params(dict(conn.additional_params)),
        }

    # The connection's ``additional_params`` are written by SyncMaster users and become JDBC URL parameters:
    # parameters that make the driver load a class or read a file of the node are refused, and ``forced_params``
    # replace whatever the user set for those names (compared without case).
    refused_params: ClassVar[frozenset[str]] = frozenset()
    forced_params: ClassVar[dict[str, str]] = {}

    def extra_params(self, additional_params: dict[str, Any]) -> dict[str, Any]:
        """JDBC URL parameters from the connection's ``additional_params``; types add their defaults here."""
        refused = sorted(name for name in additional_params if name.lower() in self.refused_params)
        if refused:
            raise InvalidParamsError(f"the {self.role} connection's additional_params may not set {', '.join(refused)}"
                                     " (it makes the JDBC driver load a class or read a file of the node)")
        forced = {name.lower() for name in self.forced_params}
        return {**{k: v for k, v in additional_params.items() if k.lower() not in forced}, **self.forced_params}
