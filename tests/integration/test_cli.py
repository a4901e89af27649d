"""``syncmaster-ray`` as an operator uses it: create a connection and a transfer, start and watch a run, show it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.fixtures.postgres_data import checksum, create_source, unique_table
from tests.integration.test_transfer_postgres import connection_data

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
CLI = [sys.executable, "-m", "syncmaster_ray.cli"]


def cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env={**os.environ, **env, "COLUMNS": "200"}, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("command", [[], ["db"], ["connection", "create"], ["transfer", "create"], ["run", "start"],
                                     ["run", "show"], ["run", "stop"], ["run", "logs"], ["run", "watch"], ["demo"],
                                     ["db", "upgrade"], ["db", "downgrade"]])
def test_every_command_has_help(command, app_env):
    result = cli(*command, "--help", env=app_env)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and len(result.stdout.splitlines()) > 3


def test_operator_flow_creates_runs_and_shows_a_transfer(app_env, e2e_queue, data_db_url, ray_head, celery_worker):
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url}
    data, auth = connection_data(data_db_url)
    suffix = secrets.token_hex(3)
    source, target = unique_table("cli_src"), unique_table("cli_dst")
    create_source(data_db_url, source, rows=500)

    for name in (f"cli_src_{suffix}", f"cli_dst_{suffix}"):
        result = cli("connection", "create", "--group", "e2e", "--name", name, "--type", "postgres",
                     "--data", json.dumps(data), "--user", auth["user"],
                     env={**env, "SYNCMASTER_RAY_CONNECTION_PASSWORD": auth["password"]})
        assert result.returncode == 0, result.stderr
        assert auth["password"] not in result.stdout + result.stderr
    result = cli("transfer", "create", "--group", "e2e", "--queue", "E2E Queue", "--name", f"cli_{suffix}",
                 "--source", f"cli_src_{suffix}", "--target", f"cli_dst_{suffix}",
                 "--source-params", json.dumps({"type": "postgres", "table_name": source}),
                 "--target-params", json.dumps({"type": "postgres", "table_name": target}), env=env)
    assert result.returncode == 0, result.stderr
    assert e2e_queue.slug in result.stdout

    result = cli("run", "start", f"cli_{suffix}", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "FINISHED" in result.stdout and f"{ray_head.dashboard_url}/#/jobs/" in result.stdout
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
    run_id = result.stdout.split("run ", 1)[1].split()[0]
    shown = cli("run", "show", run_id, env=env)
    assert shown.returncode == 0 and "FINISHED" in shown.stdout and "copy_seconds" in shown.stdout
    logs = cli("run", "logs", run_id, env=env)
    assert logs.returncode == 0 and f"--run-id {run_id}" in logs.stdout
    assert "--- executor raydp-executor-0 (node " in logs.stdout and "INFO Executor" in logs.stdout, logs.stdout
    stop = cli("run", "stop", run_id, env=env)
    assert stop.returncode == 1 and "cannot stop run" in stop.stderr and "FINISHED" in stop.stderr


def test_bad_input_is_one_clear_line_without_traceback(app_env):
    result = cli("transfer", "create", "--name", "x", "--source", "nope", "--target", "nope",
                 "--source-params", "{}", "--target-params", "{}", env=app_env)
    assert result.returncode != 0 and "no connection 'nope'" in result.stderr and "Traceback" not in result.stderr
    result = cli("connection", "create", "--name", "x", "--type", "nosuchdb", "--data", "{}", "--user", "u",
                 env={**app_env, "SYNCMASTER_RAY_CONNECTION_PASSWORD": "p"})
    assert result.returncode == 1 and "unsupported_connection_type" in result.stderr
    assert "unknown connection type 'nosuchdb'" in result.stderr
    result = cli("run", "show", "1", env={**app_env, "SYNCMASTER__DATABASE__URL": "mysql://u:TopSecret9@h/d"})
    assert result.returncode == 1 and "must be a PostgreSQL URL" in result.stderr
    assert "TopSecret9" not in result.stdout + result.stderr
