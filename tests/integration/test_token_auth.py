"""Ray's token authentication (``RAY_AUTH_MODE=token``). The session head runs with it, so every run of the suite
shows that the worker, the job, RayDP's JVMs and the job's state-API call authenticate, and the secret scan looks for
the token everywhere. Here: the dashboard and ``status`` refuse a client without the token; a worker without it fails
its run with a reason that says why; compose's healthcheck needs it; a local head has a token of its own."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from syncmaster_ray_dev.local_cluster import LocalCeleryWorker, LocalRayHead
from tests.fixtures.postgres_data import create_source, unique_table
from tests.fixtures.runs import start_and_wait, wait_for
from tests.fixtures.worker import purge
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@pytest.fixture(scope="module")
def auth_queue(catalog, app_env):
    queue = catalog.ensure_queue("e2e", "Token Auth Queue")
    purge(app_env["SYNCMASTER__BROKER__URL"], [queue.slug])
    return queue


def without_ray_auth(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name not in AUTH_VARIABLES}


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def status_json(env: dict[str, str]) -> dict:
    """``syncmaster-ray status --json`` as its own process with exactly ``env`` for Ray's variables."""
    result = subprocess.run([sys.executable, "-m", "syncmaster_ray.cli", "status", "--json", "--failures", "1"],
                            env={**without_ray_auth(dict(os.environ)), **env}, capture_output=True, text=True,
                            timeout=120, check=True)
    return json.loads(result.stdout)


def test_the_dashboard_and_status_refuse_a_client_without_the_token(ray_head, app_env):
    """The session head runs with token authentication (every run of the suite goes through it: the worker, the
    job, RayDP's JVMs and the job's state-API call authenticate). Without the token, or with a wrong one, the
    dashboard's Jobs API refuses; `status` says which variables are missing."""
    jobs_url = f"{ray_head.dashboard_url}/api/jobs/"
    assert http_get(jobs_url)[0] == 401
    assert http_get(jobs_url, {"authorization": f"Bearer {secrets.token_hex(32)}"})[0] == 403
    assert http_get(jobs_url, ray_head.auth_headers)[0] == 200

    worker_env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url}
    # (Right after a head starts its node may not be listed yet.)
    report = wait_for(lambda: (r := status_json(worker_env))["capacity"]["nodes"] and r, 60, "the head's node")
    assert report["capacity"]["error"] is None, report["capacity"]
    assert report["capacity"]["nodes"] == 1 and report["capacity"]["total"]["CPU"] == 4
    refused = status_json(without_ray_auth(worker_env))["capacity"]["error"]
    assert "HTTP 401" in refused and "RAY_AUTH_MODE=token" in refused


def test_a_worker_without_the_token_fails_the_run_saying_why(
    repo, catalog, auth_queue, pg_connections, data_db_url, app_env, ray_head, tmp_path, monkeypatch
):
    source = unique_table("src")
    create_source(data_db_url, source, rows=10)
    transfer = make_transfer(catalog, auth_queue, pg_connections, source, unique_table("never"))
    for name in AUTH_VARIABLES:  # the worker inherits this process's environment too
        monkeypatch.delenv(name, raising=False)
    env = {**without_ray_auth(app_env), "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url}
    worker_log = tmp_path / "worker.log"
    with LocalCeleryWorker(queues=auth_queue.slug, env=env, log_path=worker_log):
        run = start_and_wait(repo, transfer, auth_queue.slug, timeout=120)

    record = repo.get_record(run.id)
    assert (run.status, record.error_code) == ("FAILED", "submit"), record.reason
    assert "token authentication" in record.reason and "RAY_AUTH_MODE=token" in record.reason
    assert app_env["RAY_AUTH_TOKEN"] not in record.reason + worker_log.read_text()


def test_compose_head_healthcheck_passes_with_the_token_only(ray_head, app_env):
    """compose.yaml's ray-head healthcheck, run against this head (its port instead of 8265)."""
    import yaml

    from tests.unit.test_cluster_files import COMPOSE

    test = yaml.safe_load(COMPOSE.read_text())["services"]["ray-head"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    argv = [sys.executable, *[arg.replace("127.0.0.1:8265", f"127.0.0.1:{ray_head.dashboard_port}")
                              for arg in test[2:]]]
    clean = without_ray_auth(dict(os.environ))
    auth_env = {name: app_env[name] for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    assert subprocess.run(argv, env={**clean, **auth_env}, capture_output=True, timeout=60).returncode == 0
    refused = subprocess.run(argv, env=clean, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "401" in refused.stderr


def test_a_local_head_has_a_token_of_its_own_unless_told_otherwise(tmp_path, monkeypatch):
    """The demo's and the tests' heads: token authentication by default, with a token of the head's own (never
    ~/.ray/auth_token, which some `ray.init()` may have left), kept in a file for the node and named to clients;
    RAY_AUTH_MODE=disabled turns it off explicitly (Ray would otherwise turn it on by itself when
    ~/.ray/auth_token exists). What `ray start` does with these variables is what the session's head shows: it
    refuses a client without the token (above)."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    stray = secrets.token_hex(32)
    (home / ".ray" / "auth_token").write_text(stray)
    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    head = LocalRayHead(env={"HOME": str(home)})
    disabled = LocalRayHead(env={"HOME": str(home), "RAY_AUTH_MODE": "disabled"})
    try:
        node, client = head.ray_env(), head.client_env()
        assert node["RAY_AUTH_MODE"] == "token" and "RAY_AUTH_TOKEN" not in node  # the node: a file only
        assert client == {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": node["RAY_AUTH_TOKEN_PATH"]}
        assert Path(client["RAY_AUTH_TOKEN_PATH"]).read_text().strip() == head.generated_token != stray
        assert head.auth_headers == {"authorization": f"Bearer {head.generated_token}"}
        assert disabled.client_env() == {"RAY_AUTH_MODE": "disabled"} and disabled.auth_headers == {}
    finally:
        head.stop()  # never started: removes its directories
        disabled.stop()
