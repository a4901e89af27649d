"""Bad input through the whole pipeline: each case ends its run FAILED with a specific reason (never a traceback,
never a secret), or is skipped without touching anything when there is no run to act on; and the same worker then
takes the next run. Formats without their jar are covered in test_transfer_files."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.db.models import Status
from syncmaster_ray.ids import submission_id_for
from syncmaster_ray.settings import get_settings
from tests.fixtures.hostile_mysql import HostileMySQLServer
from tests.fixtures.postgres_data import CONNECTION_PASSWORD, checksum, connection_data, create_source, unique_table
from tests.fixtures.runs import start_and_wait, wait_for, wait_for_end
from tests.fixtures.secret_scan import MARIADB_PASSWORD, WRONG_PASSWORD
from tests.integration.test_cli import cli
from tests.integration.test_transfer_postgres import job_info, make_transfer

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
MARIADB_USER = f"smr_badpw_{secrets.token_hex(3)}"
MISSING_TABLE = unique_table("missing")
MISSING_SCHEMA = f"nope_{secrets.token_hex(3)}"
# A source whose rows fail only when an executor reads them: the driver's schema query sees no row.
EXPLODING_VIEW = unique_table("bad_boom")


@dataclass(frozen=True)
class BadInput:
    """How to spoil a good transfer, and the code and reason fragments its run must end with."""

    spoil: str
    code: str
    reason_parts: tuple[str, ...]


CASES = {
    "missing auth_data": BadInput("delete_source_auth", "credentials", ("has no auth_data row",)),
    "wrong Fernet key": BadInput("source_with_other_key", "credentials",
                                 ("cannot be decrypted", "SYNCMASTER__ENCRYPTION__SECRET_KEY")),
    "source_params not an object": BadInput("source_params_list", "invalid_params",
                                            ("source_params must be a JSON object", "list")),
    "target_params without table_name": BadInput("target_params_no_table", "invalid_params",
                                                 ("table_name", "None")),
    "resources malformed": BadInput("resources_text", "invalid_params", ("resources", "max_parallel_tasks")),
    "params of another type than the connection": BadInput(
        "source_params_mysql", "invalid_params", ("source_params.type is 'mysql'", "of type 'postgres'")),
    "unknown connection type": BadInput("source_type_unknown", "unsupported_connection_type", ("nosuchdb",)),
    "missing source table": BadInput("source_table_missing", "source", (
        f"reading {MISSING_TABLE} from postgres connection", MISSING_TABLE.split(".")[1], "does not exist")),
    "missing target schema": BadInput("target_schema_missing", "target", (
        f"the target schema '{MISSING_SCHEMA}' does not exist in postgres connection",)),
    "source failing on the executor": BadInput("source_fails_on_executor", "source", (
        "reading the source with COPY failed", "division by zero")),
    "unreachable host": BadInput("source_port_closed", "source", ("Connection is unavailable", "refused")),
    "wrong password": BadInput("mariadb_wrong_password", "source", ("Access denied", MARIADB_USER)),
    # A transfer author reaching for the node: the worker's Fernet key through reflection, a node file by path.
    "sql reads the node": BadInput("sql_reads_the_node", "forbidden_sql", (
        "the sql transformation may not use", "reflect()", "reading a path (text./etc/hostname)")),
    "hostile MySQL server": BadInput("mysql_hostile_server", "source", ("Usage of LOCAL INFILE is disabled",)),
    "sql runs a program": BadInput("sql_runs_a_program", "forbidden_sql", (
        "TRANSFORM ... USING", "the relation public.pg_authid")),
}
HOSTILE_SQL = {
    "sql_reads_the_node": "SELECT s.*, reflect('java.lang.System', 'getenv', 'SYNCMASTER__ENCRYPTION__SECRET_KEY') "
                          "AS k1, (SELECT first(value) FROM text.`/etc/hostname`) AS k2 FROM source s",
    "sql_runs_a_program": "SELECT TRANSFORM(*) USING 'cat /etc/hostname' AS (x) FROM source UNION ALL "
                          "SELECT rolpassword FROM public.pg_authid",
}


@pytest.fixture(scope="module")
def mariadb_user():
    """A MariaDB account with a real password: Postgres here trusts every login, so a wrong password needs MariaDB."""
    def sql(statement: str) -> None:
        subprocess.run(["mariadb", "-uroot", "-e", statement], check=True)

    sql(f"CREATE USER '{MARIADB_USER}'@'%' IDENTIFIED BY '{MARIADB_PASSWORD}'")
    try:
        yield MARIADB_USER
    finally:
        sql(f"DROP USER IF EXISTS '{MARIADB_USER}'@'%'")


@pytest.fixture(scope="module")
def exploding_view(data_db_url) -> str:
    from sqlalchemy import create_engine

    engine = create_engine(data_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE VIEW {EXPLODING_VIEW} AS SELECT g AS id, 100 / (g - 50) AS ratio "
                              "FROM generate_series(1, 100) AS g"))
    finally:
        engine.dispose()
    return EXPLODING_VIEW


@pytest.fixture(scope="module")
def node_file(tmp_path_factory) -> tuple[str, str]:
    """A file of the node with a random marker: what a hostile server asks the driver for."""
    marker = f"node-secret-{secrets.token_hex(8)}"
    path = tmp_path_factory.mktemp("node") / "settings"
    path.write_text(f"SYNCMASTER__ENCRYPTION__SECRET_KEY={marker}\n")
    return str(path), marker


@pytest.fixture(scope="module")
def hostile_mysql(node_file):
    with HostileMySQLServer(node_file[0]) as server:
        yield server


@pytest.fixture(scope="module")
def source_table(data_db_url) -> str:
    table = unique_table("bad_src")
    create_source(data_db_url, table, rows=100)
    return table


def new_connection(catalog, app_env, type_: str, data: dict[str, Any], auth: dict[str, Any],
                   secret_key: str | None = None):
    return catalog.create_connection(group_name="e2e", name=f"bad_{secrets.token_hex(4)}", type_=type_, data=data,
                                     auth=auth, secret_key=secret_key or app_env["SYNCMASTER__ENCRYPTION__SECRET_KEY"])


@pytest.fixture(scope="module")
def spoiled_transfer(catalog, engine, app_env, e2e_queue, pg_connections, data_db_url, source_table, request):
    """A good Postgres -> Postgres transfer, then spoiled as its case says."""

    def build(spoil: str):
        transfer = make_transfer(catalog, e2e_queue, pg_connections, source_table, unique_table("bad_dst"))
        data, auth = connection_data(data_db_url)
        spoilers: dict[str, Callable[[], dict[str, Any]]] = {
            "delete_source_auth": lambda: {"source_connection_id": new_connection(catalog, app_env, "postgres",
                                                                                  data, auth).id},
            "source_with_other_key": lambda: {"source_connection_id": new_connection(
                catalog, app_env, "postgres", data, auth, secret_key=Fernet.generate_key().decode()).id},
            "source_params_list": lambda: {"source_params": ["postgres", source_table]},
            "source_table_missing": lambda: {"source_params": {"type": "postgres", "table_name": MISSING_TABLE}},
            "target_schema_missing": lambda: {"target_params": {"type": "postgres",
                                                                "table_name": f"{MISSING_SCHEMA}.orders"}},
            "source_fails_on_executor": lambda: {"source_params": {
                "type": "postgres", "table_name": request.getfixturevalue("exploding_view")}},
            "source_params_mysql": lambda: {"source_params": {"type": "mysql", "table_name": "db.orders"}},
            "target_params_no_table": lambda: {"target_params": {"type": "postgres"}},
            "resources_text": lambda: {"resources": {"max_parallel_tasks": "lots", "cpu_cores_per_task": 1,
                                                     "ram_bytes_per_task": 1024**3}},
            "source_type_unknown": lambda: {"source_connection_id": new_connection(catalog, app_env, "nosuchdb",
                                                                                   data, auth).id},
            "source_port_closed": lambda: {"source_connection_id": new_connection(
                catalog, app_env, "postgres", {**data, "port": 9}, auth).id},
            **{spoil: lambda spoil=spoil: {"transformations": [{"type": "sql", "query": HOSTILE_SQL[spoil]}]}
               for spoil in HOSTILE_SQL},
            "mysql_hostile_server": lambda: {
                "source_connection_id": new_connection(
                    catalog, app_env, "mysql", {"host": "127.0.0.1", "port": request.getfixturevalue(
                        "hostile_mysql").port, "database_name": "shop", "additional_params": {
                            "allowLocalInfile": "true", "allowLoadLocalInfile": "true"}},
                    {"type": "basic", "user": "etl", "password": MARIADB_PASSWORD},
                ).id,
                "source_params": {"type": "mysql", "table_name": "shop.orders"},
            },
            "mariadb_wrong_password": lambda: {
                "source_connection_id": new_connection(
                    catalog, app_env, "mysql", {"host": "127.0.0.1", "port": 3306, "database_name": "mysql",
                                                "additional_params": {}},
                    {"type": "basic", "user": request.getfixturevalue("mariadb_user"), "password": WRONG_PASSWORD},
                ).id,
                "source_params": {"type": "mysql", "table_name": "mysql.user"},
            },
        }
        changes = spoilers[spoil]()
        with engine.begin() as conn:
            for column, value in changes.items():
                statement = text(f"UPDATE transfer SET {column} = :value WHERE id = :id")
                if not column.endswith("_id"):
                    statement = text(f"UPDATE transfer SET {column} = CAST(:value AS json) WHERE id = :id")
                    value = json.dumps(value)
                conn.execute(statement, {"value": value, "id": transfer.id})
            if spoil == "delete_source_auth":
                conn.execute(text("DELETE FROM auth_data WHERE connection_id = :id"),
                             {"id": changes["source_connection_id"]})
        return transfer

    return build


@pytest.fixture(scope="module")
def bad_runs(repo, e2e_queue, spoiled_transfer, ray_head, celery_worker) -> dict[str, tuple[int, str | None]]:
    """One run per case, all sent at once as a burst of bad definitions would come: each case waits for its own,
    and the worker takes them as they come (two at a time here), not one per test. With each run, its target."""
    transfers = {case.spoil: spoiled_transfer(case.spoil) for case in CASES.values()}
    runs = {spoil: (repo.create_run(transfer.id).id, (transfer.target_params or {}).get("table_name"))
            for spoil, transfer in transfers.items()}
    for run_id, _ in runs.values():
        send_run_task(run_id, e2e_queue.slug)
    return runs


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_fails_the_run_with_its_specific_reason(case, repo, bad_runs, app_env, data_db_url):
    run_id, target = bad_runs[case.spoil]
    run = wait_for_end(repo, run_id, timeout=600)

    record = repo.get_record(run.id)
    assert (run.status, record.error_code) == ("FAILED", case.code), record.reason
    assert run.ended_at is not None
    for part in case.reason_parts:
        assert part in record.reason, record.reason
    assert "Traceback" not in record.reason and "\n" not in record.reason
    for secret in (CONNECTION_PASSWORD, WRONG_PASSWORD, MARIADB_PASSWORD,
                   app_env["SYNCMASTER__ENCRYPTION__SECRET_KEY"]):
        assert secret not in f"{record.reason} {record.job_message} {record.log_tail}"
    if target:  # nothing was written: the target table was never made
        assert not table_exists(data_db_url, target)


def test_an_error_on_the_executor_side_is_in_run_logs(repo, bad_runs, app_env):
    """Executors log on their own nodes, not to the job's log: the run keeps the end of each one's log, and
    `run logs` shows it after the job's own tail."""
    run_id, _ = bad_runs["source_fails_on_executor"]
    wait_for_end(repo, run_id, timeout=600)

    logs = cli("run", "logs", str(run_id), env=app_env, timeout=120)

    assert logs.returncode == 0, logs.stderr
    job_part, executor_part = logs.stdout.split("--- executor raydp-executor-0 (node ", 1)
    assert f"Run {run_id} failed [source]" in job_part
    # Spark's executor reports the failed task in its own log, with the source's error.
    assert "ERROR Executor" in executor_part and "division by zero" in executor_part, executor_part[-3000:]


