"""Crash recovery with real processes: a worker killed with SIGKILL mid-run, a Ray head restarted mid-run, and the
reconciler settling runs whose worker is gone. Each test has its own head and worker, so nothing else is hit."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.db.repository import utcnow
from syncmaster_ray.ids import actor_name_for
from syncmaster_ray_dev.local_cluster import LocalCeleryWorker, LocalRayHead
from tests.fixtures.postgres_data import checksum, create_source, unique_table
from tests.fixtures.ray_cluster import all_actors, spark_jvms
from tests.fixtures.runs import ended, wait_for
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration]
GiB = 1024**3


@pytest.fixture(scope="module")
def recovery_queue(catalog):
    return catalog.ensure_queue("e2e", "Recovery Queue")


@pytest.fixture(scope="module")
def own_head(app_env):
    """One head for the module (a head start is 10-20 s): the restart test restarts it, the grace test, last,
    stops it for good. Each test counts only the transfer actors it created."""
    with LocalRayHead(env=app_env, num_cpus=4, memory_bytes=6 * GiB) as head:
        yield head


# A worker's lease on its runs, short here: renewed every second, stale after 4 s, looked for every second.
QUICK_LEASE = {"SYNCMASTER__WORKER__HEARTBEAT_SECONDS": "1", "SYNCMASTER__WORKER__STALE_SECONDS": "4",
               "SYNCMASTER__WORKER__RECONCILE_INTERVAL_SECONDS": "1"}


def worker_for(head, queue, app_env, tmp_path, **settings: str) -> LocalCeleryWorker:
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": head.dashboard_url, **settings}
    return LocalCeleryWorker(queues=queue.slug, env=env, log_path=tmp_path / f"worker-{time.monotonic_ns()}.log")


def transferring(repo, run_id: int) -> bool:
    return getattr(repo.get_record(run_id), "phase", None) == "transferring"


def test_worker_killed_mid_run_is_replaced_and_the_same_job_finishes(
    repo, catalog, recovery_queue, pg_connections, data_db_url, own_head, app_env, tmp_path
):
    """No cron, no redelivery: the task's message was acknowledged when the run was taken. The killed worker's
    lease goes stale, the other worker's own reconciler hands the run back and that worker takes it over,
    re-attaching to the same Ray job."""
    earlier_actors = {a["actor_id"] for a in transfer_actors(own_head)}
    source, target = unique_table("rc_src"), unique_table("rc_dst")
    create_source(data_db_url, source, rows=300_000)
    run = repo.create_run(make_transfer(catalog, recovery_queue, pg_connections, source, target).id)
    first = worker_for(own_head, recovery_queue, app_env, tmp_path, **QUICK_LEASE).start()
    send_run_task(run.id, recovery_queue.slug)
    wait_for(lambda: transferring(repo, run.id), what="the transfer phase")

    os.killpg(first.process.pid, signal.SIGKILL)  # no warm shutdown: its runs are not handed back
    first.process.wait()
    first.process = None
    assert repo.get_run(run.id).status == "STARTED"
    with worker_for(own_head, recovery_queue, app_env, tmp_path, **QUICK_LEASE) as second:
        finished = wait_for(lambda: ended(repo, run.id), what="the run's end")
        log = second.log_path.read_text(errors="replace")

    record = repo.get_record(run.id)
    assert finished.status == "FINISHED", record.reason
    assert f"Reconcile: run {run.id} (its supervisor is gone): handed back to a worker" in log, log[-3000:]
    assert f"Run {run.id} is STARTED and nobody supervises it: taking it over" in log
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
    # Exactly one Ray job ran: one transfer actor (driver) was ever created on the head, under the run's name.
    assert [a["name"] for a in transfer_actors(own_head, earlier_actors)] == [actor_name_for(record.submission_id)]


def test_ray_head_restarted_mid_run_fails_the_run_with_a_reason_and_keeps_earlier_logs(
    repo, catalog, recovery_queue, pg_connections, data_db_url, own_head, app_env, tmp_path
):
    from tests.fixtures.postgres_data import create_slow_view
    from tests.integration.test_transfer_postgres import SLOW_EVERY, SLOW_PAUSE, SLOW_ROWS

    table, source = unique_table("rh_src"), unique_table("rh_slow")  # still copying when the head goes
    create_source(data_db_url, table, rows=SLOW_ROWS)
    create_slow_view(data_db_url, source, table, every=SLOW_EVERY, pause_seconds=SLOW_PAUSE)
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
    # Causal: settled because the returned head does not know the job (not because the grace period ran out).
    assert record.error_code == "job_lost" and "Ray head restarted" in record.reason, record.reason
    print(f"head back -> run FAILED: {time.monotonic() - restarted:.1f} s")
    assert "Placement group strategy" in record.log_tail  # saved while the old head still knew the job
    # The old session's JVMs die with their raylet.
    wait_for(lambda: spark_jvms(old_session) == [], timeout=60, what="no JVM of the old head")


def submit_job_as_a_lost_worker_would(head, repo, run, entrypoint: str) -> str:
    """Claim the run and submit its Ray job (the real id) the way a worker does, then forget it: no worker left."""
    from syncmaster_ray.ids import submission_id_for
    from syncmaster_ray.ray_client import RayJobs
    from syncmaster_ray.settings import get_settings

    submission_id = submission_id_for(run.id, get_settings().job_namespace)
    assert repo.claim_run(run.id, started_at=an_hour_before(repo, run), log_url="http://example/")
    repo.record(run.id, submission_id=submission_id, submitted_at=utcnow())
    RayJobs(head.dashboard_url).submit(submission_id=submission_id, entrypoint=entrypoint, metadata={})
    return submission_id


def an_hour_before(repo, run):
    """A ``started_at`` old enough that reconcile takes the run as stale even with no record of ours."""
    return repo.get_run(run.id).created_at - timedelta(hours=1)


def reconcile(app_env: dict, address: str, slug: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **app_env, "SYNCMASTER__RAY__ADDRESS": address}
    return subprocess.run([sys.executable, "-m", "syncmaster_ray.cli", "run", "reconcile", "--stale-seconds", "60",
                           "--queue", slug], env=env, capture_output=True, text=True, timeout=300)


def test_reconcile_settles_runs_whose_worker_is_gone(repo, catalog, recovery_queue, pg_connections, app_env,
                                                    own_head, data_db_url, tmp_path):
    """Every outcome: never submitted (handed back: the worker taking it over submits its job), stopped before its
    job was submitted (STOPPED), job gone after it was submitted (FAILED job_lost: never submitted twice), job ended
    (succeeded, failed), job still running (handed back; the worker taking it over re-attaches); and an unreachable
    Jobs API leaves every run that needs Ray for the next pass."""
    from syncmaster_ray.ids import submission_id_for
    from syncmaster_ray.ray_client import JobState, RayJobs
    from syncmaster_ray.settings import get_settings
    from tests.fixtures.postgres_data import create_gated_view, gate_closed

    namespace = get_settings().job_namespace
    earlier_actors = {a["actor_id"] for a in transfer_actors(own_head)}
    dummy = make_transfer(catalog, recovery_queue, pg_connections, unique_table("x"), unique_table("y"))
    stopped, job_gone, succeeded, failed = (repo.create_run(dummy.id) for _ in range(4))
    small_source, small_target = unique_table("rc_small"), unique_table("rc_small_dst")
    create_source(data_db_url, small_source, rows=100)
    never_submitted = repo.create_run(make_transfer(catalog, recovery_queue, pg_connections, small_source,
                                                    small_target).id)
    for run in (never_submitted, stopped, job_gone):  # claimed by a worker that died before it submitted
        assert repo.claim_run(run.id, started_at=an_hour_before(repo, run), log_url="http://example/",
                              submission_id=submission_id_for(run.id, namespace), supervisor="lost-worker")
    repo.request_stop(stopped.id)
    repo.record(job_gone.id, submitted_at=utcnow())  # submitted, and the head has forgotten it since
    ended_jobs = [submit_job_as_a_lost_worker_would(own_head, repo, succeeded, "python -c 'print(1)'"),
                  submit_job_as_a_lost_worker_would(own_head, repo, failed, "python -c 'import sys; sys.exit(3)'")]
    jobs = RayJobs(own_head.dashboard_url)
    wait_for(lambda: all(jobs.snapshot(sid).state.is_terminal() for sid in ended_jobs), 120, "the jobs to end")
    # A real transfer whose read waits at a row until both reconcile passes are done, its job running with no
    # worker watching it.
    table, source, target = unique_table("rc_src"), unique_table("rc_gated"), unique_table("rc_dst")
    create_source(data_db_url, table, rows=100_000)
    lock_key = secrets.randbits(62)
    create_gated_view(data_db_url, source, table, gate_row=50_000, lock_key=lock_key)
    gate = gate_closed(data_db_url, lock_key)
    gate.__enter__()
    running = repo.create_run(make_transfer(catalog, recovery_queue, pg_connections, source, target).id)
    running_job = submit_job_as_a_lost_worker_would(own_head, repo, running,
                                                    f"python -m syncmaster_ray.job --run-id {running.id}")
    wait_for(lambda: transferring(repo, running.id), what="the unwatched job's transfer phase")
    runs = (never_submitted, stopped, job_gone, succeeded, failed, running)
    _age_records(data_db_url, app_env, [run.id for run in runs])

    unreachable = reconcile(app_env, "http://127.0.0.1:9", recovery_queue.slug)  # nothing listens there

    assert unreachable.returncode == 0, unreachable.stderr
    # Without Ray: the never-submitted run is handed back and the stopped one ends; the others wait for a pass
    # that reaches Ray.
    statuses = [repo.get_run(run.id).status for run in runs]
    assert statuses == ["STARTED", "STOPPED"] + ["STARTED"] * 4, unreachable.stdout
    assert f"run {never_submitted.id}: handed back to a worker" in unreachable.stdout, unreachable.stdout
    assert f"run {job_gone.id}: unreachable" in unreachable.stdout
    assert repo.get_record(stopped.id).reason == "stopped before its Ray job was submitted"
    _age_records(data_db_url, app_env, [run.id for run in runs])

    try:
        result = reconcile(app_env, own_head.dashboard_url, recovery_queue.slug)
    finally:
        gate.__exit__(None, None, None)  # the running job's read goes on

    assert result.returncode == 0, result.stderr
    assert f"run {running.id}: handed back to a worker" in result.stdout, result.stdout
    gone = repo.get_record(job_gone.id)
    assert gone.error_code == "job_lost" and "Ray head restarted" in gone.reason
    assert repo.get_run(succeeded.id).status == "FINISHED"
    assert repo.get_record(failed.id).error_code == "job_failed", repo.get_record(failed.id).reason
    for run in (job_gone, failed):
        assert repo.get_run(run.id).status == "FAILED" and repo.get_run(run.id).ended_at is not None
    assert repo.get_run(running.id).status == "STARTED"
    # The tasks sent again reach a worker: it submits the never-submitted run's job and re-attaches to the
    # running one; both finish with every row once.
    with worker_for(own_head, recovery_queue, app_env, tmp_path):
        finished = wait_for(lambda: ended(repo, running.id), what="the handed-back run's end")
        submitted = wait_for(lambda: ended(repo, never_submitted.id), what="the never-submitted run's end")
    assert finished.status == "FINISHED", repo.get_record(running.id).reason
    assert submitted.status == "FINISHED", repo.get_record(never_submitted.id).reason
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, table, lowercase=False)
    assert checksum(data_db_url, small_target, lowercase=True) == checksum(data_db_url, small_source,
                                                                           lowercase=False)
    assert jobs.snapshot(running_job).state is JobState.SUCCEEDED
    # One driver per run: nothing was submitted twice.
    assert sorted(a["name"] for a in transfer_actors(own_head, earlier_actors)) == sorted(
        [actor_name_for(running_job), actor_name_for(submission_id_for(never_submitted.id, namespace))])


def transfer_actors(head, earlier: set[str] = frozenset()) -> list[dict]:
    """Every transfer actor (the Spark driver) the head ever had, under any name or job, but the ``earlier`` ids."""
    return [a for a in all_actors(head.dashboard_url)
            if a.get("class_name") == "TransferActor" and a["actor_id"] not in earlier]


def test_jobs_api_unreachable_past_the_grace_period_fails_the_run(
    repo, catalog, recovery_queue, pg_connections, data_db_url, own_head, app_env, tmp_path
):
    """A head that goes away and does not come back: the worker waits the grace period out, then FAILED."""
    grace = 5
    source = unique_table("gr_src")
    create_source(data_db_url, source, rows=300_000)
    run = repo.create_run(make_transfer(catalog, recovery_queue, pg_connections, source, unique_table("gr_dst")).id)
    with worker_for(own_head, recovery_queue, app_env, tmp_path,
                    SYNCMASTER__WORKER__RAY_UNREACHABLE_GRACE_SECONDS=str(grace)):
        send_run_task(run.id, recovery_queue.slug)
        wait_for(lambda: transferring(repo, run.id), what="the transfer phase")
        stopping = threading.Thread(target=own_head.stop)  # stop() itself takes seconds: time from the outage
        stopping.start()
        gone_at = wait_for(lambda: not dashboard_answers(own_head.dashboard_url) and time.monotonic(), 120,
                           "the dashboard to stop answering", interval=0.1)
        finished = wait_for(lambda: ended(repo, run.id), what="the run's end", interval=0.2)
        waited = time.monotonic() - gone_at
        stopping.join()

    record = repo.get_record(run.id)
    assert finished.status == "FAILED"
    # Causal: it failed because the Jobs API stayed silent for the whole grace period, and not before.
    assert record.error_code == "job_lost" and f"did not answer for {grace} s" in record.reason, record.reason
    # The worker can only have seen the outage after it began; this test sees it at most one poll (0.1 s) late.
    assert waited >= grace - 0.5, f"FAILED {waited:.1f} s after the outage began, within the {grace} s grace"
    print(f"head gone -> run FAILED: {waited:.1f} s (grace {grace} s)")


def dashboard_answers(dashboard_url: str) -> bool:
    try:
        urllib.request.urlopen(f"{dashboard_url}/api/version", timeout=2).close()
    except urllib.error.HTTPError:
        return True  # it answered, if only to refuse
    except OSError:
        return False
    return True


def _age_records(data_db_url: str, app_env: dict, run_ids: list[int]) -> None:
    import psycopg

    url = app_env["SYNCMASTER__DATABASE__URL"].replace("postgresql+asyncpg", "postgresql")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE syncmaster_ray_run SET updated_at = now() - interval '1 hour', "
                     "supervised_at = now() - interval '1 hour' WHERE run_id = ANY(%s)", (run_ids,))
