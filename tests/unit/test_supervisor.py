"""``RunSupervisor._judge``: the one mapping from a Ray job's end to a SyncMaster status and reason; and which
jobs ``_prune_old_jobs`` deletes (the end-to-end twin is ``test_worker_footprint.py``).

``syncmaster_ray.worker``'s ``__init__`` builds the Celery app (and so reads settings) at import time, so the
supervisor module is imported inside a fixture, with a database URL in the environment.
"""

from __future__ import annotations

import importlib
from types import ModuleType, SimpleNamespace

import pytest
from cryptography.fernet import Fernet

from syncmaster_ray.db.models import Status
from syncmaster_ray.db.repository import RunRepository
from syncmaster_ray.ray_client import JobSnapshot, JobState
from syncmaster_ray.settings import AppSettings, get_settings

DB_PASSWORD = "Db-Pa55-judge"
BROKER_PASSWORD = "Br0ker-Pa55-judge"
FERNET_KEY = Fernet.generate_key().decode()
RUN_ID = 42


class FakeRepo:
    """Only what ``_judge`` reads: the run's record in our table, and the run's status."""

    def __init__(self, record: SimpleNamespace | None, status: Status = Status.STARTED) -> None:
        self.record = record
        self.status = status
        self.calls: list[int] = []

    def get_record(self, run_id: int) -> SimpleNamespace | None:
        self.calls.append(run_id)
        return self.record

    def get_status(self, run_id: int) -> Status:
        return self.status


