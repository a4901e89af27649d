"""A Ray job refuses to run on a node whose environment holds our secrets: every process of a node inherits its
environment, and some of them (Spark's executors) run SQL that SyncMaster users wrote.

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
