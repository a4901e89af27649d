"""Database types end to end beside Postgres, and the incremental strategy, through the whole pipeline."""

from __future__ import annotations

import secrets
import subprocess

import psycopg
import pytest
from psycopg import sql

from tests.fixtures.hive_data import (
    fingerprint_query,
    hive_sql,
    table_definition,
    table_names,
    tables_query,
    warehouse_entries,
    write_in_progress,
)
from tests.fixtures.mysql_data import mariadb, mysql_fingerprint, postgres_fingerprint, table_exists, tables_like
from tests.fixtures.postgres_data import ROWS_SQL, checksum, create_slow_view, create_source, stored, unique_table
from tests.fixtures.ray_cluster import spark_jvms
from tests.fixtures.runs import ended, start_and_wait, wait_for
from tests.integration.test_transfer_postgres import SLOW_EVERY, SLOW_PAUSE, SLOW_ROWS, connection_data

pytestmark = [pytest.mark.integration]


def make_transfer(catalog, queue, source_conn, target_conn, source_params, target_params, strategy=None,
                  transformations=None):
    return catalog.create_transfer(
        group_id=queue.group_id, name=f"t_{secrets.token_hex(4)}", description="", queue_id=queue.id,
        source_connection_id=source_conn.id, target_connection_id=target_conn.id,
        source_params=source_params, target_params=target_params,
        strategy_params=strategy or {"type": "full"}, transformations=transformations or [],
        resources={"max_parallel_tasks": 1, "cpu_cores_per_task": 1, "ram_bytes_per_task": 1024**3},
        is_scheduled=False, schedule="",
    )


def ensure_connection(catalog, app_env, name: str, type_: str, data: dict, auth: dict):
    if catalog.find_connection("e2e", name) is None:
        catalog.create_connection(group_name="e2e", name=name, type_=type_, data=data, auth=auth,
                                  secret_key=app_env["SYNCMASTER__ENCRYPTION__SECRET_KEY"])
    return catalog.find_connection("e2e", name)


@pytest.fixture(scope="module")
def pg(catalog, data_db_url, app_env):
    data, auth = connection_data(data_db_url)
    return ensure_connection(catalog, app_env, "pg_db_tests", "postgres", data, auth)


def assert_finished(repo, run):
    record = repo.get_record(run.id)
    assert run.status == "FINISHED", record.reason if record else None


