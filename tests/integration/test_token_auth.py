"""Ray's token authentication on (``RAY_AUTH_MODE=token``): a head of its own and a Celery worker of its own, both
given the token through their environment, run a real Postgres -> Postgres transfer (Ray job, RayDP's JVMs, the
state API inside the job); the dashboard refuses requests without the token; ``status`` works with it; the token
shows up nowhere we write or Ray shows; a worker without the token fails its run with a reason that says why."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncmaster_ray.local_cluster import GiB, LocalCeleryWorker, LocalRayHead
from tests.fixtures.postgres_data import checksum, create_source, unique_table
from tests.fixtures.ray_cluster import alive_actors, live_placement_groups, spark_jvms
from tests.fixtures.runs import start_and_wait, wait_for
from tests.fixtures.worker import purge
from tests.integration.test_transfer_postgres import job_info, make_transfer

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@pytest.fixture(scope="module")
def token() -> str:
    # Generated here and handed over by environment only: never `ray get-auth-token --generate`, which writes
    # ~/.ray/auth_token and so would turn token authentication on for every later `ray start --head` on this machine.
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def auth_env(token) -> dict[str, str]:
    """What every Ray node and the Celery worker get, besides our settings."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}


@pytest.fixture(scope="module")
def auth_head(app_env, auth_env) -> Iterator[LocalRayHead]:
    """This module's head, with token authentication; like the session's, it must end with nothing left on it."""
    with LocalRayHead(env={**app_env, **auth_env}, num_cpus=4, memory_bytes=6 * GiB) as head:
        yield head
        with pytest.MonkeyPatch.context() as monkeypatch:  # the leak checks ask the state API with the token
            for name, value in auth_env.items():
                monkeypatch.setenv(name, value)
            leaks = {
                "actors": [(a.get("class_name"), a.get("name")) for a in alive_actors(head.dashboard_url)],
                "placement_groups": [g.get("name") for g in live_placement_groups(head.dashboard_url)],
                "jvms": spark_jvms(head.session_id),
            }
    assert leaks == {"actors": [], "placement_groups": [], "jvms": []}, f"leaked on the token-auth head: {leaks}"


@pytest.fixture(scope="module")
def auth_queue(catalog, app_env):
    queue = catalog.ensure_queue("e2e", "Token Auth Queue")
    purge(app_env["SYNCMASTER__BROKER__URL"], [queue.slug])
    return queue


@pytest.fixture
def as_authenticated_client(monkeypatch, auth_env) -> None:
    """This pytest process talks to the head as a client with the token would (tests.fixtures.ray_cluster's
    helpers and job_info read RAY_AUTH_MODE and the token from the environment)."""
    for name, value in auth_env.items():
        monkeypatch.setenv(name, value)


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


def session_texts(session_id: int, root: Path) -> dict[str, str]:
    """Command lines of the head's processes (the dashboard shows them) and every file under its temp dir (Ray's
    logs, which the dashboard serves)."""
    texts = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[3]) == session_id:
                texts[f"cmdline of {proc.name}"] = (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError):
            continue
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 64 * 1024**2:
                texts[str(path)] = path.read_bytes().decode(errors="replace")
        except OSError:
            continue
    return texts


