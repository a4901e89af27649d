"""Hive targets: staged into ``<table>__smr_staging``, swapped in by two metastore renames, leftovers settled.

The metastore is a fake that applies the handler's DDL to a dict of tables; ``DBWriter`` is a fake that records
what it writes (and creates the table it saves as onETL's ``saveAsTable`` would).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from syncmaster_ray.handlers.hive import (
    MAX_IDENTIFIER,
    TableInfo,
    properties_to_copy,
    recovery_statements,
    staging_table_for,
)
from tests.unit.test_handlers_db import FakeDataFrame, appending, build, connection

TARGET, STAGING, OLD = "db.orders", "db.orders__smr_staging", "db.orders__smr_old"
Q_TARGET, Q_STAGING, Q_OLD = "`db`.`orders`", "`db`.`orders__smr_staging`", "`db`.`orders__smr_old`"
MANAGED = TableInfo(table_type="MANAGED")


def unquote(name: str) -> str:
    return name.replace("`", "")


class FakeMetastore:
    """Tables by name; ``execute`` applies CREATE LIKE, RENAME and DROP; ``fail_on`` makes statements raise."""

    def __init__(self, tables: dict[str, TableInfo], fail_on: tuple[str, ...] = ()) -> None:
        self.tables = dict(tables)
        self.statements: list[str] = []
        self.fail_on = fail_on

    def execute(self, statement: str) -> None:
        self.statements.append(statement)
        if statement.startswith(self.fail_on):
            raise RuntimeError(f"refused: {statement}")
        if match := re.fullmatch(r"ALTER TABLE (\S+) RENAME TO (\S+)", statement):
            old, new = map(unquote, match.groups())
            assert new not in self.tables, f"{new} exists"
            self.tables[new] = self.tables.pop(old)
        elif match := re.fullmatch(r"DROP TABLE IF EXISTS (\S+)", statement):
            self.tables.pop(unquote(match.group(1)), None)
        elif match := re.fullmatch(r"CREATE TABLE (\S+) LIKE (\S+)", statement):
            new, like = map(unquote, match.groups())
            assert new not in self.tables
            self.tables[new] = TableInfo(table_type="MANAGED",
                                         partition_columns=self.tables[like].partition_columns)


@pytest.fixture()
def writer(monkeypatch):
    """onETL's ``DBWriter``: records (target, if_exists, columns); ``replace_entire_table`` creates the table."""
    import onetl.db

    class Writer:
        written: list[tuple[str, str, list[str]]] = []
        fail = False

        def __init__(self, *, connection, target, options):
            self.metastore, self.target, self.if_exists = connection, target, options["if_exists"]

        def run(self, df):
            Writer.written.append((self.target, self.if_exists, df.columns))
            if self.if_exists == "replace_entire_table":
                self.metastore.tables[self.target] = MANAGED
            if Writer.fail:
                raise RuntimeError("connection lost mid-write")

    monkeypatch.setattr(onetl.db, "DBWriter", Writer)
    return Writer


def hive_target(metastore: FakeMetastore, *, appends: bool = False) -> Any:
    handler = build(connection("hive"), role="target", table_name=TARGET)
    if appends:
        appending(handler)
    handler.connection = metastore
    handler.table_exists = lambda name: name in metastore.tables
    handler.table_info = lambda name: metastore.tables[name]
    handler.copied_partitions = []
    handler.copy_untouched_partitions = lambda staging, columns: handler.copied_partitions.append((staging, columns))
    return handler


# --- pure parts ----------------------------------------------------------------------------------------------------


def test_side_tables_sit_next_to_the_target_within_the_metastore_names():
    assert staging_table_for("db.orders") == STAGING
    assert staging_table_for("db.orders", "__smr_old") == OLD
    long = "t" * 200
    for suffix in ("__smr_staging", "__smr_old"):
        staged = staging_table_for(f"db.{long}", suffix)
        assert staged.startswith("db.") and staged.endswith(suffix)
        assert len(staged.split(".", 1)[1]) <= MAX_IDENTIFIER
    handler = build(connection("hive"), role="target", table_name="db.orders")
    assert handler.side_table() == STAGING