@pytest.mark.postgres
def test_incremental_runs_move_only_new_rows_and_a_full_run_resets_the_hwm(
    repo, catalog, e2e_queue, pg, data_db_url, ray_head, celery_worker, app_env
):
    from syncmaster_ray.db.hwm_store import PostgresHWMStore
    from syncmaster_ray.job.strategy import hwm_name
    from syncmaster_ray.settings import get_settings

    source, target_name = unique_table("inc_src"), unique_table("Inc_Dst_Таблица")
    target = stored(target_name)  # appended into through the staging table of the same (folded) name
    create_source(data_db_url, source, rows=100)
    transfer = make_transfer(catalog, e2e_queue, pg, pg, {"type": "postgres", "table_name": source},
                             {"type": "postgres", "table_name": target_name},
                             strategy={"type": "incremental", "increment_by": "Id"})
    store = PostgresHWMStore(sync_url=get_settings().database.sync_url)
    name = f"{transfer.id}_postgres_{source}"

    first = start_and_wait(repo, transfer, e2e_queue.slug)
    assert_finished(repo, first)
    assert store.get_hwm(name).value == 100
    with psycopg.connect(data_db_url, autocommit=True) as conn:
        conn.execute(f'INSERT INTO {source} ("Id", "Name") SELECT g, \'new \' || g FROM generate_series(101, 150) g')
        conn.execute(f'UPDATE {source} SET "Name" = \'changed\' WHERE "Id" = 5')  # below the HWM: not moved again

    second = start_and_wait(repo, transfer, e2e_queue.slug)
    assert_finished(repo, second)
    assert store.get_hwm(name).value == 150
    with psycopg.connect(data_db_url) as conn:
        ids = [row[0] for row in conn.execute(f"SELECT id FROM {target} WHERE id IS NOT NULL ORDER BY id")]
        name_of_5 = conn.execute(f"SELECT name FROM {target} WHERE id = 5").fetchone()[0]
    assert ids == [-1, *range(1, 151)]  # run 1: ids -1..100 (NULL-id rows are below any HWM), run 2: 101..150
    assert name_of_5 != "changed"
    assert repo.get_record(second.id).metrics["source_partitions"] == 1

    catalog_transfer = transfer  # switch the same transfer to full, as a user would in the UI
    with psycopg.connect(get_settings().database.sync_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("UPDATE transfer SET strategy_params = %s WHERE id = %s",
                     ('{"type": "full"}', catalog_transfer.id))
    third = start_and_wait(repo, transfer, e2e_queue.slug)
    assert_finished(repo, third)
    assert store.get_hwm(name).value is None
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
    assert hwm_name  # the name the job uses is SyncMaster's: checked in unit tests


MYSQL_DB = f"smr_{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def mysql(catalog, app_env):
    """The local MariaDB server (127.0.0.1:3306, root) read and written with Debian's MariaDB JDBC driver."""
    subprocess.run(["mariadb", "-uroot", "-e", f"CREATE DATABASE {MYSQL_DB} CHARACTER SET utf8mb4"], check=True)
    try:
        yield ensure_connection(
            catalog, app_env, "mysql_tests", "mysql",
            {"host": "127.0.0.1", "port": 3306, "database_name": MYSQL_DB, "additional_params": {}},
            {"type": "basic", "user": "root", "password": ""},
        )
    finally:
        subprocess.run(["mariadb", "-uroot", "-e", f"DROP DATABASE IF EXISTS {MYSQL_DB}"], check=True)


def uncommitted_rows(table: str) -> int:
    """Rows in ``table`` that a transaction has written, committed or not (InnoDB's READ UNCOMMITTED), 0 when the
    table does not exist."""
    if not table_exists(table):
        return 0
    return int(mariadb(f"SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED; SELECT COUNT(*) FROM {table}")[0][0])


def test_mysql_target_stopped_mid_write_is_left_as_it_was_and_the_next_run_replaces_it(
    repo, catalog, e2e_queue, pg, mysql, data_db_url, ray_head, celery_worker
):
    """Rows go to a staging table renamed in at the end: stopped mid-write, the old MySQL target is untouched."""
    from syncmaster_ray.cli.run import send_run_task
    from syncmaster_ray.handlers.mysql import staging_table_for
    from tests.integration.test_transfer_postgres import SLOW_EVERY, SLOW_PAUSE, SLOW_ROWS, stop_and_wait

    # A mixed-case, non-ASCII name: MySQL keeps it as written (the staging table, rename and cleanup must too).
    table, source, name = unique_table("my_src"), unique_table("my_slow"), f"Dst_Ünï_{secrets.token_hex(4)}"
    target = f"{MYSQL_DB}.{name}"
    create_source(data_db_url, table, rows=SLOW_ROWS)
    with psycopg.connect(data_db_url, autocommit=True) as conn:  # MySQL TIMESTAMPs end in 2038
        conn.execute(f"UPDATE {table} SET local_ts = local_ts - (\"Id\" / 100000 * 100000) * interval '17 minutes', "
                     f"event_at = event_at - (\"Id\" / 100000 * 100000) * interval '1 hour' WHERE \"Id\" > 100000")
    create_slow_view(data_db_url, source, table, every=SLOW_EVERY, pause_seconds=SLOW_PAUSE)
    mariadb(f"CREATE TABLE {target} (id INT PRIMARY KEY, name TEXT); "
            f"INSERT INTO {target} SELECT seq, CONCAT('old ', seq) FROM {MYSQL_DB}.seq_1_to_50")
    before = mariadb(f"SELECT * FROM {target} ORDER BY id; CHECKSUM TABLE {target}")
    transfer = make_transfer(catalog, e2e_queue, pg, mysql, {"type": "postgres", "table_name": source},
                             {"type": "mysql", "table_name": target})
    run = repo.create_run(transfer.id)
    send_run_task(run.id, e2e_queue.slug)
    staging = staging_table_for(target)
    # Mid-write for real: the staging table holds rows its transaction has not committed, and the source is not done.
    def target_changed() -> bool:
        try:
            return mariadb(f"SELECT * FROM {target} ORDER BY id; CHECKSUM TABLE {target}") != before
        except subprocess.CalledProcessError:  # the target is gone (dropped or renamed away)
            return True

    written = wait_for(lambda: uncommitted_rows(staging) or target_changed(), 300, "rows in the staging table")
    assert not target_changed(), "the target changed while the run was writing"

    final, latency = stop_and_wait(repo, run.id)

    assert final.status == "STOPPED", repo.get_record(run.id).reason
    assert repo.get_record(run.id).ray_job_status == "STOPPED"
    assert mariadb(f"SELECT * FROM {target} ORDER BY id; CHECKSUM TABLE {target}") == before
    print(f"stopped with {written} of {SLOW_ROWS} rows written; stop request -> STOPPED: {latency:.1f} s")
    wait_for(lambda: spark_jvms(ray_head.session_id) == [], 60, "every Spark JVM to exit")
    # The next run into the target (from a small table: the rows it copies are not the point) drops what the
    # stopped one left and renames its own staging table in.
    small = unique_table("my_small")
    create_source(data_db_url, small, rows=1000)
    again = start_and_wait(repo, make_transfer(catalog, e2e_queue, pg, mysql, {"type": "postgres", "table_name": small},
                                               {"type": "mysql", "table_name": target}), e2e_queue.slug)
    assert_finished(repo, again)
    assert mysql_fingerprint(target) == postgres_fingerprint(data_db_url, small)
    assert tables_like(MYSQL_DB, name) == [name]  # neither __smr_staging nor __smr_old is left


def test_mysql_incremental_run_appends_to_the_rows_already_there(
    repo, catalog, e2e_queue, pg, mysql, data_db_url, ray_head, celery_worker
):
    source, name = unique_table("my_inc"), f"Inc_Таблица_{secrets.token_hex(4)}"
    target = f"{MYSQL_DB}.{name}"
    create_source(data_db_url, source, rows=100)
    transfer = make_transfer(catalog, e2e_queue, pg, mysql, {"type": "postgres", "table_name": source},
                             {"type": "mysql", "table_name": target},
                             strategy={"type": "incremental", "increment_by": "Id"})

    first = start_and_wait(repo, transfer, e2e_queue.slug)  # no target yet: the staging table becomes it
    assert_finished(repo, first)
    # Rows with a NULL increment column are below any HWM, as in the Postgres incremental test.
    assert mysql_fingerprint(target) == postgres_fingerprint(data_db_url, source, '"Id" IS NOT NULL')
    with psycopg.connect(data_db_url, autocommit=True) as conn:
        conn.execute(f'INSERT INTO {source} ("Id", "Name") SELECT g, \'new \' || g FROM generate_series(101, 150) g')
    mariadb(f"INSERT INTO {target} (id, name) VALUES (100000, 'only in the target')")

    second = start_and_wait(repo, transfer, e2e_queue.slug)  # the HWM moved: appended from the staging table

    assert_finished(repo, second)
    ids = [int(row[0]) for row in mariadb(f"SELECT id FROM {target} WHERE id IS NOT NULL ORDER BY id")]
    assert ids == [-1, *range(1, 151), 100000]
    assert mariadb(f"SELECT name FROM {target} WHERE id = 100000") == [["only in the target"]]
    assert tables_like(MYSQL_DB, name) == [name]


@pytest.mark.parametrize("middle", ["mysql", "hive"])
def test_round_trip_through_another_database_keeps_every_row(
    middle, request, repo, catalog, e2e_queue, pg, data_db_url, ray_head, celery_worker
):
    """postgres -> <middle> -> postgres: both directions, checked with a checksum over every row."""
    if middle == "mysql":
        middle_conn, middle_table = request.getfixturevalue("mysql"), f"{MYSQL_DB}.t_{secrets.token_hex(4)}"
    else:
        middle_conn = ensure_connection(catalog, request.getfixturevalue("app_env"), "hive_tests", "hive",
                                        {"cluster": "local"}, {"type": "basic", "user": "etl", "password": "x"})
        middle_table = f"default.t_{secrets.token_hex(4)}"
    source, back = unique_table("rt_src"), unique_table("rt_back")
    create_source(data_db_url, source, rows=1000)

    there = start_and_wait(repo, make_transfer(catalog, e2e_queue, pg, middle_conn,
                                               {"type": "postgres", "table_name": source},
                                               {"type": middle, "table_name": middle_table}), e2e_queue.slug)
    assert_finished(repo, there)
    home = start_and_wait(repo, make_transfer(catalog, e2e_queue, middle_conn, pg,
                                              {"type": middle, "table_name": middle_table},
                                              {"type": "postgres", "table_name": back}), e2e_queue.slug)
    assert_finished(repo, home)

    # Spark creates MySQL TIMESTAMP columns without fractional seconds (MariaDB truncates them).
    whole_seconds = middle == "mysql"
    assert checksum(data_db_url, back, lowercase=True, whole_seconds=whole_seconds) == checksum(
        data_db_url, source, lowercase=False, whole_seconds=whole_seconds
    )


@pytest.mark.long  # the escaping itself is unit-tested (test_handlers_db.py)
def test_hive_row_filter_matches_a_value_with_quotes_and_backslashes(repo, catalog, e2e_queue, pg, data_db_url,
                                                                    app_env, ray_head, celery_worker):
    """Spark SQL reads 'a''b' as 'ab': the Hive dialect must escape the quote so the filter means what was typed."""
    hive = ensure_connection(catalog, app_env, "hive_tests", "hive", {"cluster": "local"},
                             {"type": "basic", "user": "etl", "password": "x"})
    source, middle, back = unique_table("q_src"), f"default.q_{secrets.token_hex(4)}", unique_table("q_back")
    create_source(data_db_url, source, rows=20)
    tricky = "it's a \\'back\\slashed\\' O''Brien"
    with psycopg.connect(data_db_url, autocommit=True) as conn:
        conn.execute(sql.SQL('INSERT INTO {} ("Id", "Name") VALUES (-7, %s), (-8, %s)').format(
            sql.Identifier(*source.split("."))), (tricky, tricky.replace("'", "")))
    assert_finished(repo, start_and_wait(repo, make_transfer(
        catalog, e2e_queue, pg, hive, {"type": "postgres", "table_name": source},
        {"type": "hive", "table_name": middle}), e2e_queue.slug))
    transfer = make_transfer(catalog, e2e_queue, hive, pg, {"type": "hive", "table_name": middle},
                             {"type": "postgres", "table_name": back}, transformations=[
        {"type": "dataframe_rows_filter", "filters": [{"type": "equal", "field": "Name", "value": tricky}]},
    ])

    assert_finished(repo, start_and_wait(repo, transfer, e2e_queue.slug))

    with psycopg.connect(data_db_url) as conn:
        rows = conn.execute(sql.SQL("SELECT id, name FROM {}").format(sql.Identifier(*back.split(".")))).fetchall()
    assert rows == [(-7, tricky)]


@pytest.fixture(scope="module")
def hive(catalog, app_env):
    """Spark's own metastore and warehouse of the session (``hive_metastore_config``)."""
    return ensure_connection(catalog, app_env, "hive_tests", "hive", {"cluster": "local"},
                             {"type": "basic", "user": "etl", "password": "x"})


# The source's columns as Spark writes them into Hive (lower case).
HIVE_COLUMNS = ("id INT, bigvalue BIGINT, amount DECIMAL(14,3), name STRING, is_active BOOLEAN, day DATE, "
                "local_ts TIMESTAMP, event_at TIMESTAMP")


def old_hive_rows(table: str, ids: str, day: str = "date'2020-01-01'") -> str:
    return (f"INSERT INTO {table} SELECT CAST(id AS INT), id, CAST(id AS DECIMAL(14,3)), concat('old ', id), true, "
            f"{day}, timestamp'2020-01-01 00:00:00', timestamp'2020-01-01 00:00:00' FROM {ids}")


# Enough rows that the write into Hive is still going when the stop lands.
HIVE_STOP_ROWS = SLOW_ROWS


def slow_source_for_hive(data_db_url: str, prefix: str, rows: int) -> tuple[str, str, str, str]:
    """A Postgres table of ``rows`` rows, a view streaming it slowly, and a fresh Hive table name:
    ``(table, slow view, hive name, default.<hive name>)``."""
    table, source = unique_table(f"{prefix}_src"), unique_table(f"{prefix}_slow")
    name = f"{prefix}_{secrets.token_hex(4)}"
    create_source(data_db_url, table, rows=rows)
    create_slow_view(data_db_url, source, table, every=SLOW_EVERY, pause_seconds=SLOW_PAUSE)  # still streaming
    return table, source, name, f"default.{name}"


def stop_mid_hive_write(repo, transfer, slug: str, config, name: str, session_id: str) -> None:
    """Start a run of ``transfer``, stop it once its write into ``name`` is under way, check it ended STOPPED and
    that its Spark JVMs (which held the metastore) exited."""
    from syncmaster_ray.cli.run import send_run_task

    run = repo.create_run(transfer.id)
    send_run_task(run.id, slug)
    wait_for(lambda: write_in_progress(config, name), 300, "the write to start", interval=0.2)
    repo.request_stop(run.id)
    final = wait_for(lambda: ended(repo, run.id), 60, "the run to end")
    assert final.status == "STOPPED", repo.get_record(run.id).reason
    wait_for(lambda: spark_jvms(session_id) == [], 30, "every Spark JVM to exit")


@pytest.mark.long  # Postgres and MySQL stop-mid-write tests stay in CI
def test_hive_target_stopped_mid_write_is_left_as_it_was_and_the_next_run_replaces_it(
    repo, catalog, e2e_queue, pg, hive, data_db_url, hive_metastore_config, ray_head, celery_worker
):
    """Insert-overwrite in place deletes the old files first: a stop mid-write must still leave the old table."""
    config = hive_metastore_config
    table, source, name, target = slow_source_for_hive(data_db_url, "hstop", rows=HIVE_STOP_ROWS)
    look = (f"SELECT * FROM {target} ORDER BY id", fingerprint_query(target), f"SHOW CREATE TABLE {target}",
            tables_query("default", name))
    hive_sql(config, f"CREATE TABLE {target} ({HIVE_COLUMNS}) USING parquet COMMENT 'kept' "
                     f"TBLPROPERTIES ('smr.test' = 'kept')", old_hive_rows(target, "range(1, 51)"))
    before = hive_sql(config, *look)
    assert len(before[0]) == 50 and table_names(before[3]) == [name]
    transfer = make_transfer(catalog, e2e_queue, pg, hive, {"type": "postgres", "table_name": source},
                             {"type": "hive", "table_name": target})
    stop_mid_hive_write(repo, transfer, e2e_queue.slug, config, name, ray_head.session_id)
    after = hive_sql(config, *look[:3])
    assert after == before[:3]
    # The next run (from the table, not slowly) restores or drops what the stopped one left, then swaps its own
    # staging table in.
    again = start_and_wait(repo, make_transfer(catalog, e2e_queue, pg, hive, {"type": "postgres", "table_name": table},
                                               {"type": "hive", "table_name": target}), e2e_queue.slug)
    assert_finished(repo, again)
    fingerprint, create, tables = hive_sql(config, fingerprint_query(target), f"SHOW CREATE TABLE {target}",
                                           tables_query("default", name))
    assert [int(value) for value in fingerprint[0]] == list(postgres_fingerprint(data_db_url, table))
    assert create == before[2]  # still parquet, same columns, comment and properties
    assert table_names(tables) == [name]  # neither __smr_staging nor __smr_old is left
    assert warehouse_entries(config, name) == [name]


@pytest.mark.long  # Postgres and MySQL stop-mid-write tests stay in CI
def test_hive_incremental_run_appends_and_an_append_stopped_mid_write_leaves_the_target_as_it_was(
    repo, catalog, e2e_queue, pg, hive, data_db_url, hive_metastore_config, ray_head, celery_worker
):
    """Appends go straight into the target: Spark moves their files into the table only when the job commits."""
    config = hive_metastore_config
    table, source, name, target = slow_source_for_hive(data_db_url, "hinc", rows=100)
    transfer = make_transfer(catalog, e2e_queue, pg, hive, {"type": "postgres", "table_name": source},
                             {"type": "hive", "table_name": target},
                             strategy={"type": "incremental", "increment_by": "Id"})
    assert_finished(repo, start_and_wait(repo, transfer, e2e_queue.slug))  # no target yet: created, staged
    with psycopg.connect(data_db_url, autocommit=True) as conn:  # rows 101.. like the first ones, all columns set
        conn.execute(sql.SQL(ROWS_SQL.replace("generate_series(1,", "generate_series(101,")).format(
            table=sql.Identifier(*table.split("."))), {"rows": HIVE_STOP_ROWS})
    before = hive_sql(config, fingerprint_query(target), tables_query("default", name))
    # Rows with a NULL increment column are below any HWM, as in the Postgres incremental test.
    assert [int(value) for value in before[0][0]] == list(postgres_fingerprint(data_db_url, table,
                                                                               '"Id" BETWEEN -1 AND 100'))

    stop_mid_hive_write(repo, transfer, e2e_queue.slug, config, name, ray_head.session_id)
    assert hive_sql(config, fingerprint_query(target), tables_query("default", name),
                    f"INSERT INTO {target} (id, name) VALUES (100000000, 'only in the target')")[:2] == before
    # The stopped run saved no HWM: the next one appends every new row (its source no longer needs to stream slowly).
    with psycopg.connect(data_db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE OR REPLACE VIEW {} AS SELECT * FROM {}").format(
            sql.Identifier(*source.split(".")), sql.Identifier(*table.split("."))))
    assert_finished(repo, start_and_wait(repo, transfer, e2e_queue.slug))
    fingerprint, kept, tables = hive_sql(config, fingerprint_query(target, "id <> 100000000"),
                                         f"SELECT name FROM {target} WHERE id = 100000000",
                                         tables_query("default", name))
    assert [int(value) for value in fingerprint[0]] == list(postgres_fingerprint(data_db_url, table,
                                                                                 '"Id" IS NOT NULL'))
    assert kept == [["only in the target"]]
    assert table_names(tables) == [name]
    assert warehouse_entries(config, name) == [name]


