"""Hive, through onETL's ``Hive`` connection: Spark's own catalog, so the session needs Hive support.

As SyncMaster: the table's cached metadata is refreshed before reading, reads are never JDBC-partitioned, and
writes replace only the partitions present in the data (``replace_overlapping_partitions``).

No partial data for a managed target. Spark's insert-overwrite deletes the target's old files before it writes the
new ones, so a stop mid-write would leave the table empty or partial. Instead rows go to ``<table>__smr_staging``
and only a complete staging table becomes the target, by two metastore renames (Hive has no atomic multi-table
rename):

    ALTER TABLE t RENAME TO t__smr_old; ALTER TABLE t__smr_staging RENAME TO t; DROP TABLE t__smr_old

- No target yet: the staging table is created as onETL creates a table (``saveAsTable``, its default ORC), then
  renamed to the target.
- An existing target: the staging table is ``CREATE TABLE ... LIKE`` it (columns, partitioning, format or serde,
  storage options), gets its table properties and comment, then the new rows. A partitioned target also gets its
  rows of every partition absent from the new data copied over (partition values compared null-safely), so the
  staging table holds exactly what replacing the overlapping partitions in place would leave. The price: each run
  rewrites the whole table, untouched partitions included.
- A failure between the two renames renames the old table back at once.

Renaming a managed table makes the metastore move its directory (``.../t`` -> ``.../t__smr_old``) and update its
partitions' locations, within the metastore's transaction. A run killed between the two renames (a window of one
metastore call) leaves no target, the old table as ``t__smr_old`` and the complete staging table. So every write
first settles what a killed run left (``recovery_statements``): ``t__smr_old`` without a target is renamed back to
the target (the killed run never finished, so its rows are dropped, as a stopped run's should be); ``t__smr_old``
beside a target is dropped (the killed run swapped its table in but did not drop the old one); a staging table is
dropped. Readers during the swap may briefly find no table. A run killed inside one metastore call can leave a
managed table's directory where the metastore does not expect it (Hive moves the directory inside the rename, and
deletes it after dropping the table); Spark then refuses the next write, naming the location, to be put right by
hand.

Not staged:

- Appends (an incremental run whose HWM moved, into an existing target) go straight into the target with onETL's
  ``insertInto``. That is one Spark job: its tasks write under the table's ``_temporary`` directory (or, for a Hive
  serde table Spark does not convert, ``.hive-staging_*``), hidden from readers, and the files are moved into the
  table only when the job commits (Spark's default commit algorithm, v1), then new partitions are registered. A
  failure or stop before the commit leaves the target as it was (with that hidden directory); a run killed during
  the commit (a rename per file, then a metastore call per new partition) can leave part of its rows. Writing a
  staging table first and then ``INSERT INTO t SELECT * FROM staging`` would end in the very same commit, so it
  would only copy every row twice.
- External targets (and views) are written in place as before: swapping a managed table in would change where
  their data lives.

``StagedWriteMixin`` does not fit: its swap is one atomic statement, and it drops ``__smr_old`` before each write,
which here may be the only copy of the target.
"""

from __future__ import annotations

import functools
import logging
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from syncmaster_ray.handlers import staging as staged_writes
from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import DBHandler
from syncmaster_ray.handlers.models import BasicAuthModel
from syncmaster_ray.handlers.staging import OLD_SUFFIX, STAGING_SUFFIX

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

# Hive 2.x metastores keep up to 128 characters of a table name (newer schemas 256).
MAX_IDENTIFIER = 128
# Table properties the metastore or Spark keep for themselves: never copied to the staging table. ``option.*`` are
# storage properties (copied by CREATE TABLE LIKE); the rest are statistics, timestamps and reserved keys.
_OWN_PROPERTIES = frozenset({
    "transient_lastddltime", "last_modified_by", "last_modified_time", "numfiles", "numfileserasurecoded",
    "numrows", "rawdatasize", "totalsize", "numpartitions", "column_stats_accurate", "external", "comment",
    "location", "provider", "owner", "is_managed_location",
})
_OWN_PROPERTY_PREFIXES = ("option.", "spark.sql.")
# Hive (and Iceberg) filters run as Spark SQL: a quote inside a literal is written \' there too.
DIALECT = transforms.Dialect(quote="`", regexp="RLIKE", native_ilike=False, backslash_escapes_in_literals=True,
                             quote_in_literal="\\'")


