"""Supervision races, each driven into its racing state with real rows and real Ray jobs on the session head.

The supervisor runs in this process (the Celery task only calls ``take`` and hands the run to a thread); jobs are
plain ``python -c`` entrypoints where the race is about the job's state, not about Spark. Plus: a worker's task
message is acknowledged while its run goes on (a run may outlast the broker's consumer timeout).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.db.models import Status
from syncmaster_ray.db.repository import RunRepository, utcnow
from syncmaster_ray.ids import submission_id_for
from syncmaster_ray.ray_client import JobState, RayJobs
from tests.fixtures.postgres_data import unique_table
from tests.fixtures.runs import wait_for, wait_for_end
from tests.fixtures.services import rabbitmqctl
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration]
SLEEP = "python -c 'import time; time.sleep({})'"


@pytest.fixture
def supervisor_for(ray_head, engine):
    """A RunSupervisor of this process, as a worker with the given name would have it, on the session head."""
    from syncmaster_ray.settings import get_settings
    from syncmaster_ray.worker.supervisor import RunSupervisor

    def make(worker: str, repo: RunRepository | None = None, **worker_settings: float) -> RunSupervisor:
        settings = get_settings().model_copy(deep=True)
        settings.ray.address = ray_head.dashboard_url
        settings.ray.job_retention_seconds = 7 * 24 * 3600
        for name, value in worker_settings.items():
            setattr(settings.worker, name, value)
        return RunSupervisor(settings, repo or RunRepository(engine), worker_id=worker)

    return make


@pytest.fixture
def new_run(repo, catalog, pg_connections):
    """A CREATED run of a transfer nobody will execute (its tables do not exist), in a queue no worker consumes:
    only this test acts on it (a worker's reconciler settles stale runs of its own queues)."""
    queue = catalog.ensure_queue("e2e", "Race Queue")

    def make():
        transfer = make_transfer(catalog, queue, pg_connections, unique_table("x"), unique_table("y"))
        return repo.create_run(transfer.id)

    return make


def real_id(run) -> str:
    """The run's submission id, as every worker derives it."""
    from syncmaster_ray.settings import get_settings

    return submission_id_for(run.id, get_settings().job_namespace)


def claim_as(repo, run, worker: str, submission_id: str, *, lease_age: float = 0.0, submitted: bool = False):
    """Claim ``run`` the way worker ``worker`` does, its lease renewed ``lease_age`` seconds ago."""
    assert repo.claim_run(run.id, started_at=utcnow(), log_url="http://example/", submission_id=submission_id,
                          supervisor=worker, ray_job_status=JobState.PENDING.value)
    repo.record(run.id, supervised_at=utcnow() - timedelta(seconds=lease_age),
                **({"submitted_at": utcnow()} if submitted else {}))


def test_a_stop_landing_between_reading_the_run_and_claiming_it_ends_the_run_stopped(
    repo, engine, new_run, supervisor_for, ray_head
):
    run = new_run()

    class StopAfterRead(RunRepository):
        """The server's stop lands right after the worker read the run as CREATED."""

        def get_run(self, run_id):
            found = super().get_run(run_id)
            if found is not None and found.status == Status.CREATED:
                repo.request_stop(run_id)
            return found

    supervisor = supervisor_for("w-race", StopAfterRead(engine))
    assert supervisor.take(run.id, correlation_id="c") is None

    ended = repo.get_run(run.id)
    assert ended.status == "STOPPED" and ended.ended_at is not None
    assert repo.get_record(run.id).reason == "stopped before its Ray job was submitted"
    never = submission_id_for(run.id, supervisor.settings.job_namespace)
    assert RayJobs(ray_head.dashboard_url).snapshot(never).state is JobState.MISSING


def test_a_worker_taking_over_a_job_its_dead_predecessor_stopped_on_request_ends_the_run_stopped(
    repo, new_run, supervisor_for, ray_head
):
    run = new_run()
    jobs = RayJobs(ray_head.dashboard_url)
    submission_id = real_id(run)
    claim_as(repo, run, "w-dead", submission_id, lease_age=3600, submitted=True)
    jobs.submit(submission_id=submission_id, entrypoint=SLEEP.format(60), metadata={})
    repo.request_stop(run.id)
    jobs.stop(submission_id)  # what the dead worker did before it died
    wait_for(lambda: jobs.snapshot(submission_id).state is JobState.STOPPED, 60, "the job to stop")

    taker = supervisor_for("w-taker")
    taken = taker.take(run.id, correlation_id="c")
    assert taken is not None and taken.took_over
    verdict = taker.supervise(taken)

    assert verdict.status is Status.STOPPED and verdict.reason == "stopped on request"
    assert repo.get_run(run.id).status == "STOPPED"


def test_a_live_lease_is_never_taken_over(repo, new_run, supervisor_for):
    run = new_run()
    claim_as(repo, run, "w-alive", real_id(run), lease_age=1)
    assert supervisor_for("w-other", stale_seconds=60).take(run.id, correlation_id="c") is None
    assert repo.get_record(run.id).supervisor == "w-alive"
    repo.finish_run(run.id, Status.FAILED, error_code="test", reason="ended by the test")


def test_errors_that_are_not_ours_while_watching_do_not_end_supervision(
    repo, engine, new_run, supervisor_for, ray_head, monkeypatch
):
    """A database error writing our row and a bare RuntimeError from the Jobs client, once each, mid-watch: the
    supervisor backs off and goes on, and the run ends with its job's outcome (never left STARTED)."""
    from syncmaster_ray.worker import supervisor as supervisor_module

    monkeypatch.setattr(supervisor_module, "ERROR_BACKOFF_SECONDS", (0.1,))
    run = new_run()
    submission_id = real_id(run)
    claim_as(repo, run, "w-flaky", submission_id)
    RayJobs(ray_head.dashboard_url).submit(submission_id=submission_id, entrypoint=SLEEP.format(4), metadata={})
    failures = {"record": 1, "snapshot": 1}

    class FlakyRepo(RunRepository):
        def record(self, run_id, **fields):
            if "ray_job_status" in fields and failures["record"]:
                failures["record"] -= 1
                raise OperationalError("UPDATE syncmaster_ray_run", {}, Exception("server closed the connection"))
            return super().record(run_id, **fields)

    class FlakyJobs(RayJobs):
        def snapshot(self, sid):
            if failures["snapshot"] and failures["record"] == 0:
                failures["snapshot"] -= 1
                raise RuntimeError("Request failed with status code 500: Internal Server Error")
            return super().snapshot(sid)

    supervisor = supervisor_for("w-flaky", FlakyRepo(engine))
    monkeypatch.setattr(supervisor, "_connect", lambda run_id=None: FlakyJobs(ray_head.dashboard_url))
    verdict = supervisor.supervise(supervisor_module.Taken(run.id, submission_id, "unused"))

    assert failures == {"record": 0, "snapshot": 0}
    assert verdict.status is Status.FINISHED and repo.get_run(run.id).status == "FINISHED"


def test_a_supervisor_losing_the_race_to_end_a_run_writes_no_reason_onto_it(repo, new_run, supervisor_for):
    from syncmaster_ray.worker.supervisor import Verdict

    run = new_run()
    claim_as(repo, run, "w-first", real_id(run))
    assert supervisor_for("w-first")._finish(run.id, Verdict(Status.FINISHED), "-")

    late = supervisor_for("w-late")._finish(run.id, Verdict.failed("job_failed", "the Ray job failed: late"), "-")

    record = repo.get_record(run.id)
    assert late is False and repo.get_run(run.id).status == "FINISHED"
    assert (record.error_code, record.reason) == (None, None)


def test_a_job_the_head_forgot_after_it_was_submitted_is_never_submitted_again(
    repo, new_run, supervisor_for, ray_head
):
    """A worker lost after it submitted the job, and a head restarted since: the job is gone. Submitting it again
    could append the same rows twice, so the run ends FAILED job_lost and no job is submitted."""
    run = new_run()
    submission_id = real_id(run)
    claim_as(repo, run, "w-dead", submission_id, lease_age=3600, submitted=True)

    taker = supervisor_for("w-taker")
    taken = taker.take(run.id, correlation_id="c")
    verdict = taker.supervise(taken)

    assert (verdict.status, verdict.code) == (Status.FAILED, "job_lost"), verdict
    assert "not submitted again" in verdict.reason
    assert RayJobs(ray_head.dashboard_url).snapshot(submission_id).state is JobState.MISSING


def test_a_run_never_submitted_by_its_lost_worker_is_submitted_by_the_one_taking_over(
    repo, new_run, supervisor_for, ray_head, monkeypatch
):
    run = new_run()
    submission_id = real_id(run)
    claim_as(repo, run, "w-dead", submission_id, lease_age=3600)  # died before it submitted
    taker = supervisor_for("w-taker")
    monkeypatch.setattr(taker.settings.ray, "job_python", "python -c 'print(1)' #")  # a job that just succeeds
    taken = taker.take(run.id, correlation_id="c")

    assert taker.supervise(taken).status is Status.FINISHED
    assert repo.get_record(run.id).submitted_at is not None
    assert RayJobs(ray_head.dashboard_url).snapshot(submission_id).state is JobState.SUCCEEDED


def hold_capacity(ray_head, cpus: float) -> str:
    """A placement group of this test holding ``cpus`` of the head; returns its id to release it with."""
    script = ("import ray\nfrom ray.util.placement_group import placement_group\nray.init()\n"
              f"group = placement_group([{{'CPU': {cpus}}}], name='held-by-the-test', lifetime='detached')\n"
              "ray.get(group.ready(), timeout=60)\nprint(group.id.hex())\n")
    env = {**ray_head.ray_env(), "RAY_ADDRESS": ray_head.gcs_address}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                          check=True).stdout.split()[-1]


