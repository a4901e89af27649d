"""Misconfigured nodes, told apart in one line. A Ray job refuses to run on a node whose environment holds our
secrets: every process of a node inherits its environment, and some of them (Spark's executors) run SQL that
SyncMaster users wrote. A job interpreter without our package fails the run naming the setting.

The job entrypoint runs here as Ray would run it, with this session's settings and token in its environment (a
node started without ``syncmaster-ray node exec``). Every other run of the suite is the positive twin: the session's
heads keep them in files, and the secret scan reads every process's environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from syncmaster_ray.db.models import Status
from syncmaster_ray.db.repository import utcnow
from tests.fixtures.postgres_data import unique_table
from tests.integration.test_transfer_postgres import make_transfer, node_secrets

pytestmark = [pytest.mark.integration]
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's: no syncmaster-ray, no SQLAlchemy


def test_a_job_on_a_node_whose_environment_holds_secrets_fails_without_starting_anything(
    repo, catalog, pg_connections, app_env
):
    queue = catalog.ensure_queue("e2e", "Node Env Queue")
    run = repo.create_run(make_transfer(catalog, queue, pg_connections, unique_table("x"), unique_table("y")).id)
    assert repo.claim_run(run.id, started_at=utcnow(), log_url="http://example/", submission_id=f"smr-env-{run.id}",
                          supervisor="this-test")
    env = {**os.environ, **app_env, "RAY_ADDRESS": "127.0.0.1:9"}  # never reached: it refuses before ray.init

    job = subprocess.run([sys.executable, "-m", "syncmaster_ray.job", "--run-id", str(run.id)], env=env,
                         capture_output=True, text=True, timeout=120)

    record = repo.get_record(run.id)
    assert job.returncode == 1, job.stderr[-2000:]
    assert record.error_code == "config", record.reason
    for name in ("SYNCMASTER__DATABASE__URL", "SYNCMASTER__ENCRYPTION__SECRET_KEY", "SYNCMASTER__BROKER__URL",
                 "RAY_AUTH_TOKEN", "syncmaster-ray node exec", "SYNCMASTER_RAY_ENV_FILE"):
        assert name in record.reason, record.reason
    shown = job.stdout + job.stderr + record.reason
    assert [name for name, secret in node_secrets(app_env).items() if secret in shown] == []
    repo.finish_run(run.id, Status.FAILED, error_code=record.error_code, reason=record.reason)  # no worker here


def test_a_job_interpreter_without_the_package_fails_the_run_in_one_line_naming_the_setting(
    repo, catalog, pg_connections, app_env, ray_head, tmp_path
):
    """A head whose job interpreter lacks syncmaster-ray (here: the system Python, as a head started without the
    venv on its PATH would run it): the job dies before it can record anything, and the run's reason says what to
    fix instead of carrying a traceback."""
    from syncmaster_ray_dev.local_cluster import LocalCeleryWorker
    from tests.fixtures.runs import start_and_wait

    queue = catalog.ensure_queue("e2e", "Job Python Queue")
    transfer = make_transfer(catalog, queue, pg_connections, unique_table("x"), unique_table("y"))
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url, "SYNCMASTER__RAY__JOB_PYTHON": SYSTEM_PYTHON}
    with LocalCeleryWorker(queues=queue.slug, env=env, log_path=tmp_path / "worker.log"):
        run = start_and_wait(repo, transfer, queue.slug, timeout=300)

    record = repo.get_record(run.id)
    assert (run.status, record.error_code) == ("FAILED", "config"), record.reason
    assert "No module named" in record.reason and "SYNCMASTER__RAY__JOB_PYTHON" in record.reason
    assert SYSTEM_PYTHON in record.reason and "Traceback" not in record.reason and "\n" not in record.reason