@pytest.mark.parametrize(
    ("target_exists", "old_exists", "expected"),
    [
        # Nothing left, or only a staging table (a run killed mid-write): drop it.
        (True, False, [f"DROP TABLE IF EXISTS {Q_STAGING}"]),
        (False, False, [f"DROP TABLE IF EXISTS {Q_STAGING}"]),
        # Killed after swapping its table in, before dropping the old one: the old one goes.
        (True, True, [f"DROP TABLE IF EXISTS {Q_OLD}", f"DROP TABLE IF EXISTS {Q_STAGING}"]),
        # Killed between the renames: the old table is the target, renamed back; the run's rows are dropped.
        (False, True, [f"ALTER TABLE {Q_OLD} RENAME TO {Q_TARGET}", f"DROP TABLE IF EXISTS {Q_STAGING}"]),
    ],
)
def test_recovery_statements(target_exists, old_exists, expected):
    assert recovery_statements(Q_TARGET, Q_OLD, Q_STAGING, target_exists=target_exists,
                               old_exists=old_exists) == expected


def test_only_user_table_properties_are_copied():
    properties = {
        "orc.compress": "ZLIB", "parquet.compression": "SNAPPY", "my.key": "v", "transactional": "false",
        "transient_lastDdlTime": "1795922169", "numFiles": "3", "numRows": "10", "totalSize": "4096",
        "rawDataSize": "1", "COLUMN_STATS_ACCURATE": "{}", "option.serialization.format": "1",
        "spark.sql.sources.provider": "orc", "EXTERNAL": "TRUE", "comment": "x", "owner": "etl",
    }
    assert properties_to_copy(properties) == {"orc.compress": "ZLIB", "parquet.compression": "SNAPPY",
                                              "my.key": "v", "transactional": "false"}


# --- write ---------------------------------------------------------------------------------------------------------


def test_new_target_is_written_to_the_staging_table_then_renamed_to_it(writer):
    metastore = FakeMetastore({})
    hive_target(metastore).write(FakeDataFrame(["Id", "Name"]))

    assert writer.written == [(STAGING, "replace_entire_table", ["id", "name"])]
    assert metastore.statements == [f"DROP TABLE IF EXISTS {Q_STAGING}",
                                    f"ALTER TABLE {Q_STAGING} RENAME TO {Q_TARGET}"]
    assert set(metastore.tables) == {TARGET}


def test_existing_target_is_copied_in_shape_then_swapped_with_two_renames_and_the_old_table_dropped(writer):
    old_target = TableInfo(table_type="MANAGED", comment="it's", properties={
        "orc.compress": "ZLIB", "transient_lastDdlTime": "1", "numRows": "5"})
    metastore = FakeMetastore({TARGET: old_target})
    hive_target(metastore).write(FakeDataFrame(["id"]))

    assert writer.written == [(STAGING, "append", ["id"])]  # into the table shaped like the target
    assert metastore.statements == [
        f"DROP TABLE IF EXISTS {Q_STAGING}",
        f"CREATE TABLE {Q_STAGING} LIKE {Q_TARGET}",
        f"ALTER TABLE {Q_STAGING} SET TBLPROPERTIES ('orc.compress' = 'ZLIB', 'comment' = 'it\\'s')",
        f"ALTER TABLE {Q_TARGET} RENAME TO {Q_OLD}",
        f"ALTER TABLE {Q_STAGING} RENAME TO {Q_TARGET}",
        f"DROP TABLE IF EXISTS {Q_OLD}",
    ]
    assert set(metastore.tables) == {TARGET}
    assert metastore.tables[TARGET] is not old_target


def test_partitioned_target_gets_its_untouched_partitions_copied_into_the_staging_table(writer):
    metastore = FakeMetastore({TARGET: TableInfo(table_type="MANAGED", partition_columns=("day", "region"))})
    handler = hive_target(metastore)
    handler.write(FakeDataFrame(["id", "day", "region"]))
    assert handler.copied_partitions == [(STAGING, ("day", "region"))]

    metastore = FakeMetastore({TARGET: MANAGED})
    handler = hive_target(metastore)
    handler.write(FakeDataFrame(["id"]))
    assert handler.copied_partitions == []  # not partitioned: the new rows replace every row


