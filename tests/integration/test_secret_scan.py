"""After every other test of the session (marked ``last``): look for every secret the suite used in everything the
session's Ray head and worker kept: the dashboard's job records and job logs, every Ray/Spark log file of the head's
session, our table and SyncMaster's run rows, and the Celery worker's log. None may be found."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from syncmaster_ray.ray_client import dashboard_auth_headers
from tests.fixtures.file_servers import ONETL_PASSWORD, S3_SECRET_KEY
from tests.fixtures.postgres_data import CONNECTION_PASSWORD, create_source, unique_table
from tests.fixtures.ray_cluster import session_command_lines, session_environments, state_api_texts
from tests.fixtures.runs import start_and_wait
from tests.integration.test_bad_input import MARIADB_PASSWORD, WRONG_PASSWORD
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration, pytest.mark.last]


@pytest.fixture(scope="module")
def suite_secrets(app_env) -> dict[str, str]:
    return {
        "connection password": CONNECTION_PASSWORD,
        "file servers' password": ONETL_PASSWORD,
        "S3 secret key": S3_SECRET_KEY,
        "MariaDB password (right and wrong)": MARIADB_PASSWORD,
        "wrong MariaDB password": WRONG_PASSWORD,
        "Fernet key": app_env["SYNCMASTER__ENCRYPTION__SECRET_KEY"],
        "database URL": app_env["SYNCMASTER__DATABASE__URL"],
        "database URL (sync form)": app_env["SYNCMASTER__DATABASE__URL"].replace("+asyncpg", ""),
        "database password": urllib.parse.urlsplit(app_env["SYNCMASTER__DATABASE__URL"]).password or "",
        "Ray token": app_env["RAY_AUTH_TOKEN"],
    }


@pytest.fixture(scope="module", autouse=True)
def one_run_at_least(repo, catalog, e2e_queue, pg_connections, data_db_url, ray_head, celery_worker, engine) -> None:
    """A transfer with a password, so the scan has something to look through even when this module runs alone
    (after the rest of the suite, its runs are there already)."""
    with engine.connect() as conn:
        if conn.scalar(text("SELECT count(*) FROM run WHERE status = 'FINISHED'")) >= 3:
            return
    source = unique_table("scan_src")
    create_source(data_db_url, source, rows=100)
    transfer = make_transfer(catalog, e2e_queue, pg_connections, source, unique_table("scan_dst"))
    assert start_and_wait(repo, transfer, e2e_queue.slug).status == "FINISHED"


def get_json(url: str) -> object:
    request = urllib.request.Request(url, headers=dashboard_auth_headers())  # the session's heads need the token
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def dashboard_texts(dashboard_url: str) -> Iterator[tuple[str, str]]:
    jobs = get_json(f"{dashboard_url}/api/jobs/")
    yield "dashboard job list", json.dumps(jobs)
    for job in jobs:
        if job.get("submission_id"):
            logs = get_json(f"{dashboard_url}/api/jobs/{job['submission_id']}/logs")["logs"]
            yield f"dashboard logs of {job['submission_id']}", logs


def ray_log_files(temp_dir: str) -> Iterator[tuple[str, str]]:
    for path in sorted(Path(temp_dir).glob("session_*/logs/**/*")):
        if path.is_file() and not path.is_symlink():
            yield str(path), path.read_text(errors="replace")


def table_texts(engine) -> Iterator[tuple[str, str]]:
    with engine.connect() as conn:
        for table in ("syncmaster_ray_run", "run"):
            for number, (row,) in enumerate(conn.execute(text(f"SELECT row_to_json(r)::text FROM {table} r"))):
                yield f"{table} row {number}", row


def leaks(texts: Iterable[tuple[str, str]], secrets: dict[str, str]) -> tuple[list[str], int, int]:
    found, sources, size = [], 0, 0
    for where, content in texts:
        sources, size = sources + 1, size + len(content)
        found += [f"{name} in {where}" for name, value in secrets.items() if value and value in content]
    return found, sources, size


def test_no_secret_of_the_suite_is_on_the_dashboard(ray_head, suite_secrets):
    found, jobs, _ = leaks(dashboard_texts(ray_head.dashboard_url), suite_secrets)
    assert jobs >= 2  # the job list and at least one job's logs
    assert found == []


def test_no_secret_of_the_suite_is_in_the_state_api(ray_head, suite_secrets):
    """Actors, tasks, placement groups and jobs, with their names, arguments and runtime envs (the dashboard's
    Cluster, Actors and Jobs pages show them)."""
    found, kinds, size = leaks(state_api_texts(ray_head.dashboard_url), suite_secrets)
    assert kinds == 4 and size > 10_000, (kinds, size)
    assert found == []


def test_no_secret_of_the_suite_is_on_a_command_line_of_the_ray_session(ray_head, suite_secrets):
    """``/proc/<pid>/cmdline`` of every process of the head's session: any local user (and the dashboard's
    node view) can read them."""
    lines = session_command_lines(ray_head.session_id)
    found, processes, _ = leaks([(f"process: {line[:120]}", line) for line in lines], suite_secrets)
    assert processes >= 5 and any("raylet" in line for line in lines), lines
    assert found == []


def test_no_secret_of_the_suite_is_in_the_environment_of_a_process_of_the_ray_session(ray_head, suite_secrets):
    """``/proc/<pid>/environ`` of every process of the head's session: every process of a node inherits the
    node's environment, Spark executors running users' SQL among them (a mid-run twin looks at the run's JVMs:
    ``test_transfer_postgres.py``'s stop-mid-write test)."""
    environments = session_environments(ray_head.session_id)
    found, processes, _ = leaks([(f"environment of: {line[:120]}", env) for line, env in environments],
                                suite_secrets)
    assert processes >= 5 and any("SYNCMASTER_RAY_ENV_FILE" in env for _, env in environments)
    assert found == []


def test_no_secret_of_the_suite_is_in_any_log_of_the_ray_session(ray_head, suite_secrets):
    found, files, size = leaks(ray_log_files(ray_head.temp_dir), suite_secrets)
    assert files > 10 and size > 100_000, (files, size)
    assert found == []


def test_no_secret_of_the_suite_is_in_our_table_or_the_run_rows(engine, suite_secrets):
    found, rows, _ = leaks(table_texts(engine), suite_secrets)
    assert rows >= 2
    assert found == []


def test_no_secret_of_the_suite_is_in_the_worker_log(celery_worker, suite_secrets):
    found, _, size = leaks([("the Celery worker log", celery_worker.log_path.read_text(errors="replace"))],
                           suite_secrets)
    assert size > 1_000
    assert found == []
