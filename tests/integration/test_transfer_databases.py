"""Database types end to end beside Postgres, and the incremental strategy, through the whole pipeline."""

from __future__ import annotations

import secrets
import subprocess

import psycopg
import pytest
from psycopg import sql

from tests.fixtures.mysql_data import mariadb, mysql_fingerprint, postgres_fingerprint, table_exists, tables_like
from tests.fixtures.postgres_data import checksum, create_source, unique_table
from tests.fixtures.ray_cluster import spark_jvms
from tests.fixtures.runs import ended, start_and_wait, wait_for
from tests.integration.test_transfer_postgres import connection_data

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

    source, target = unique_table("inc_src"), unique_table("inc_dst")
    create_source(data_db_url, source, rows=100)
    transfer = make_transfer(catalog, e2e_queue, pg, pg, {"type": "postgres", "table_name": source},
                             {"type": "postgres", "table_name": target},
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


# Enough rows that the write into MariaDB is still going when the stop lands.
MYSQL_STOP_ROWS = 500_000


def test_mysql_target_stopped_mid_write_is_left_as_it_was_and_the_next_run_replaces_it(
    repo, catalog, e2e_queue, pg, mysql, data_db_url, ray_head, celery_worker
):
    """Rows go to a staging table renamed in at the end: stopped mid-write, the old MySQL target is untouched."""
    from syncmaster_ray.cli.run import send_run_task
    from syncmaster_ray.handlers.mysql import staging_table_for

    source, name = unique_table("my_src"), f"dst_{secrets.token_hex(4)}"
    target = f"{MYSQL_DB}.{name}"
    create_source(data_db_url, source, rows=MYSQL_STOP_ROWS)
    with psycopg.connect(data_db_url, autocommit=True) as conn:  # MySQL TIMESTAMPs end in 2038
        conn.execute(f"UPDATE {source} SET local_ts = local_ts - (\"Id\" / 100000 * 100000) * interval '17 minutes', "
                     f"event_at = event_at - (\"Id\" / 100000 * 100000) * interval '1 hour' WHERE \"Id\" > 100000")
    mariadb(f"CREATE TABLE {target} (id INT PRIMARY KEY, name TEXT); "
            f"INSERT INTO {target} SELECT seq, CONCAT('old ', seq) FROM {MYSQL_DB}.seq_1_to_50")
    before = mariadb(f"SELECT * FROM {target} ORDER BY id; CHECKSUM TABLE {target}")
    transfer = make_transfer(catalog, e2e_queue, pg, mysql, {"type": "postgres", "table_name": source},
                             {"type": "mysql", "table_name": target})
    run = repo.create_run(transfer.id)
    send_run_task(run.id, e2e_queue.slug)
    wait_for(lambda: table_exists(staging_table_for(target)), 300, "the write to start")

    repo.request_stop(run.id)
    final = wait_for(lambda: ended(repo, run.id), 60, "the run to end")

    assert final.status == "STOPPED", repo.get_record(run.id).reason
    assert mariadb(f"SELECT * FROM {target} ORDER BY id; CHECKSUM TABLE {target}") == before
    wait_for(lambda: spark_jvms(ray_head.session_id) == [], 30, "every Spark JVM to exit")
    # The next run drops what the killed one left and renames its own staging table in.
    again = start_and_wait(repo, transfer, e2e_queue.slug)
    assert_finished(repo, again)
    assert mysql_fingerprint(target) == postgres_fingerprint(data_db_url, source)
    assert tables_like(MYSQL_DB, name) == [name]  # neither __smr_staging nor __smr_old is left


def test_mysql_incremental_run_appends_to_the_rows_already_there(
    repo, catalog, e2e_queue, pg, mysql, data_db_url, ray_head, celery_worker
):
    source, name = unique_table("my_inc"), f"inc_{secrets.token_hex(4)}"
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