def release_capacity(ray_head, group_id: str) -> None:
    script = ("import sys, ray\nfrom ray._raylet import PlacementGroupID\n"
              "from ray.util.placement_group import PlacementGroup, remove_placement_group\nray.init()\n"
              "remove_placement_group(PlacementGroup(PlacementGroupID(bytes.fromhex(sys.argv[1]))))\n")
    env = {**ray_head.ray_env(), "RAY_ADDRESS": ray_head.gcs_address}
    subprocess.run([sys.executable, "-c", script, group_id], env=env, timeout=120, check=True)


def unacknowledged(broker_url: str, queue: str) -> int:
    """Messages of ``queue`` delivered to a consumer and not acknowledged yet, as the broker counts them."""
    vhost = urllib.parse.unquote(urllib.parse.urlsplit(broker_url).path.lstrip("/")) or "/"
    listing = rabbitmqctl("list_queues", "-p", vhost, "--formatter", "json", "name", "messages_unacknowledged",
                          timeout=60)
    return next(q["messages_unacknowledged"] for q in json.loads(listing) if q["name"] == queue)


def test_the_task_message_is_acknowledged_while_its_run_goes_on(
    repo, catalog, e2e_queue, pg_connections, data_db_url, ray_head, celery_worker, app_env
):
    """The broker closes a channel whose delivery stays unacknowledged longer than its consumer timeout, which
    kills a worker with a long run: the worker acknowledges the message once the run is taken, and the run is
    then kept by its lease. (The whole story with a real short consumer timeout is in the long tier.) The head's
    CPUs are held by the test, so the run's job waits for capacity: a run in progress, without a Spark session."""
    held = hold_capacity(ray_head, 4)
    try:
        run = repo.create_run(make_transfer(catalog, e2e_queue, pg_connections, unique_table("x"),
                                            unique_table("y")).id)
        send_run_task(run.id, e2e_queue.slug)
        wait_for(lambda: getattr(repo.get_record(run.id), "phase", None) == "waiting_for_capacity", 120,
                 "the run's job to wait for capacity")
        assert repo.get_run(run.id).status == "STARTED"
        assert unacknowledged(app_env["SYNCMASTER__BROKER__URL"], e2e_queue.slug) == 0
        repo.request_stop(run.id)
        stopped = wait_for_end(repo, run.id, timeout=120)
    finally:
        release_capacity(ray_head, held)
    assert stopped.status == "STOPPED", repo.get_record(run.id).reason