class HiveConnection(BasicAuthModel):
    """``cluster`` from ``data``; ``user``/``password`` (basic auth) are SyncMaster's Kerberos credentials."""

    cluster: str


@dataclass(frozen=True)
class TableInfo:
    """What the write needs to know of an existing table (from Spark's catalog)."""

    table_type: str  # MANAGED, EXTERNAL or VIEW
    partition_columns: tuple[str, ...] = ()
    comment: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def managed(self) -> bool:
        return self.table_type.upper() == "MANAGED"


def staging_table_for(table_name: str, suffix: str = STAGING_SUFFIX) -> str:
    """``db.table`` -> ``db.table__smr_staging`` (or another suffix), within the metastore's names."""
    return staged_writes.staging_table_for(table_name, MAX_IDENTIFIER, suffix)


def properties_to_copy(properties: Mapping[str, str]) -> dict[str, str]:
    """The table properties a user or tool set (compression, custom keys), without the metastore's own."""
    return {key: value for key, value in properties.items()
            if key.lower() not in _OWN_PROPERTIES and not key.lower().startswith(_OWN_PROPERTY_PREFIXES)}


class HiveHandler(DBHandler[HiveConnection]):
    connection_type = "hive"
    onetl_class = "Hive"
    # onETL's Hive connection takes the cluster only (no credentials).
    excluded_fields = frozenset({"user", "password"})
    dialect = DIALECT
    # SyncMaster 0.3.7 means this (HiveTransferDTO), although its DTO __post_init__ order leaves
    # replace_entire_table in effect; keeping existing tables and their partitioning is the intended behaviour.
    default_if_exists = "replace_overlapping_partitions"
    partitioned_reads = False
    filters_run_in_spark = True
    maven_packages = ()

    def read(self) -> DataFrame:
        self.connection.spark.catalog.refreshTable(self.table_name)
        return super().read()

    # --- writing ---------------------------------------------------------------------------------------------------

    def write(self, df: DataFrame) -> None:
        df = self.prepare_for_write(df)
        self.settle_leftovers()
        target = self.table_info(self.table_name) if self.table_exists(self.table_name) else None
        if target is not None and (self.appends or not target.managed):
            if not self.appends:
                log.warning("Hive target %s is %s, not managed: written in place, not staged",
                            self.table_name, target.table_type)
            self.write_in_place(df)
            return
        staging = self.side_table()
        try:
            self.fill_staging(df, staging, target)
            self.swap_in(staging, target_exists=target is not None)
        except BaseException:
            self._execute_quietly(self.drop_statement(staging))
            raise

    def write_in_place(self, df: DataFrame) -> None:
        self.writer(self.table_name, self.write_options(df.columns)).run(df)

    def settle_leftovers(self) -> None:
        """Put right what a run killed mid-write left (see the module docstring), before writing."""
        old = self.side_table(OLD_SUFFIX)
        target_exists, old_exists = self.table_exists(self.table_name), self.table_exists(old)
        if old_exists and not target_exists:
            log.warning("Hive target %s is missing and %s holds it (a run was killed between its renames): "
                        "renaming it back", self.table_name, old)
        for statement in recovery_statements(self.quote_table(self.table_name), self.quote_table(old),
                                             self.quote_table(self.side_table()),
                                             target_exists=target_exists, old_exists=old_exists):
            self.connection.execute(statement)

    def fill_staging(self, df: DataFrame, staging: str, target: TableInfo | None) -> None:
        """Write the target's complete new content into ``staging`` (shaped as the target, when there is one)."""
        if target is None:
            self.writer(staging, {"if_exists": "replace_entire_table"}).run(df)
            return
        for statement in self.create_like_statements(staging, target):
            self.connection.execute(statement)
        self.writer(staging, {"if_exists": "append"}).run(df)
        if target.partition_columns and self.write_options()["if_exists"] == "replace_overlapping_partitions":
            self.copy_untouched_partitions(staging, target.partition_columns)

    def create_like_statements(self, staging: str, target: TableInfo) -> list[str]:
        statements = [f"CREATE TABLE {self.quote_table(staging)} LIKE {self.quote_table(self.table_name)}"]
        properties = properties_to_copy(target.properties)
        if target.comment is not None:
            properties["comment"] = target.comment
        if properties:
            pairs = ", ".join(f"{self.dialect.literal(key)} = {self.dialect.literal(value)}"
                              for key, value in properties.items())
            statements.append(f"ALTER TABLE {self.quote_table(staging)} SET TBLPROPERTIES ({pairs})")
        return statements

    def copy_untouched_partitions(self, staging: str, partition_columns: Sequence[str]) -> None:
        """Append the target's rows of every partition the new rows (already in ``staging``) do not touch.

        The touched partition values are collected first (one row per partition), so this job reads the target
        and a small in-memory table, never the table it writes.
        """
        from pyspark.sql import functions

        spark = self.connection.spark
        new_partitions = spark.table(staging).select(*partition_columns).distinct()
        touched = spark.createDataFrame(new_partitions.collect(), new_partitions.schema)
        old = spark.table(self.table_name)
        same_partition = functools.reduce(operator.and_, (old[name].eqNullSafe(touched[name])
                                                          for name in partition_columns))
        kept = old.join(functions.broadcast(touched), same_partition, "left_anti")
        self.writer(staging, {"if_exists": "append"}).run(kept)

    def swap_in(self, staging: str, *, target_exists: bool) -> None:
        target, stage = self.quote_table(self.table_name), self.quote_table(staging)
        if not target_exists:
            self.connection.execute(rename_statement(stage, target))
            return
        old = self.quote_table(self.side_table(OLD_SUFFIX))
        self.connection.execute(rename_statement(target, old))
        try:
            self.connection.execute(rename_statement(stage, target))
        except BaseException:
            self._execute_quietly(rename_statement(old, target), "could not rename the old table back (the next "
                                                                 "run does)")
            raise
        self._execute_quietly(self.drop_statement(self.side_table(OLD_SUFFIX)))

    # --- the catalog -----------------------------------------------------------------------------------------------

    def table_exists(self, name: str) -> bool:
        return bool(self.connection.spark.catalog.tableExists(name))

    def table_info(self, name: str) -> TableInfo:
        catalog = self.connection.spark.catalog
        table = catalog.getTable(name)
        partition_columns = tuple(column.name for column in catalog.listColumns(name) if column.isPartition)
        rows = self.connection.spark.sql(f"SHOW TBLPROPERTIES {self.quote_table(name)}").collect()
        return TableInfo(table_type=table.tableType or "", partition_columns=partition_columns,
                         comment=table.description, properties={row[0]: row[1] for row in rows})

    def side_table(self, suffix: str = STAGING_SUFFIX) -> str:
        return staging_table_for(self.table_name, suffix)

    def _execute_quietly(self, statement: str, what: str = "could not clean up after the write (the next run does)"
                         ) -> None:
        try:
            self.connection.execute(statement)
        except Exception:
            log.warning("Hive target %s: %s: %s", self.table_name, what, statement, exc_info=True)


def rename_statement(table: str, new_name: str) -> str:
    """Both names quoted and qualified with the same database (Spark renames within a database only)."""
    return f"ALTER TABLE {table} RENAME TO {new_name}"


def recovery_statements(target: str, old: str, staging: str, *, target_exists: bool, old_exists: bool) -> list[str]:
    """What a write runs first, given what a killed run may have left (names quoted)."""
    statements = []
    if old_exists:
        statements.append(f"DROP TABLE IF EXISTS {old}" if target_exists else rename_statement(old, target))
    statements.append(f"DROP TABLE IF EXISTS {staging}")
    return statements
