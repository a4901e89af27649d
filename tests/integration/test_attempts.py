"""Attempts: a run that fails transiently is tried again, each attempt a Ray job of its own, only when it is safe;
permanent failures and partial writes never are. The supervisor runs in this process on the session head; its
jobs are stand-ins (``tests/fixtures/flaky_job.py``) that fail the way a real job records a failure, or real jobs
(the long-tier test kills a real transfer actor mid-write)."""

# ruff: noqa: F811 (fixtures imported from the modules that define them are parameters of the tests here)
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.db.models import Status
from syncmaster_ray.handlers.postgres import staging_table_for
from syncmaster_ray.ids import actor_name_for
from syncmaster_ray.ray_client import JobState, RayJobs
from syncmaster_ray_dev.local_cluster import LocalCeleryWorker
from tests.fixtures.postgres_data import checksum, relation_bytes
from tests.fixtures.ray_cluster import alive_actors
from tests.fixtures.runs import wait_for, wait_for_end
from tests.integration.test_mid_run_failures import (  # noqa: F401
    assert_nothing_of_the_run_is_left,
    slow_source,
    source_and_target,
)
from tests.integration.test_supervision import claim_as, new_run, real_id, supervisor_for  # noqa: F401
from tests.integration.test_transfer_postgres import job_info, make_transfer

pytestmark = [pytest.mark.integration]
FLAKY = Path(__file__).resolve().parents[1] / "fixtures" / "flaky_job.py"


def flaky(failures: int, code: str = "actor_died", write: str = "atomic") -> str:
    """``job_python`` for a job whose first ``failures`` attempts fail with ``code``."""
    return f"{sys.executable} {FLAKY} {failures} {code} {write}"


def supervise(supervisor_for, run, job_python: str, attempts: int = 3, delays: list[float] | None = None):
    supervisor = supervisor_for("w-attempts", attempts=attempts, attempt_delays_seconds=delays or [0.2])
    supervisor.settings.ray.job_python = job_python
    return supervisor, supervisor.take(run.id, correlation_id="c")


def test_a_transient_failure_is_tried_again_as_a_job_of_its_own_and_the_run_finishes(
    repo, new_run, supervisor_for, ray_head
):
    run = new_run()
    supervisor, taken = supervise(supervisor_for, run, flaky(1))

    assert supervisor.supervise(taken).status is Status.FINISHED
    record, first, second = repo.get_record(run.id), real_id(run), f"{real_id(run)}-attempt-2"
    assert (record.attempt, record.submission_id, record.reason) == (2, second, None)
    assert [(a["attempt"], a["submission_id"], a["code"]) for a in record.attempts] == [(1, first, "actor_died")]
    assert f"/jobs/{second}?" in repo.get_run(run.id).log_url
    jobs = RayJobs(ray_head.dashboard_url)
    assert (jobs.snapshot(first).state, jobs.snapshot(second).state) == (JobState.FAILED, JobState.SUCCEEDED)
    assert job_info(ray_head.dashboard_url, second)["entrypoint"].endswith(f"--run-id {run.id} --attempt 2")


def test_a_run_failing_every_attempt_lists_each_in_its_reason(repo, new_run, supervisor_for):
    run = new_run()
    supervisor, taken = supervise(supervisor_for, run, flaky(5))
    verdict = supervisor.supervise(taken)

    assert (verdict.status, verdict.code) == (Status.FAILED, "actor_died")
    record = repo.get_record(run.id)
    assert record.error_code == "actor_died" and record.attempt == 3
    for attempt in (1, 2, 3):
        assert f"attempt {attempt}: [actor_died]" in record.reason and f"(attempt {attempt})" in record.reason


@pytest.mark.parametrize(("code", "write"), [("source", "atomic"), ("actor_died", "in-place")],
                         ids=["permanent-failure", "partial-write-possible"])
def test_permanent_failures_and_possibly_partial_writes_get_one_attempt(
    code, write, repo, new_run, supervisor_for, ray_head
):
    run = new_run()
    supervisor, taken = supervise(supervisor_for, run, flaky(5, code, write))
    verdict = supervisor.supervise(taken)

    assert (verdict.status, verdict.code) == (Status.FAILED, code)
    record = repo.get_record(run.id)
    assert (record.attempt, record.attempts, record.submission_id) == (None, None, real_id(run))
    assert "attempt 1:" not in record.reason
    assert RayJobs(ray_head.dashboard_url).snapshot(f"{real_id(run)}-attempt-2").state is JobState.MISSING