def test_a_target_left_as_old_by_a_run_killed_between_the_renames_is_renamed_back_then_replaced(writer):
    partitioned = TableInfo(table_type="MANAGED", partition_columns=("day",))
    metastore = FakeMetastore({OLD: partitioned, STAGING: MANAGED})
    handler = hive_target(metastore)
    handler.write(FakeDataFrame(["id", "day"]))

    assert metastore.statements[:3] == [f"ALTER TABLE {Q_OLD} RENAME TO {Q_TARGET}",
                                        f"DROP TABLE IF EXISTS {Q_STAGING}",
                                        f"CREATE TABLE {Q_STAGING} LIKE {Q_TARGET}"]
    assert handler.copied_partitions == [(STAGING, ("day",))]  # the old rows of other partitions are kept
    assert set(metastore.tables) == {TARGET}


def test_an_old_table_left_beside_the_target_is_dropped_first(writer):
    metastore = FakeMetastore({TARGET: MANAGED, OLD: MANAGED})
    hive_target(metastore).write(FakeDataFrame(["id"]))
    assert metastore.statements[:2] == [f"DROP TABLE IF EXISTS {Q_OLD}", f"DROP TABLE IF EXISTS {Q_STAGING}"]
    assert set(metastore.tables) == {TARGET}


def test_failure_while_writing_the_staging_table_drops_it_and_never_touches_the_target(writer):
    writer.fail = True
    metastore = FakeMetastore({TARGET: MANAGED})
    with pytest.raises(RuntimeError, match="mid-write"):
        hive_target(metastore).write(FakeDataFrame(["id"]))
    assert metastore.statements[-1] == f"DROP TABLE IF EXISTS {Q_STAGING}"
    assert not any("RENAME" in statement for statement in metastore.statements)
    assert metastore.tables == {TARGET: MANAGED}


def test_failure_between_the_renames_renames_the_old_table_back(writer):
    metastore = FakeMetastore({TARGET: MANAGED}, fail_on=(f"ALTER TABLE {Q_STAGING} RENAME",))
    with pytest.raises(RuntimeError, match="refused"):
        hive_target(metastore).write(FakeDataFrame(["id"]))
    assert metastore.statements[-3:] == [f"ALTER TABLE {Q_STAGING} RENAME TO {Q_TARGET}",
                                         f"ALTER TABLE {Q_OLD} RENAME TO {Q_TARGET}",
                                         f"DROP TABLE IF EXISTS {Q_STAGING}"]
    assert metastore.tables == {TARGET: MANAGED}  # the very same table


def test_failure_of_the_final_drop_still_succeeds(writer, caplog):
    metastore = FakeMetastore({TARGET: MANAGED}, fail_on=(f"DROP TABLE IF EXISTS {Q_OLD}",))
    hive_target(metastore).write(FakeDataFrame(["id"]))  # the new table is in: the next run drops the old one
    assert set(metastore.tables) == {TARGET, OLD}
    assert "could not clean up after the write" in caplog.text


def test_an_incremental_run_appends_to_an_existing_target_in_place(writer):
    metastore = FakeMetastore({TARGET: MANAGED})
    hive_target(metastore, appends=True).write(FakeDataFrame(["ID"]))
    assert writer.written == [(TARGET, "append", ["id"])]
    assert metastore.statements == [f"DROP TABLE IF EXISTS {Q_STAGING}"]


def test_an_incremental_run_without_a_target_creates_it_through_the_staging_table(writer):
    metastore = FakeMetastore({})
    hive_target(metastore, appends=True).write(FakeDataFrame(["id"]))
    assert writer.written == [(STAGING, "replace_entire_table", ["id"])]
    assert set(metastore.tables) == {TARGET}


@pytest.mark.parametrize("table_type", ["EXTERNAL", "VIEW"])
def test_external_targets_are_written_in_place(writer, table_type):
    metastore = FakeMetastore({TARGET: TableInfo(table_type=table_type)})
    hive_target(metastore).write(FakeDataFrame(["id"]))
    assert writer.written == [(TARGET, "replace_overlapping_partitions", ["id"])]
    assert not any("RENAME" in statement or "CREATE" in statement for statement in metastore.statements)
