"""``RunSupervisor``: everything the Celery task does for one run, kept free of Celery so it reads top to bottom.

claim (CREATED -> STARTED, with started_at and log_url) -> submit the Ray job (or re-attach to it) -> watch it,
forwarding SEND_STOP_SIGNAL -> persist the job's message and log tail -> write FINISHED / FAILED / STOPPED.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from syncmaster_ray.db.engine import get_engine
from syncmaster_ray.db.models import Run, Status
from syncmaster_ray.db.repository import ACTIVE_STATUSES, RunRepository, utcnow
from syncmaster_ray.errors import JobLostError, SyncmasterRayError
from syncmaster_ray.ids import run_id_of, submission_id_for
from syncmaster_ray.links import render_log_url
from syncmaster_ray.outcome import classify
from syncmaster_ray.ray_client import JobSnapshot, JobState, RayJobs
from syncmaster_ray.redact import redact
from syncmaster_ray.settings import AppSettings, get_settings

log = logging.getLogger(__name__)
SETTLED = (Status.FINISHED, Status.FAILED, Status.STOPPED)
# Retention 0: how long after its run a job's record is watched for Ray writing it again (seconds between checks).
OWN_JOB_RECHECKS = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0)


class TransferFailed(SyncmasterRayError):
    """Raised at the end of a failed run so Celery records the task as FAILURE, as the stock worker does."""

    code = "transfer_failed"


@dataclass(frozen=True)
class Verdict:
    status: Status
    code: str | None = None
    reason: str | None = None

    @classmethod
    def failed(cls, code: str, reason: str) -> Verdict:
        return cls(Status.FAILED, code, reason)

    @classmethod
    def stopped(cls, reason: str) -> Verdict:
        return cls(Status.STOPPED, "stopped", reason)


@dataclass
class Watch:
    """What happened while a job was watched: its last snapshot and whether we stopped it, and why."""

    snapshot: JobSnapshot
    stop_requested: bool = False
    timed_out: bool = False


class RunSupervisor:
    def __init__(self, settings: AppSettings, repo: RunRepository) -> None:
        self.settings = settings
        self.repo = repo

    @classmethod
    def from_settings(cls) -> RunSupervisor:
        settings = get_settings()
        return cls(settings, RunRepository(get_engine(settings.database.sync_url)))

    def supervise(self, run_id: int, *, correlation_id: str) -> str:
        run = self.repo.get_run(run_id)
        if run is None:
            log.warning("Run %s not found: nothing to do", run_id)
            return "skipped"
        submission_id = submission_id_for(run_id, self.settings.job_namespace)
        if not self._take(run, submission_id, correlation_id):
            return "skipped"
        verdict = self._run_job(run_id, submission_id)
        self._finish(run_id, submission_id, verdict)
        self._prune_old_jobs(submission_id)
        if verdict.status is Status.FAILED:
            raise TransferFailed(f"run {run_id} failed: {verdict.reason}")
        return verdict.status.value

    # --- taking the run ----------------------------------------------------------------------------------------
    def _take(self, run: Run, submission_id: str, correlation_id: str) -> bool:
        """Claim a CREATED run, or re-attach to the job of a run whose earlier worker died mid-way."""
        if run.status == Status.CREATED:
            run.started_at = utcnow()
            log_url = render_log_url(self.settings, run=run, correlation_id=correlation_id,
                                     submission_id=submission_id)
            if not self.repo.claim_run(run.id, started_at=run.started_at, log_url=log_url):
                log.info("Run %s was claimed, stopped or finished meanwhile: skipped", run.id)
                return False
            self.repo.record(run.id, submission_id=submission_id, correlation_id=correlation_id,
                             ray_job_status=JobState.PENDING.value, error_code=None, reason=None)
            log.info("Run %s claimed; Ray job %s; log_url %s", run.id, submission_id, log_url)
            return True
        record = self.repo.get_record(run.id)
        if run.status == Status.SEND_STOP_SIGNAL and (record is None or record.submission_id is None):
            verdict = Verdict.stopped("stopped before any worker took it")
            self.repo.end_run(run.id, verdict.status, from_statuses=(Status.SEND_STOP_SIGNAL.value,))
            self.repo.record(run.id, error_code=verdict.code, reason=verdict.reason)
            log.info("Run %s was stopped before it started: STOPPED", run.id)
            return False
        if run.status in ACTIVE_STATUSES and record is not None and record.submission_id == submission_id:
            log.warning("Run %s is %s already: re-attaching to Ray job %s", run.id, run.status, submission_id)
            return True
        log.info("Run %s is %s: not ours to run, skipped", run.id, run.status)
        return False

    # --- the Ray job -------------------------------------------------------------------------------------------
    def _run_job(self, run_id: int, submission_id: str) -> Verdict:
        try:
            jobs = RayJobs(self.settings.ray.address)
            jobs.submit(
                submission_id=submission_id,
                entrypoint=f"{self.settings.ray.job_python} -m syncmaster_ray.job --run-id {run_id}",
                metadata={"syncmaster_run_id": str(run_id), "submitted_by": "syncmaster-ray"},
            )
            watch = self._watch(jobs, run_id, submission_id)
        except SyncmasterRayError as exc:
            return Verdict.failed(*classify(exc, self._secrets()))
        verdict = self._judge(run_id, watch.snapshot, watch.stop_requested, timed_out=watch.timed_out)
        self._persist_logs(jobs, run_id, submission_id, watch.snapshot)
        return verdict

    def _run_deadline(self, run_id: int) -> float | None:
        """Monotonic time at which the run times out, counted from its ``started_at`` (a re-attaching worker
        inherits the time already spent)."""
        timeout = self.settings.worker.run_timeout_seconds
        run = self.repo.get_run(run_id)
        if not timeout or run is None or run.started_at is None:
            return None
        elapsed = (utcnow() - run.started_at).total_seconds()
        return time.monotonic() + timeout - max(elapsed, 0.0)

    def _watch(self, jobs: RayJobs, run_id: int, submission_id: str) -> Watch:
        """Poll until the job ends, marking the run alive, and stop the job once: on a stop request, or when the
        run timeout passes.

        An unreachable Jobs API (a head restarting) is waited out for ``ray_unreachable_grace_seconds``.
        """
        stop_requested = timed_out = False
        deadline = self._run_deadline(run_id)
        last_state: JobState | None = None
        unreachable_since: float | None = None
        next_heartbeat = 0.0
        while True:
            try:
                snapshot = jobs.snapshot(submission_id)
            except Exception as exc:  # requests' ConnectionError and friends while the head is down
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > self.settings.worker.ray_unreachable_grace_seconds:
                    raise JobLostError(f"the Ray Jobs API did not answer for "
                                       f"{self.settings.worker.ray_unreachable_grace_seconds:.0f} s "
                                       f"({type(exc).__name__})") from None
                time.sleep(self.settings.worker.job_poll_interval_seconds)
                continue
            unreachable_since = None
            if snapshot.state is not last_state:
                self.repo.record(run_id, ray_job_status=snapshot.state.value)
                last_state = snapshot.state
            if snapshot.state.is_terminal():
                return Watch(snapshot, stop_requested, timed_out)
            if not (stop_requested or timed_out):
                if self.repo.get_status(run_id) == Status.SEND_STOP_SIGNAL:
                    log.info("Run %s: stop requested, stopping Ray job %s", run_id, submission_id)
                    jobs.stop(submission_id)
                    stop_requested = True
                elif deadline is not None and time.monotonic() >= deadline:
                    log.warning("Run %s: run timeout passed, stopping Ray job %s", run_id, submission_id)
                    jobs.stop(submission_id)
                    timed_out = True
            if time.monotonic() >= next_heartbeat:
                self._heartbeat(jobs, run_id, submission_id, snapshot.state)
                next_heartbeat = time.monotonic() + self.settings.worker.heartbeat_seconds
            time.sleep(self.settings.worker.job_poll_interval_seconds)

    def _heartbeat(self, jobs: RayJobs, run_id: int, submission_id: str, state: JobState) -> None:
        """Mark the run as supervised (our row's ``updated_at``) and keep its log tail so far: a restarting head
        forgets the job and its logs."""
        try:
            tail = jobs.logs_tail(submission_id, self._secrets())
        except Exception:
            tail = None
        self.repo.record(run_id, ray_job_status=state.value, **({"log_tail": tail} if tail else {}))

    # --- runs whose worker is gone -------------------------------------------------------------------------------
    def reconcile(self, stale_seconds: float) -> list[tuple[int, str]]:
        """Settle active runs nobody has marked alive for ``stale_seconds``: end those whose job ended or is gone,
        hand those whose job still runs back to a worker (the task is sent again; the worker re-attaches)."""
        return [(run_id, self._reconcile_one(run_id, submission_id, slug))
                for run_id, submission_id, slug in self.repo.stale_active_runs(stale_seconds)]

    def _reconcile_one(self, run_id: int, submission_id: str | None, slug: str) -> str:
        if submission_id is None:
            verdict = Verdict.failed("worker_lost", "the worker that took the run was lost before it submitted the "
                                     "Ray job")
            self._finish(run_id, "-", verdict)
            return verdict.status.value
        try:
            jobs = RayJobs(self.settings.ray.address)
            snapshot = jobs.snapshot(submission_id)
        except Exception as exc:
            log.warning("Run %s: Ray did not answer (%s); left for the next pass", run_id, type(exc).__name__)
            return "unreachable"
        if not snapshot.state.is_terminal():
            from syncmaster_ray.worker.app import app  # noqa: PLC0415 (builds the Celery app from settings)

            self.repo.record(run_id, ray_job_status=snapshot.state.value)  # marks it, so one pass sends once
            app.send_task("run_transfer_task", kwargs={"run_id": run_id}, queue=slug)
            return "handed back to a worker"
        stop_requested = self.repo.get_status(run_id) == Status.SEND_STOP_SIGNAL
        verdict = self._judge(run_id, snapshot, stop_requested)
        if snapshot.state is not JobState.MISSING:
            self._persist_logs(jobs, run_id, submission_id, snapshot)
        self._finish(run_id, submission_id, verdict)
        return verdict.status.value

    def _judge(self, run_id: int, snapshot: JobSnapshot, stop_requested: bool, *, timed_out: bool = False
               ) -> Verdict:
        """The one mapping from a Ray job's end to a SyncMaster status and reason."""
        if snapshot.state is JobState.SUCCEEDED:
            return Verdict(Status.FINISHED)
        if timed_out and snapshot.state is not JobState.MISSING:
            timeout = self.settings.worker.run_timeout_seconds
            return Verdict.failed("timed_out", f"the run was still going after {timeout:g} s and was stopped "
                                  "(SYNCMASTER__WORKER__RUN_TIMEOUT_SECONDS)")
        if snapshot.state is JobState.STOPPED and stop_requested:
            return Verdict.stopped("stopped on request")
        if snapshot.state is JobState.MISSING:
            error = JobLostError("the Ray job is gone (was the Ray head restarted?)")
            return Verdict.failed(error.code, error.reason)
        if snapshot.state is JobState.STOPPED:
            return Verdict.failed("stopped_externally", "the Ray job was stopped outside SyncMaster")
        record = self.repo.get_record(run_id)
        if record is not None and record.reason:
            return Verdict.failed(record.error_code, record.reason)
        message = redact(" ".join(snapshot.message.split()), self._secrets())[:1000]
        return Verdict.failed("job_failed", f"the Ray job failed: {message or 'no message'}")

    def _persist_logs(self, jobs: RayJobs, run_id: int, submission_id: str, snapshot: JobSnapshot) -> None:
        """Keep the job's message and log tail in our table: the Ray head forgets jobs when it restarts. A tail
        saved by an earlier heartbeat is kept when the job's logs are gone."""
        try:
            tail = jobs.logs_tail(submission_id, self._secrets())
        except Exception as exc:  # logs are a convenience; never fail a run because of them
            log.warning("Run %s: could not fetch the Ray job's logs: %s", run_id, redact(str(exc), self._secrets()))
            tail = None
        self.repo.record(run_id, job_message=redact(snapshot.message, self._secrets())[:4000],
                         **({"log_tail": tail} if tail else {}))

    def _prune_old_jobs(self, own_submission_id: str) -> threading.Thread | None:
        """Retention of the head's job records: ours only, and only of settled runs (their supervisor has saved the
        logs and written the status; a job deleted earlier would look lost to it). With retention 0 the run's own
        job is forgotten by a background thread, returned so a test can join it."""
        namespace = self.settings.job_namespace

        def is_ours_and_settled(submission_id: str) -> bool:
            run_id = run_id_of(submission_id)
            return (run_id is not None and submission_id == submission_id_for(run_id, namespace)
                    and self.repo.get_status(run_id) in SETTLED)

        retention = self.settings.ray.job_retention_seconds
        try:
            jobs = RayJobs(self.settings.ray.address)
            pruned = jobs.prune(is_ours_and_settled, retention)
            forget_own = retention <= 0 and is_ours_and_settled(own_submission_id)
        except Exception as exc:  # housekeeping never fails a run
            log.warning("Could not prune old Ray jobs: %s", redact(str(exc), self._secrets()))
            return None
        if pruned:
            log.info("Deleted %d ended Ray job record(s) past retention", len(pruned))
        if not forget_own:
            return None
        forgetter = threading.Thread(target=self._forget_own_job, args=(jobs, own_submission_id), daemon=True,
                                     name=f"forget-{own_submission_id}")
        forgetter.start()
        return forgetter

    def _forget_own_job(self, jobs: RayJobs, submission_id: str) -> None:
        """Delete a just-ended job of our own, and again if Ray writes it back. Ray's job manager notices the
        job's supervisor actor exit a moment after the job ended; when the record is gone by then, it writes a
        new one ("Entrypoint not found.", FAILED), and does so once. A slow node can take many seconds, hence a
        thread rather than a wait in the task."""
        deletions = 0
        try:
            for pause in OWN_JOB_RECHECKS:
                if jobs.snapshot(submission_id).end_time_ms and jobs.delete(submission_id):
                    if deletions:
                        log.info("Ray job %s was written again after its deletion: deleted again", submission_id)
                    deletions += 1
                if deletions == 2:
                    return
                time.sleep(pause)
        except Exception as exc:  # the next run's prune deletes what this one left
            log.warning("Could not delete Ray job %s: %s", submission_id, redact(str(exc), self._secrets()))

    def _finish(self, run_id: int, submission_id: str, verdict: Verdict) -> None:
        if verdict.status is not Status.FINISHED:
            self.repo.record(run_id, error_code=verdict.code, reason=verdict.reason)
        if not self.repo.end_run(run_id, verdict.status):
            log.warning("Run %s was no longer active: %s not written", run_id, verdict.status)
            return
        log.info("Run %s (Ray job %s): %s%s", run_id, submission_id, verdict.status,
                 f" [{verdict.code}] {verdict.reason}" if verdict.reason else "")

    def _secrets(self) -> tuple[str, ...]:
        return self.settings.secret_values()