def table_exists(db_url: str, table: str) -> bool:
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": table})
    finally:
        engine.dispose()


def test_a_hostile_mysql_server_asking_for_a_node_file_gets_nothing(repo, bad_runs, hostile_mysql, node_file):
    """The connection's own params ask for local infile; the worker forces it off, so the driver refuses ("Usage of
    LOCAL INFILE is disabled", the case's reason) and sends nothing. (MariaDB Connector/J 2.7.6 would refuse a file
    its own query did not name even with local infile on; MySQL's Connector/J, which operators may supply, would
    send it: the forced switch is what protects both.)"""
    wait_for_end(repo, bad_runs["mysql_hostile_server"][0], timeout=600)
    assert hostile_mysql.requests_sent >= 1  # the server did ask
    assert node_file[1].encode() not in b"".join(hostile_mysql.received), hostile_mysql.received


@pytest.mark.parametrize("make_run", ["unknown run id", "run already FINISHED"])
def test_a_task_without_a_created_run_is_skipped_and_submits_no_job(make_run, repo, catalog, e2e_queue,
                                                                   pg_connections, ray_head, celery_worker):
    if make_run == "unknown run id":
        run_id = 2_000_000_000 + secrets.randbelow(100_000_000)
    else:
        run_id = repo.create_run(make_transfer(catalog, e2e_queue, pg_connections, unique_table("s"),
                                               unique_table("t")).id).id
        assert repo.end_run(run_id, Status.FINISHED, from_statuses=(Status.CREATED.value,))
    log_size = celery_worker.log_path.stat().st_size
    send_run_task(run_id, e2e_queue.slug)

    wait_for(lambda: f"Run {run_id} " in celery_worker.log_path.read_text(errors="replace")[log_size:], 60,
             "the worker to take the task")
    log = celery_worker.log_path.read_text(errors="replace")[log_size:]
    assert ("not found: nothing to do" if make_run == "unknown run id" else "not ours to run, skipped") in log
    time.sleep(2)  # a wrongly submitted job would show up by now
    with pytest.raises(urllib.error.HTTPError) as missing:
        job_info(ray_head.dashboard_url, submission_id_for(run_id, get_settings().job_namespace))
    assert missing.value.code == 404
    if make_run != "unknown run id":
        assert repo.get_run(run_id).status == "FINISHED" and repo.get_record(run_id) is None


def test_after_every_bad_input_the_same_worker_takes_the_next_run(repo, catalog, e2e_queue, pg_connections,
                                                                   data_db_url, source_table, celery_worker,
                                                                   bad_runs):
    assert [wait_for_end(repo, run_id).status for run_id, _ in bad_runs.values()] == ["FAILED"] * len(bad_runs)
    target = unique_table("after_bad")
    run = start_and_wait(repo, make_transfer(catalog, e2e_queue, pg_connections, source_table, target),
                         e2e_queue.slug)
    assert run.status == "FINISHED", repo.get_record(run.id).reason
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source_table, lowercase=False)
    assert celery_worker.process.poll() is None
