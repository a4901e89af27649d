"""Crash recovery with real processes: a worker killed with SIGKILL mid-run, a Ray head restarted mid-run, and the
reconciler settling runs whose worker is gone. Each test has its own head and worker, so nothing else is hit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.ids import actor_name_for
from syncmaster_ray.local_cluster import LocalCeleryWorker, LocalRayHead
from tests.fixtures.postgres_data import checksum, create_source, unique_table
from tests.fixtures.ray_cluster import all_actors, spark_jvms
from tests.fixtures.runs import ended, wait_for
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration]
GiB = 1024**3


@pytest.fixture(scope="module")
def recovery_queue(catalog):
    return catalog.ensure_queue("e2e", "Recovery Queue")


@pytest.fixture
def own_head(app_env):
    with LocalRayHead(env=app_env, num_cpus=4, memory_bytes=6 * GiB) as head:
        yield head


def worker_for(head, queue, app_env, tmp_path, **settings: str) -> LocalCeleryWorker:
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": head.dashboard_url, **settings}
    return LocalCeleryWorker(queues=queue.slug, env=env, log_path=tmp_path / f"worker-{time.monotonic_ns()}.log")


def transferring(repo, run_id: int) -> bool:
    return getattr(repo.get_record(run_id), "phase", None) == "transferring"


def test_worker_killed_mid_run_is_replaced_and_the_same_job_finishes(
    repo, catalog, recovery_queue, pg_connections, data_db_url, own_head, app_env, tmp_path
):
    source, target = unique_table("rc_src"), unique_table("rc_dst")
    create_source(data_db_url, source, rows=300_000)
    run = repo.create_run(make_transfer(catalog, recovery_queue, pg_connections, source, target).id)
    first = worker_for(own_head, recovery_queue, app_env, tmp_path).start()
    send_run_task(run.id, recovery_queue.slug)
    wait_for(lambda: transferring(repo, run.id), what="the transfer phase")

    os.killpg(first.process.pid, signal.SIGKILL)  # no warm shutdown, no ack: the broker requeues the message
    first.process.wait()
    first.process = None
    assert repo.get_run(run.id).status == "STARTED"
    with worker_for(own_head, recovery_queue, app_env, tmp_path):
        finished = wait_for(lambda: ended(repo, run.id), what="the run's end")

    record = repo.get_record(run.id)
    assert finished.status == "FINISHED", record.reason
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
    # Exactly one Ray job ran: one transfer actor (driver) was ever created under the run's name.
    actors = all_actors(own_head.dashboard_url)
    assert [a["name"] for a in actors].count(actor_name_for(record.submission_id)) == 1


def test_ray_head_restarted_mid_run_fails_the_run_with_a_reason_and_keeps_earlier_logs(
    repo, catalog, recovery_queue, pg_connections, data_db_url, own_head, app_env, tmp_path
):
    source = unique_table("rh_src")
    create_source(data_db_url, source, rows=2_000_000)
    run = repo.create_run(make_transfer(catalog, recovery_queue, pg_connections, source, unique_table("rh_dst")).id)
    with worker_for(own_head, recovery_queue, app_env, tmp_path, SYNCMASTER__WORKER__HEARTBEAT_SECONDS="2"):
        send_run_task(run.id, recovery_queue.slug)
        wait_for(lambda: transferring(repo, run.id) and "Placement group strategy" in (
            repo.get_record(run.id).log_tail or ""), what="the transfer phase with a saved log tail")
        old_session = own_head.session_id

        own_head.stop()
        own_head.start()
        restarted = time.monotonic()
        finished = wait_for(lambda: ended(repo, run.id), what="the run's end")

    record = repo.get_record(run.id)
    assert finished.status == "FAILED"
    assert record.error_code == "job_lost" and "Ray head restarted" in record.reason, record.reason
    assert time.monotonic() - restarted < 60
    assert "Placement group strategy" in record.log_tail  # saved while the old head still knew the job
    # The old session's JVMs die with their raylet.
    wait_for(lambda: spark_jvms(old_session) == [], timeout=60, what="no JVM of the old head")


def test_reconcile_settles_runs_whose_worker_is_gone(repo, catalog, recovery_queue, pg_connections, app_env,
                                                    own_head, data_db_url):
    transfer = make_transfer(catalog, recovery_queue, pg_connections, unique_table("x"), unique_table("y"))
    never_submitted, job_gone = repo.create_run(transfer.id), repo.create_run(transfer.id)
    long_ago = repo.get_run(never_submitted.id).created_at - timedelta(hours=1)
    for run in (never_submitted, job_gone):
        assert repo.claim_run(run.id, started_at=long_ago, log_url="http://example/")
    from syncmaster_ray.ids import submission_id_for
    from syncmaster_ray.settings import get_settings

    repo.record(job_gone.id, submission_id=submission_id_for(job_gone.id, get_settings().job_namespace))
    _age_records(data_db_url, app_env, [job_gone.id])
    env = {**os.environ, **app_env, "SYNCMASTER__RAY__ADDRESS": own_head.dashboard_url}

    result = subprocess.run([sys.executable, "-m", "syncmaster_ray.cli", "run", "reconcile", "--stale-seconds", "60"],
                            env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert f"run {never_submitted.id}: FAILED" in result.stdout and f"run {job_gone.id}: FAILED" in result.stdout
    assert repo.get_record(never_submitted.id).error_code == "worker_lost"
    gone = repo.get_record(job_gone.id)
    assert gone.error_code == "job_lost" and "Ray head restarted" in gone.reason
    for run in (never_submitted, job_gone):
        assert repo.get_run(run.id).status == "FAILED" and repo.get_run(run.id).ended_at is not None


def _age_records(data_db_url: str, app_env: dict, run_ids: list[int]) -> None:
    import psycopg

    url = app_env["SYNCMASTER__DATABASE__URL"].replace("postgresql+asyncpg", "postgresql")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE syncmaster_ray_run SET updated_at = now() - interval '1 hour' WHERE run_id = ANY(%s)",
                     (run_ids,))