def test_transfer_runs_under_token_auth_and_the_token_stays_secret(
    repo, catalog, auth_queue, pg_connections, data_db_url, app_env, auth_head, auth_env, token, tmp_path,
    as_authenticated_client,
):
    head = auth_head
    source, target = unique_table("src"), unique_table("dst")
    create_source(data_db_url, source, rows=2000)
    transfer = make_transfer(catalog, auth_queue, pg_connections, source, target)
    worker_env = {**app_env, **auth_env, "SYNCMASTER__RAY__ADDRESS": head.dashboard_url}
    worker_log = tmp_path / "worker.log"
    with LocalCeleryWorker(queues=auth_queue.slug, env=worker_env, log_path=worker_log):
        run = start_and_wait(repo, transfer, auth_queue.slug, timeout=300)

    record = repo.get_record(run.id)
    assert run.status == "FINISHED", record.reason
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
    # RayDP's JVMs (app master, executor) joined the authenticated cluster, and the job's own state-API call
    # (where the executors run) authenticated too: without it the run would have no executor nodes.
    assert len(record.metrics["executor_nodes"]) == 1 and record.metrics["driver_node"]
    assert "state API did not answer" not in (record.log_tail or "")

    # The dashboard's Jobs API: refused without the token or with a wrong one, answers with it.
    jobs_url = f"{head.dashboard_url}/api/jobs/"
    assert http_get(jobs_url)[0] == 401
    assert http_get(jobs_url, {"authorization": f"Bearer {secrets.token_hex(32)}"})[0] == 403
    code, body = http_get(jobs_url, head.auth_headers)
    assert code == 200 and record.submission_id in [job["submission_id"] for job in json.loads(body)]

    # `syncmaster-ray status` with the worker's environment; without the token it says what is missing.
    report = status_json(worker_env)
    assert report["capacity"]["error"] is None, report["capacity"]
    assert report["capacity"]["nodes"] == 1 and report["capacity"]["total"]["CPU"] == 4
    refused = status_json(without_ray_auth(worker_env))["capacity"]["error"]
    assert "HTTP 401" in refused and "RAY_AUTH_MODE=token" in refused

    # The token appears nowhere: the job's record on the dashboard, our table, the worker's log, and neither in
    # the head's process command lines nor in Ray's own log files.
    info = job_info(head.dashboard_url, record.submission_id)
    assert info["status"] == "SUCCEEDED"
    texts = {
        "job info": json.dumps(info), "jobs list": body.decode(), "log_tail": record.log_tail or "",
        "job_message": record.job_message or "", "reason": record.reason or "", "metrics": json.dumps(record.metrics),
        "worker log": worker_log.read_text(), **session_texts(head.session_id, Path(head.temp_dir)),
    }
    assert f"Run {run.id} finished in" in texts["log_tail"] and "succeeded" in texts["worker log"]
    assert [name for name, text in texts.items() if token in text] == []
    assert any("java-worker" in name for name in texts), "no JVM log was scanned"

    # Nothing of the run is left on this head.
    wait_for(lambda: spark_jvms(head.session_id) == [], 60, "every Spark JVM to exit")
    wait_for(lambda: alive_actors(head.dashboard_url) == [], 60, "every actor to exit")
    assert live_placement_groups(head.dashboard_url) == []


def test_a_worker_without_the_token_fails_the_run_saying_why(
    repo, catalog, auth_queue, pg_connections, data_db_url, app_env, auth_head, token, tmp_path,
):
    source = unique_table("src")
    create_source(data_db_url, source, rows=10)
    transfer = make_transfer(catalog, auth_queue, pg_connections, source, unique_table("never"))
    env = {**without_ray_auth(app_env), "SYNCMASTER__RAY__ADDRESS": auth_head.dashboard_url}
    worker_log = tmp_path / "worker.log"
    with LocalCeleryWorker(queues=auth_queue.slug, env=env, log_path=worker_log):
        run = start_and_wait(repo, transfer, auth_queue.slug, timeout=120)

    record = repo.get_record(run.id)
    assert (run.status, record.error_code) == ("FAILED", "submit"), record.reason
    assert "token authentication" in record.reason and "RAY_AUTH_MODE=token" in record.reason
    assert token not in record.reason + worker_log.read_text()
    assert http_get(f"{auth_head.dashboard_url}/api/jobs/", auth_head.auth_headers)[0] == 200


def test_compose_head_healthcheck_passes_with_the_token_only(auth_head, auth_env):
    """compose.yaml's ray-head healthcheck, run against this head (its port instead of 8265)."""
    import yaml

    from tests.unit.test_cluster_files import COMPOSE

    test = yaml.safe_load(COMPOSE.read_text())["services"]["ray-head"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    argv = [sys.executable, *[arg.replace("127.0.0.1:8265", f"127.0.0.1:{auth_head.dashboard_port}")
                              for arg in test[2:]]]
    clean = without_ray_auth(dict(os.environ))
    assert subprocess.run(argv, env={**clean, **auth_env}, capture_output=True, timeout=60).returncode == 0
    refused = subprocess.run(argv, env=clean, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "401" in refused.stderr


def test_local_head_stays_without_auth_when_ray_would_turn_it_on_by_itself(tmp_path):
    """Ray 2.60's `ray start --head` turns token authentication on when RAY_AUTH_MODE is unset and
    ~/.ray/auth_token exists; LocalRayHead says RAY_AUTH_MODE=disabled unless told otherwise, so the session's head
    and worker (which follow RAY_AUTH_MODE) keep agreeing on a machine where some `ray.init()` left a token file."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    env = {"HOME": str(home)}
    with LocalRayHead(env=env, num_cpus=1, memory_bytes=1 * GiB) as head:
        assert head.ray_env()["RAY_AUTH_MODE"] == "disabled" and head.auth_headers == {}
        assert http_get(f"{head.dashboard_url}/api/jobs/")[0] == 200