@pytest.fixture
def sup(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("SYNCMASTER__DATABASE__URL", "postgresql://import:only@127.0.0.1:1/import_only")
    get_settings.cache_clear()
    module = importlib.import_module("syncmaster_ray.worker.supervisor")
    get_settings.cache_clear()
    return module


@pytest.fixture
def settings() -> AppSettings:
    return AppSettings(
        database={"url": f"postgresql+asyncpg://syncmaster:{DB_PASSWORD}@db:5432/syncmaster"},
        broker={"url": f"amqp://guest:{BROKER_PASSWORD}@rabbitmq:5672/"},
        encryption={"secret_key": FERNET_KEY},
        ray={"address": "http://ray-head:8265"},
    )


@pytest.fixture
def judge(sup: ModuleType, settings: AppSettings):
    def judge_(state: JobState, *, stop_requested: bool = False, message: str = "",
               record: SimpleNamespace | None = None, timed_out: bool = False, status: Status = Status.STARTED):
        repo = FakeRepo(record, status)
        verdict = sup.RunSupervisor(settings, repo)._judge(RUN_ID, JobSnapshot(state, message), stop_requested,
                                                           timed_out=timed_out)
        return verdict, repo

    return judge_


@pytest.fixture
def Verdict(sup: ModuleType):
    return sup.Verdict


@pytest.mark.parametrize("stop_requested", [False, True])
def test_succeeded_is_finished(judge, Verdict, stop_requested):
    verdict, repo = judge(JobState.SUCCEEDED, stop_requested=stop_requested,
                          record=SimpleNamespace(reason="stale", error_code="x"))
    assert verdict == Verdict(Status.FINISHED)
    assert verdict.code is None and verdict.reason is None
    assert repo.calls == []


def test_stopped_on_request_is_stopped(judge, Verdict):
    verdict, _ = judge(JobState.STOPPED, stop_requested=True)
    assert verdict == Verdict(Status.STOPPED, "stopped", "stopped on request")


def test_stopped_without_request_is_failed(judge, Verdict):
    verdict, _ = judge(JobState.STOPPED, stop_requested=False,
                       record=SimpleNamespace(reason="the run was stopped", error_code="stopped"))
    assert verdict == Verdict(Status.FAILED, "stopped_externally", "the Ray job was stopped outside SyncMaster")


def test_a_job_another_worker_stopped_on_request_is_stopped(judge, Verdict):
    """A worker taking a run over finds its job STOPPED and the run still SEND_STOP_SIGNAL: the worker that died
    had stopped it on request, so the run is STOPPED, not stopped outside SyncMaster."""
    verdict, _ = judge(JobState.STOPPED, stop_requested=False, status=Status.SEND_STOP_SIGNAL)
    assert verdict == Verdict(Status.STOPPED, "stopped", "stopped on request")


@pytest.mark.parametrize("stop_requested", [False, True])
def test_missing_job_is_failed_job_lost(judge, Verdict, stop_requested):
    verdict, _ = judge(JobState.MISSING, stop_requested=stop_requested, message="Ray does not know job x")
    assert verdict.status is Status.FAILED
    assert verdict.code == "job_lost"
    assert verdict.reason == "the Ray job is gone (was the Ray head restarted?)"


def test_failed_with_recorded_reason_uses_the_record(judge, Verdict):
    record = SimpleNamespace(reason='source failed: PSQLException: ERROR: relation "public.x" does not exist',
                             error_code="source")
    verdict, repo = judge(JobState.FAILED, message="Job entrypoint command failed with exit code 1",
                          record=record)
    assert verdict == Verdict(Status.FAILED, "source", record.reason)
    assert repo.calls == [RUN_ID]


@pytest.mark.parametrize("record", [None, SimpleNamespace(reason=None, error_code=None),
                                    SimpleNamespace(reason="", error_code="source")])
def test_failed_without_recorded_reason_uses_the_job_message(judge, Verdict, record):
    verdict, repo = judge(JobState.FAILED, message="Job entrypoint command failed\nwith exit code 2",
                          record=record)
    assert verdict == Verdict(Status.FAILED, "job_failed",
                              "the Ray job failed: Job entrypoint command failed with exit code 2")
    assert repo.calls == [RUN_ID]


def test_failed_without_reason_or_message(judge, Verdict):
    verdict, _ = judge(JobState.FAILED, message="  \n ")
    assert verdict == Verdict(Status.FAILED, "job_failed", "the Ray job failed: no message")


def test_failed_message_is_redacted_and_capped(judge, settings):
    db_url = settings.database.url.get_secret_value()
    message = (f"cannot reach {db_url} nor amqp://guest:{BROKER_PASSWORD}@rabbitmq:5672/ with key {FERNET_KEY} "
               "password=hunter2 " + "x" * 3000)
    verdict, _ = judge(JobState.FAILED, message=message)
    assert verdict.status is Status.FAILED
    assert verdict.code == "job_failed"
    for secret in (DB_PASSWORD, BROKER_PASSWORD, FERNET_KEY, "hunter2"):
        assert secret not in verdict.reason
    assert verdict.reason.startswith("the Ray job failed: cannot reach ***")
    assert len(verdict.reason) == len("the Ray job failed: ") + 1000


def test_failed_with_stop_requested_still_reads_the_record(judge, Verdict):
    record = SimpleNamespace(reason="the run was stopped", error_code="stopped")
    verdict, _ = judge(JobState.FAILED, stop_requested=True, record=record)
    assert verdict == Verdict(Status.FAILED, "stopped", "the run was stopped")


@pytest.mark.parametrize("state", [JobState.STOPPED, JobState.FAILED])
def test_timed_out_is_failed_naming_the_setting(judge, Verdict, state):
    record = SimpleNamespace(reason="the run was stopped", error_code="stopped")
    verdict, _ = judge(state, timed_out=True, record=record)
    assert verdict == Verdict(Status.FAILED, "timed_out", "the run was still going after 86400 s and was stopped "
                              "(SYNCMASTER__WORKER__RUN_TIMEOUT_SECONDS)")


def test_timed_out_but_succeeded_meanwhile_is_finished(judge, Verdict):
    verdict, _ = judge(JobState.SUCCEEDED, timed_out=True)
    assert verdict == Verdict(Status.FINISHED)


def test_timed_out_job_that_vanished_is_job_lost(judge):
    verdict, _ = judge(JobState.MISSING, timed_out=True)
    assert verdict.code == "job_lost"


class StartedRepo:
    def __init__(self, started_at):
        self.run = SimpleNamespace(started_at=started_at)

    def get_run(self, run_id: int) -> SimpleNamespace:
        return self.run


def test_run_deadline_counts_from_started_at_so_a_reattaching_worker_inherits_the_time_spent(sup, settings):
    from datetime import timedelta

    from syncmaster_ray.db.repository import utcnow

    settings.worker.run_timeout_seconds = 600
    supervisor = sup.RunSupervisor(settings, StartedRepo(utcnow() - timedelta(seconds=400)))
    remaining = supervisor._run_deadline(RUN_ID) - sup.time.monotonic()
    assert 195 < remaining <= 200


@pytest.mark.parametrize(("timeout", "started_at"), [(0, "now"), (600, None)])
def test_no_run_deadline_without_a_timeout_or_a_start(sup, settings, timeout, started_at):
    from syncmaster_ray.db.repository import utcnow

    settings.worker.run_timeout_seconds = timeout
    supervisor = sup.RunSupervisor(settings, StartedRepo(utcnow() if started_at else None))
    assert supervisor._run_deadline(RUN_ID) is None


class FakeJobs:
    """The head's jobs as ``_prune_old_jobs`` sees them: a listing (which may lag) and lookups by id; a job in
    ``comes_back`` is written again once after its first delete, as Ray's job supervisor can do."""

    def __init__(self, listed: list[str], ended: dict[str, int | None], comes_back: tuple[str, ...] = ()) -> None:
        self.listed, self.ended, self.deleted, self.comes_back = listed, ended, [], set(comes_back)

    def prune(self, is_ours, older_than_seconds: float) -> list[str]:
        pruned = [sid for sid in self.listed if self.ended.get(sid) and is_ours(sid)]
        self.deleted += pruned
        return pruned

    def snapshot(self, submission_id: str) -> JobSnapshot:
        end = self.ended.get(submission_id)
        return JobSnapshot(JobState.SUCCEEDED if end else JobState.RUNNING, end_time_ms=end)

    def delete(self, submission_id: str) -> bool:
        self.deleted.append(submission_id)
        if submission_id in self.comes_back:
            self.comes_back.discard(submission_id)
        else:
            self.ended.pop(submission_id, None)
        return True


class StatusRepo:
    def __init__(self, statuses: dict[int, Status]) -> None:
        self.statuses = statuses

    def get_status(self, run_id: int) -> Status | None:
        return self.statuses.get(run_id)

    is_settled = RunRepository.is_settled  # the real one, on these statuses


@pytest.mark.parametrize(("retention", "own_status", "own_ended", "comes_back", "deleted"), [
    (0, Status.FINISHED, 1, False, True),  # missing from the listing, deleted by its id
    (0, Status.FINISHED, 1, True, True),  # written again after the delete: deleted again
    (0, Status.STARTED, 1, False, False),  # its run is not settled: its supervisor may still read it
    (0, Status.FINISHED, None, False, False),  # not ended yet
    (3600, Status.FINISHED, 1, False, False),  # younger than the retention
], ids=["settled", "comes-back", "unsettled", "running", "young"])
def test_retention_zero_deletes_the_own_ended_job_for_good_even_when_the_listing_lags(
    sup, settings, monkeypatch, retention, own_status, own_ended, comes_back, deleted
):
    from syncmaster_ray.ids import submission_id_for

    own, other = (submission_id_for(run_id, settings.job_namespace) for run_id in (RUN_ID, RUN_ID + 1))
    jobs = FakeJobs(listed=[other], ended={own: own_ended, other: 1}, comes_back=(own,) if comes_back else ())
    monkeypatch.setattr(sup, "RayJobs", lambda address: jobs)
    monkeypatch.setattr(sup, "OWN_JOB_RECHECKS", (0, 0, 0))
    settings.ray.job_retention_seconds = retention
    repo = StatusRepo({RUN_ID: own_status, RUN_ID + 1: Status.FINISHED})

    forgetter = sup.RunSupervisor(settings, repo)._prune_old_jobs(own)
    if forgetter is not None:
        forgetter.join(timeout=10)

    assert (own in jobs.deleted) is deleted
    if deleted:
        assert own not in jobs.ended  # and it stays deleted
    assert other in jobs.deleted  # the listed settled job goes either way (FakeJobs ignores its age)


class RefusingClient:
    """A ``JobSubmissionClient`` whose delete is refused the way Ray refuses a job deleted concurrently."""

    def __init__(self, still_there: bool) -> None:
        self.still_there = still_there

    def delete_job(self, submission_id: str) -> None:
        raise RuntimeError(f"Request failed with status code 500: Attempted to delete job '{submission_id}', but "
                           "it is in a non-terminal state None.")

    def get_job_info(self, submission_id: str):
        if not self.still_there:
            raise RuntimeError(f"Request failed with status code 404: Job {submission_id} does not exist.")
        return type("Info", (), {"status": "SUCCEEDED", "message": "", "start_time": 1, "end_time": 2})()


@pytest.mark.parametrize(("still_there", "gone"), [(False, True), (True, False)], ids=["deleted-by-another",
                                                                                       "really-refused"])
def test_delete_refused_because_another_supervisor_deleted_it_counts_as_gone(still_there, gone):
    from syncmaster_ray.ray_client import RayJobs

    jobs = RayJobs.__new__(RayJobs)
    jobs._client = RefusingClient(still_there)
    assert jobs.delete("smr-x-run-1") is gone


class UnavailableClient:
    """A ``JobSubmissionClient`` right after ``ray start --head``: no job agent registered yet."""

    def get_job_info(self, submission_id: str):
        raise RuntimeError(f"Request failed with status code 404: Job {submission_id} does not exist.")

    def submit_job(self, **kwargs):
        raise RuntimeError("Request failed with status code 500: No available agent to submit job, please try "
                           "again later.")


def test_no_available_agent_is_a_refusal_for_now_not_for_good():
    from syncmaster_ray.errors import SubmitUnavailableError
    from syncmaster_ray.ray_client import RayJobs

    jobs = RayJobs.__new__(RayJobs)
    jobs._client = UnavailableClient()
    with pytest.raises(SubmitUnavailableError) as refused:
        jobs.submit(submission_id="smr-x-run-1", entrypoint="true", metadata={})
    assert refused.value.code == "submit" and "No available agent" in refused.value.reason


def test_transient_refusals_are_retried_within_the_grace_and_permanent_ones_are_not(sup, settings, monkeypatch):
    from syncmaster_ray.errors import SubmitError, SubmitUnavailableError

    monkeypatch.setattr(sup.time, "sleep", lambda seconds: None)
    supervisor = sup.RunSupervisor(settings, repo=None, worker_id="w")
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise SubmitUnavailableError("No available agent to submit job")
        return "submitted"

    assert supervisor._within_grace("submit", flaky) == "submitted" and len(calls) == 3

    def refused():
        calls.append(1)
        raise SubmitError("Ray refused job: bad entrypoint")

    calls.clear()
    with pytest.raises(SubmitError):
        supervisor._within_grace("submit", refused)
    assert len(calls) == 1

    settings.worker.ray_unreachable_grace_seconds = 0.01
    clock = iter(range(0, 1000))
    monkeypatch.setattr(sup.time, "monotonic", lambda: next(clock))
    with pytest.raises(SubmitUnavailableError):
        supervisor._within_grace("submit", lambda: (_ for _ in ()).throw(SubmitUnavailableError("still none")))