def test_hive_partitioned_target_keeps_untouched_partitions_even_after_a_run_killed_between_its_renames(
    repo, catalog, e2e_queue, pg, hive, data_db_url, hive_metastore_config, ray_head, celery_worker
):
    """Only the partitions present in the new rows are replaced (a NULL partition value included).

    The target starts as a run killed between its two renames leaves it: no target, the old table as
    ``__smr_old`` and a staging table. The run renames the old table back first, so its other partitions survive.
    """
    config = hive_metastore_config
    source, name = unique_table("hv_part"), f"hpart_{secrets.token_hex(4)}"
    target, old, staging = f"default.{name}", f"default.{name}__smr_old", f"default.{name}__smr_staging"
    with psycopg.connect(data_db_url, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE {source} ("Id" integer, "Name" text, "Region" text)')
        conn.execute(f"INSERT INTO {source} VALUES (10, 'new b', 'b'), (11, 'new b too', 'b'), (12, 'new c', 'c'), "
                     f"(13, 'new null', NULL)")
    create = hive_sql(
        config,
        f"CREATE TABLE {target} (id INT, name STRING) PARTITIONED BY (region STRING) STORED AS ORC "
        f"TBLPROPERTIES ('orc.compress' = 'ZLIB')",
        f"INSERT INTO {target} VALUES (1, 'old a', 'a'), (2, 'old a too', 'a'), (4, 'old b', 'b'), "
        f"(7, 'old null', NULL)",
        f"SHOW CREATE TABLE {target} AS SERDE",
        f"ALTER TABLE {target} RENAME TO {old}",
        f"CREATE TABLE {staging} LIKE {old}",
        f"INSERT INTO {staging} VALUES (99, 'from the killed run', 'a')",
        tables_query("default", name),
    )
    assert table_names(create[-1]) == [f"{name}__smr_old", f"{name}__smr_staging"]
    transfer = make_transfer(catalog, e2e_queue, pg, hive, {"type": "postgres", "table_name": source},
                             {"type": "hive", "table_name": target})

    assert_finished(repo, start_and_wait(repo, transfer, e2e_queue.slug))

    rows, partitions, definition, tables = hive_sql(
        config, f"SELECT id, name, region FROM {target} ORDER BY id", f"SHOW PARTITIONS {target}",
        f"SHOW CREATE TABLE {target} AS SERDE", tables_query("default", name))
    assert rows == [["1", "old a", "a"], ["2", "old a too", "a"], ["10", "new b", "b"], ["11", "new b too", "b"],
                    ["12", "new c", "c"], ["13", "new null", None]]
    assert [row[0] for row in partitions] == ["region=__HIVE_DEFAULT_PARTITION__", "region=a", "region=b",
                                              "region=c"]
    assert table_definition(definition) == table_definition(create[2])  # ORC serde, partitioning, properties
    assert table_names(tables) == [name]
    assert warehouse_entries(config, name) == [name]