def test_a_stop_between_attempts_ends_the_run_stopped_without_another_job(repo, new_run, supervisor_for, ray_head):
    run = new_run()
    supervisor, taken = supervise(supervisor_for, run, flaky(5), delays=[120])
    stopper = threading.Thread(target=lambda: (
        wait_for(lambda: repo.get_record(run.id).attempts, 120, "the first attempt to fail"),
        repo.request_stop(run.id)))
    stopper.start()
    verdict = supervisor.supervise(taken)
    stopper.join()

    assert verdict.status is Status.STOPPED and "between attempts" in verdict.reason
    assert RayJobs(ray_head.dashboard_url).snapshot(f"{real_id(run)}-attempt-2").state is JobState.MISSING


def test_a_worker_taking_over_during_the_pause_starts_the_next_attempt_once(repo, new_run, supervisor_for, ray_head):
    """The first worker died in the pause after attempt 1 failed (its lease went stale): the one taking the run over
    judges the ended attempt again, lists it once, and starts attempt 2."""
    run = new_run()
    first = real_id(run)
    claim_as(repo, run, "w-dead", first, lease_age=3600, submitted=True)
    jobs = RayJobs(ray_head.dashboard_url)
    jobs.submit(submission_id=first, entrypoint=f"{flaky(1)} -m syncmaster_ray.job --run-id {run.id}", metadata={})
    wait_for(lambda: jobs.snapshot(first).state is JobState.FAILED, 120, "attempt 1 to fail")
    repo.record(run.id, attempts=[{"attempt": 1, "submission_id": first, "code": "actor_died", "reason": "r"}])
    supervisor, taken = supervise(supervisor_for, run, flaky(1))

    assert taken is not None and taken.took_over and taken.submission_id == first
    assert supervisor.supervise(taken).status is Status.FINISHED
    record = repo.get_record(run.id)
    assert record.attempt == 2 and [a["submission_id"] for a in record.attempts] == [first]
    assert jobs.snapshot(f"{first}-attempt-2").state is JobState.SUCCEEDED


@pytest.mark.long
@pytest.mark.postgres
@pytest.mark.timeout(1200)
def test_a_transfer_actor_killed_mid_write_is_tried_again_and_every_row_arrives_once(
    repo, catalog, e2e_queue, pg_connections, data_db_url, ray_head, app_env, tmp_path, source_and_target
):
    """A Celery worker with attempts on: the first attempt's transfer actor is killed mid-write (as by the OOM
    killer); the run ends FINISHED on attempt 2 with every row once; then a missing source table fails at once,
    with one attempt."""
    source, target, _ = source_and_target
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url, "SYNCMASTER__WORKER__ATTEMPTS": "3",
           "SYNCMASTER__WORKER__ATTEMPT_DELAYS_SECONDS": "[1]"}
    queue = catalog.ensure_queue("e2e", "Attempts Queue")
    worker = LocalCeleryWorker(queues=queue.slug, env=env, concurrency=None, log_path=tmp_path / "worker.log")
    try:
        worker.start()
        run = repo.create_run(make_transfer(catalog, queue, pg_connections, source, target).id)
        send_run_task(run.id, queue.slug)
        wait_for(lambda: relation_bytes(data_db_url, staging_table_for(target)), 300, "rows in the staging table")
        first = repo.get_record(run.id).submission_id
        actor = wait_for(lambda: next((a for a in alive_actors(ray_head.dashboard_url)
                                       if a.get("name") == actor_name_for(first)), None), 30, "the actor")
        os.kill(int(actor["pid"]), signal.SIGKILL)
        ended = wait_for_end(repo, run.id, timeout=900)
        record = repo.get_record(run.id)

        missing = repo.create_run(make_transfer(catalog, queue, pg_connections, "public.no_such_table",
                                                f"{target}_never").id)
        send_run_task(missing.id, queue.slug)
        missing_ended = wait_for_end(repo, missing.id, timeout=600)
        missing_record = repo.get_record(missing.id)
    finally:
        worker.stop()

    assert ended.status == "FINISHED", record.reason
    assert record.attempt == 2 and [a["code"] for a in record.attempts] == ["actor_died"]
    assert record.metrics["rows_written"] == record.metrics["rows_read"]
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
    assert_nothing_of_the_run_is_left(ray_head, record.submission_id, data_db_url)
    assert_nothing_of_the_run_is_left(ray_head, first, data_db_url)
    assert (missing_ended.status, missing_record.error_code) == ("FAILED", "source"), missing_record.reason
    assert (missing_record.attempt, missing_record.attempts) == (None, None)
