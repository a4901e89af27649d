"""The Celery worker stays thin: eight runs supervised at once by one worker in well under 200 MB, no JVM.

The same worker keeps no Ray job record (``SYNCMASTER__RAY__JOB_RETENTION_SECONDS=0``): each run's message and log
tail are in our table, and the head forgets the jobs.

The worker only talks to Postgres and Ray's Jobs API, so one process with a thread per run (the app's default
pool) is enough; the Spark work happens in the Ray jobs. The cluster here fits two runs at a time, so the others
wait for capacity inside their Ray jobs while the worker supervises all eight. Once the worker has supervised all
eight for a while, the runs still waiting are stopped (a supervisor's memory does not depend on whether its job
copies or waits), which saves the test three rounds of copies.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import psutil
import pytest

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray_dev.local_cluster import LocalCeleryWorker
from tests.fixtures.postgres_data import create_source, unique_table
from tests.fixtures.runs import ENDED, wait_for
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration]
RUNS = 8
SUPERVISED_SAMPLES = 10  # seconds of sampling with all eight supervised
MiB = 1024**2
RSS_LIMIT = 200 * MiB


@pytest.fixture(scope="module")
def footprint_queue(catalog):
    return catalog.ensure_queue("e2e", "Footprint Queue")


@pytest.fixture(scope="module")
def default_pool_worker(app_env, ray_head, footprint_queue, tmp_path_factory):
    """Started with the plain command an operator types (no --pool, no --concurrency)."""
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url, "SYNCMASTER__RAY__JOB_RETENTION_SECONDS": "0"}
    log_path = tmp_path_factory.mktemp("celery-footprint") / "worker.log"
    with LocalCeleryWorker(queues=footprint_queue.slug, env=env, log_path=log_path, concurrency=None) as worker:
        yield worker


def tree_rss(pid: int) -> tuple[int, list[str]]:
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    return sum(p.memory_info().rss for p in processes), [p.name() for p in processes]


def test_eight_runs_at_once_keep_the_worker_small(repo, catalog, footprint_queue, pg_connections, data_db_url,
                                                  ray_head, default_pool_worker):
    source = unique_table("fp_src")
    create_source(data_db_url, source, rows=100)
    runs = []
    for _ in range(RUNS):
        transfer = make_transfer(catalog, footprint_queue, pg_connections, source, unique_table("fp_dst"))
        runs.append(repo.create_run(transfer.id))
    for run in runs:
        send_run_task(run.id, footprint_queue.slug)

    peak_rss, most_started, names = 0, 0, set()

    def sample() -> list[str]:
        """Sample the worker's memory and how many runs it supervises; the runs' statuses."""
        nonlocal peak_rss, most_started, names
        rss, processes = tree_rss(default_pool_worker.process.pid)
        peak_rss, names = max(peak_rss, rss), names | set(processes)
        statuses = [repo.get_run(run.id).status for run in runs]
        most_started = max(most_started, statuses.count("STARTED"))
        return statuses

    wait_for(lambda: sample().count("STARTED") == RUNS, what=f"all {RUNS} runs to be supervised at once")
    for _ in range(SUPERVISED_SAMPLES):  # every supervisor polling its job and writing heartbeats
        sample()
        time.sleep(1)
    # On a slow day no job may hold capacity yet after those seconds: stop the waiting ones only once some run has it.
    def phases() -> list[str | None]:
        return [getattr(repo.get_record(run.id), "phase", None) for run in runs]

    holding = ("transferring", "ended")
    wait_for(lambda: any(phase in holding for phase in phases()), 600, "a run to get capacity")
    waiting = [run for run, phase in zip(runs, phases(), strict=True) if phase not in holding]
    for run in waiting:
        repo.request_stop(run.id)
    statuses = wait_for(lambda: (s := sample()) and all(status in ENDED for status in s) and s,
                        what=f"all {RUNS} runs to end")

    expected = ["STOPPED" if run in waiting else "FINISHED" for run in runs]
    assert statuses == expected, [repo.get_record(run.id).reason for run in runs]
    assert 0 < len(waiting) < RUNS  # some copied, some were still waiting for capacity
    assert most_started == RUNS  # all eight were claimed and supervised at the same time
    assert peak_rss <= RSS_LIMIT, f"worker peak RSS {peak_rss / MiB:.0f} MiB"
    print(f"worker peak RSS with {RUNS} runs supervised: {peak_rss / MiB:.0f} MiB")
    assert not any("java" in name for name in names)
    for run, status in zip(runs, statuses, strict=True):
        # Retention 0: the head forgets the job once the run is settled, our table keeps its logs.
        record = repo.get_record(run.id)
        if status == "FINISHED":
            assert f"Run {run.id} finished in" in (record.log_tail or ""), record.log_tail
        # Each supervisor prunes just after it writes its status: the last job may be listed a moment longer.
        try:
            wait_for(lambda sid=record.submission_id: job_is_gone(ray_head, sid), 60, f"job {record.submission_id} "
                     "to be deleted from the head")
        except pytest.fail.Exception as failed:  # say which record stayed: ours, or one Ray wrote again
            pytest.fail(f"{failed}; the head still has {job_record(ray_head, record.submission_id)}")


def job_record(ray_head, submission_id: str) -> str:
    request = urllib.request.Request(f"{ray_head.dashboard_url}/api/jobs/{submission_id}",
                                     headers=ray_head.auth_headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()[:2000]
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"


def job_is_gone(ray_head, submission_id: str) -> bool:
    request = urllib.request.Request(f"{ray_head.dashboard_url}/api/jobs/{submission_id}",
                                     headers=ray_head.auth_headers)
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as error:
        assert error.code == 404, f"the dashboard answered {error.code} for job {submission_id}"
        return True
    return False


def test_retention_keeps_the_jobs_of_unsettled_runs_and_jobs_not_ours(repo, catalog, footprint_queue, pg_connections,
                                                                       data_db_url, ray_head, default_pool_worker):
    """Retention 0 deletes a settled run's job at once, but never the job of a run still active (its supervisor
    may still read it) nor a job another tool submitted. (A job younger than the retention is kept: the session
    worker's default of 7 days, shown by ``test_transfer_postgres``, which reads each run's job after it ended.)"""
    from syncmaster_ray.db.models import Status
    from syncmaster_ray.ids import submission_id_for
    from syncmaster_ray.ray_client import RayJobs
    from syncmaster_ray.settings import get_settings

    jobs = RayJobs(ray_head.dashboard_url)
    unsettled = repo.create_run(make_transfer(catalog, footprint_queue, pg_connections, unique_table("x"),
                                              unique_table("y")).id)
    assert repo.claim_run(unsettled.id, started_at=repo.get_run(unsettled.id).created_at, log_url="http://x/")
    kept = [submission_id_for(unsettled.id, get_settings().job_namespace), f"not-ours-{unsettled.id}"]
    for submission_id in kept:
        jobs.submit(submission_id=submission_id, entrypoint="python -c 'print(1)'", metadata={})
    wait_for(lambda: all(jobs.snapshot(sid).state.is_terminal() for sid in kept), 120, "the jobs to end")
    source = unique_table("rt_src")
    create_source(data_db_url, source, rows=10)
    settled = repo.create_run(make_transfer(catalog, footprint_queue, pg_connections, source,
                                            unique_table("rt_dst")).id)

    send_run_task(settled.id, footprint_queue.slug)  # its supervisor prunes once the run is settled

    wait_for(lambda: repo.get_run(settled.id).status in ENDED, what="the run to end")
    assert repo.get_run(settled.id).status == "FINISHED", repo.get_record(settled.id).reason
    sid = repo.get_record(settled.id).submission_id
    wait_for(lambda: job_is_gone(ray_head, sid), 60, f"job {sid} to be deleted from the head")
    assert [job_is_gone(ray_head, submission_id) for submission_id in kept] == [False, False]
    repo.end_run(unsettled.id, Status.FAILED)
    for submission_id in kept:
        jobs.delete(submission_id)
