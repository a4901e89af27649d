"""``RunSupervisor``: everything a worker does for one run, kept free of Celery so it reads top to bottom.

take (claim a CREATED run, or take over one whose supervision lease is stale) -> wait for a free slot of this
worker -> submit the Ray job (never twice) -> watch it, forwarding SEND_STOP_SIGNAL, renewing the lease -> persist
the job's message and log tail -> a transient failure that is safe to repeat: wait, then the next attempt, a Ray
job of its own (``attempts.py``) -> write FINISHED / FAILED / STOPPED and the reason in one transaction.

Workers also settle runs whose supervisor is gone (``reconcile``): any worker may, and exactly one does per run.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from syncmaster_ray.attempts import FailedAttempt, delay_before, is_safe_to_repeat, is_transient, listed
from syncmaster_ray.db.engine import get_engine
from syncmaster_ray.db.models import RayRun, Run, Status
from syncmaster_ray.db.repository import ACTIVE_STATUSES, RunRepository, utcnow
from syncmaster_ray.errors import ErrorCode, JobLostError, LeaseLost, Phase, SubmitUnavailableError, SyncmasterRayError
from syncmaster_ray.ids import attempt_of, is_submission_of, run_id_of, submission_id_for
from syncmaster_ray.links import render_log_url
from syncmaster_ray.outcome import classify
from syncmaster_ray.ray_client import JobSnapshot, JobState, RayJobs
from syncmaster_ray.redact import redact
from syncmaster_ray.settings import AppSettings, get_settings

log = logging.getLogger(__name__)
# Retention 0: how long after its run a job's record is watched for Ray writing it again (seconds between checks).
OWN_JOB_RECHECKS = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0)
# A job entrypoint whose interpreter lacks our package (or one of its dependencies) dies with this line.
_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '(?P<module>[\w.]+)'")
# How long supervision backs off after an unexpected error (a database blip, a Jobs API hiccup) before going on.
ERROR_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


def was_submitted(record: object | None) -> bool:
    """Whether the run's Ray job was ever submitted (``submitted_at``; a job status other than PENDING also says
    so for runs an older worker version submitted)."""
    if record is None:
        return False
    return getattr(record, "submitted_at", None) is not None or getattr(record, "ray_job_status", None) not in (
        None, JobState.PENDING.value)


_worker_ids: dict[int, str] = {}


def current_worker_id() -> str:
    """This process's name on supervision leases: host, pid and a random part (pids repeat after restarts), one per
    process (a forked pool child gets one of its own)."""
    pid = os.getpid()
    if pid not in _worker_ids:
        _worker_ids[pid] = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:6]}"
    return _worker_ids[pid]


def _is_transient(exc: BaseException) -> bool:
    """A Jobs API failure worth retrying: it cannot take jobs yet, or it cannot be reached (requests' errors)."""
    return isinstance(exc, SubmitUnavailableError) or (
        isinstance(exc, Exception) and not isinstance(exc, (SyncmasterRayError, LeaseLost)))


@dataclass(frozen=True)
class Verdict:
    status: Status
    code: str | None = None  # an ErrorCode, or the code the job recorded
    reason: str | None = None

    @classmethod
    def failed(cls, code: str, reason: str) -> Verdict:
        return cls(Status.FAILED, code, reason)

    @classmethod
    def stopped(cls, reason: str) -> Verdict:
        return cls(Status.STOPPED, ErrorCode.STOPPED, reason)


@dataclass(frozen=True)
class Taken:
    """A run this worker now supervises."""

    run_id: int
    submission_id: str
    slug: str  # the queue its task came from (a run handed back is sent there again)
    took_over: bool = False  # a run another worker had (a stale or released lease), not a fresh claim


@dataclass
class Watch:
    """What happened while a job was watched: its last snapshot and whether we stopped it, and why."""

    snapshot: JobSnapshot
    stop_requested: bool = False
    timed_out: bool = False


class RunSupervisor:
    def __init__(self, settings: AppSettings, repo: RunRepository, worker_id: str | None = None) -> None:
        self.settings = settings
        self.repo = repo
        self.worker_id = worker_id or current_worker_id()

    @classmethod
    def from_settings(cls, worker_id: str | None = None) -> RunSupervisor:
        settings = get_settings()
        return cls(settings, RunRepository(get_engine(settings.database.sync_url)), worker_id)

    @property
    def stale_seconds(self) -> float:
        return self.settings.worker.stale_seconds

    # --- taking the run ----------------------------------------------------------------------------------------
    def take(self, run_id: int, *, correlation_id: str) -> Taken | None:
        """Claim a CREATED run, or take over a run whose supervisor is gone (stale or released lease).

        None when there is nothing for this worker to do: no such run, another worker has it, or it ended (a run
        stopped before any worker took it is ended STOPPED here)."""
        run = self.repo.get_run(run_id)
        if run is None:
            log.warning("Run %s not found: nothing to do", run_id)
            return None
        submission_id = submission_id_for(run_id, self.settings.job_namespace)
        slug = run.transfer.queue.slug
        if run.status == Status.CREATED and self._claim(run, submission_id, correlation_id):
            return Taken(run_id, submission_id, slug)
        status = self.repo.get_status(run_id)  # again: a stop may have landed between the read and the claim
        record = self.repo.get_record(run_id)
        if status == Status.SEND_STOP_SIGNAL and not was_submitted(record):
            self._finish(run_id, Verdict.stopped("stopped before its Ray job was submitted"), "-")
            return None
        if status is not None and status.value in ACTIVE_STATUSES and record is not None and record.submission_id \
                and is_submission_of(record.submission_id, run_id, self.settings.job_namespace):
            if self.repo.take_over(run_id, supervisor=self.worker_id, stale_seconds=self.stale_seconds):
                log.warning("Run %s is %s and nobody supervises it: taking it over (Ray job %s)", run_id, status,
                            record.submission_id)
                return Taken(run_id, record.submission_id, slug, took_over=True)
            log.info("Run %s is supervised by a live worker: skipped", run_id)
            return None
        log.info("Run %s is %s: not ours to run, skipped", run_id, status)
        return None

    def _claim(self, run: Run, submission_id: str, correlation_id: str) -> bool:
        started_at = utcnow()
        log_url = render_log_url(self.settings.worker.log_url_template, self.settings.ray.public_dashboard_url,
                                 run=run, correlation_id=correlation_id, submission_id=submission_id)
        claimed = self.repo.claim_run(
            run.id, started_at=started_at, log_url=log_url, submission_id=submission_id,
            correlation_id=correlation_id, supervisor=self.worker_id, ray_job_status=JobState.PENDING.value,
        )
        if claimed:
            log.info("Run %s claimed; Ray job %s; log_url %s", run.id, submission_id, log_url)
        return claimed

    # --- supervising it --------------------------------------------------------------------------------------------
    def supervise(self, taken: Taken, slot: Callable[[Callable[[], bool]], bool] | None = None) -> Verdict | None:
        """Run ``taken`` to its end; returns its verdict, or None when another worker took it over.

        ``slot(keep_waiting)`` blocks until this worker may run one more job (the worker's limit), calling
        ``keep_waiting()`` now and then; it returns False when waiting was given up (``keep_waiting`` said so)."""
        run_id, submission_id = taken.run_id, taken.submission_id
        try:
            if slot is not None and not slot(lambda: self._still_wanted(run_id)):
                return self._settle_unsubmitted(run_id)
            while True:
                verdict = self._run_job(run_id, submission_id)
                next_id, verdict = self._next_attempt(run_id, submission_id, verdict)
                if next_id is None:
                    break
                submission_id = next_id
            verdict = self._with_earlier_attempts(run_id, verdict)
        except LeaseLost:
            log.warning("Run %s was taken over by another worker: no longer watched here", run_id)
            return None
        self._finish(run_id, verdict, submission_id)
        self._prune_old_jobs(submission_id)
        return verdict

    # --- attempts ------------------------------------------------------------------------------------------------
    def _retryable(self, record: RayRun | None, submission_id: str, verdict: Verdict) -> bool:
        """Whether a failed attempt (``record`` is the run's row) gets another (``attempts.py``): a transient
        failure, safe to repeat, with attempts left."""
        return (verdict.status is Status.FAILED and attempt_of(submission_id) < self.settings.worker.attempts
                and is_transient(verdict.code, verdict.reason)
                and is_safe_to_repeat(verdict.code, getattr(record, "repeatable", None)))

    def _next_attempt(self, run_id: int, submission_id: str, verdict: Verdict) -> tuple[str | None, Verdict]:
        """(the next attempt's submission id, once it may be submitted; or None and the verdict that stands).
        The failed attempt is added to the run's list; a stop asked for during the pause ends the run STOPPED."""
        record = self.repo.get_record(run_id)
        if not self._retryable(record, submission_id, verdict):
            return None, verdict
        attempt = attempt_of(submission_id)
        failed = {"attempt": attempt, "submission_id": submission_id, "code": verdict.code, "reason": verdict.reason}
        # A worker taking the run over during the pause judges the same failed attempt again: listed once.
        earlier = [item for item in record.attempts or [] if item.get("submission_id") != submission_id]
        self._renew(run_id, attempts=[*earlier, failed])
        delay = delay_before(attempt + 1, self.settings.worker.attempt_delays_seconds)
        log.warning("Run %s: attempt %d failed [%s]; attempt %d in %.0f s", run_id, attempt, verdict.code,
                    attempt + 1, delay)
        if not self._pause(run_id, delay):
            return None, Verdict.stopped("stopped on request between attempts")
        next_id = submission_id_for(run_id, self.settings.job_namespace, attempt + 1)
        run = self.repo.get_run(run_id)
        log_url = render_log_url(self.settings.worker.log_url_template, self.settings.ray.public_dashboard_url,
                                 run=run, correlation_id=record.correlation_id or "", submission_id=next_id)
        if not self.repo.start_attempt(run_id, supervisor=self.worker_id, log_url=log_url, submission_id=next_id,
                                       attempt=attempt + 1, submitted_at=None, ray_job_status=JobState.PENDING.value,
                                       error_code=None, reason=None, job_message=None, phase=None, progress=None):
            if self.repo.get_status(run_id) == Status.SEND_STOP_SIGNAL:
                return None, Verdict.stopped("stopped on request between attempts")
            raise LeaseLost(run_id)
        return next_id, verdict

    def _pause(self, run_id: int, seconds: float) -> bool:
        """Wait ``seconds``, renewing the lease; False as soon as the run is no longer STARTED (a stop)."""
        until = time.monotonic() + seconds
        while True:
            self._renew(run_id)
            if self.repo.get_status(run_id) != Status.STARTED:
                return False
            left = until - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, self.settings.worker.job_poll_interval_seconds))

    def _with_earlier_attempts(self, run_id: int, verdict: Verdict) -> Verdict:
        """A failed run's reason lists every attempt when there was more than one."""
        record = self.repo.get_record(run_id)
        earlier = (record.attempts or []) if record is not None else []
        if verdict.status is not Status.FAILED or not earlier:
            return verdict
        attempts = [FailedAttempt(**item) for item in earlier]
        last = FailedAttempt(attempt=(record.attempt or 1), submission_id=record.submission_id or "",
                             code=verdict.code, reason=verdict.reason)
        return Verdict.failed(verdict.code or ErrorCode.INTERNAL, listed(attempts, last))

    def _still_wanted(self, run_id: int) -> bool:
        """While the run waits for a slot: renew the lease; False once a stop was asked for or it ended."""
        self._renew(run_id, phase=Phase.WAITING_FOR_WORKER)
        return self.repo.get_status(run_id) == Status.STARTED

    def _settle_unsubmitted(self, run_id: int) -> Verdict | None:
        if self.repo.get_status(run_id) == Status.SEND_STOP_SIGNAL:
            verdict = Verdict.stopped("stopped before its Ray job was submitted")
            self._finish(run_id, verdict, "-")
            return verdict
        return None

    def _renew(self, run_id: int, **fields: object) -> None:
        if not self.repo.renew_lease(run_id, supervisor=self.worker_id, **fields):
            raise LeaseLost(run_id)

    # --- the Ray job -------------------------------------------------------------------------------------------
    def _run_job(self, run_id: int, submission_id: str) -> Verdict:
        try:
            jobs = self._connect(run_id)
            if not self._submit_once(jobs, run_id, submission_id):
                return Verdict.failed(ErrorCode.JOB_LOST, "the Ray job was submitted but the Ray head does not know it "
                                      "(was the Ray head restarted?); it is not submitted again, since it may have "
                                      "written already")
            watch = self._watch(jobs, run_id, submission_id)
        except SyncmasterRayError as exc:
            return Verdict.failed(*classify(exc, self._secrets()))
        tail = self._persist_logs(jobs, run_id, submission_id, watch.snapshot)
        return self._judge(run_id, watch.snapshot, watch.stop_requested, timed_out=watch.timed_out, log_tail=tail)

    def _connect(self, run_id: int | None = None) -> RayJobs:
        """The Jobs API client; a head that cannot be reached yet (restarting) is waited for up to the grace."""
        return self._within_grace("reach the Ray Jobs API", lambda: RayJobs(self.settings.ray.address), run_id)

    def _submit_once(self, jobs: RayJobs, run_id: int, submission_id: str) -> bool:
        """Submit the run's job unless it exists; False when it was submitted before and the head forgot it."""
        snapshot = self._within_grace("look the Ray job up", lambda: jobs.snapshot(submission_id), run_id)
        if snapshot.state is not JobState.MISSING:
            log.info("Run %s: re-attaching to Ray job %s (%s)", run_id, submission_id, snapshot.state)
            return True
        if was_submitted(self.repo.get_record(run_id)):
            return False
        if self.repo.get_status(run_id) != Status.STARTED:  # stopped or ended while it waited for a slot
            raise LeaseLost(run_id)
        # Marked before the call: a worker lost right after it must not submit a second job.
        self._renew(run_id, submitted_at=utcnow())
        attempt = attempt_of(submission_id)
        self._within_grace("submit the Ray job", lambda: jobs.submit(
            submission_id=submission_id,
            entrypoint=f"{self.settings.ray.job_python} -m syncmaster_ray.job --run-id {run_id}"
                       + (f" --attempt {attempt}" if attempt > 1 else ""),
            metadata={"syncmaster_run_id": str(run_id), "submitted_by": "syncmaster-ray"},
        ), run_id)
        return True

    def _within_grace(self, what: str, call: Callable[[], object], run_id: int | None = None) -> object:
        """``call()``, retried while it fails transiently (head unreachable or restarting, "no available agent")
        for up to ``ray_unreachable_grace_seconds``, renewing ``run_id``'s lease meanwhile; permanent refusals are
        raised at once."""
        grace = self.settings.worker.ray_unreachable_grace_seconds

        def renew_lease(state: RetryCallState) -> None:
            if run_id is not None and state.attempt_number > 1:
                self._renew(run_id)

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.info("Could not %s (%s): trying again", what, redact(str(error), self._secrets())[:200])

        retrying = Retrying(retry=retry_if_exception(_is_transient), stop=stop_after_delay(grace),
                            wait=wait_exponential(max=5), before=renew_lease, before_sleep=log_retry, reraise=True)
        try:
            return retrying(call)
        except (SyncmasterRayError, LeaseLost):
            raise
        except Exception as exc:  # requests' ConnectionError and friends, for the whole grace
            raise JobLostError(f"the Ray Jobs API did not answer for {grace:.0f} s while trying to {what} "
                               f"({type(exc).__name__})") from None

    def _run_deadline(self, run_id: int) -> float | None:
        """Monotonic time at which the run times out, counted from its ``started_at`` (a worker taking it over
        inherits the time already spent)."""
        timeout = self.settings.worker.run_timeout_seconds
        run = self.repo.get_run(run_id)
        if not timeout or run is None or run.started_at is None:
            return None
        elapsed = (utcnow() - run.started_at).total_seconds()
        return time.monotonic() + timeout - max(elapsed, 0.0)

    def _watch(self, jobs: RayJobs, run_id: int, submission_id: str) -> Watch:
        """Poll until the job ends, renewing the lease, and stop the job once: on a stop request, or when the run
        timeout passes.

        An unreachable Jobs API (a head restarting) is waited out for ``ray_unreachable_grace_seconds``, the lease
        still renewed; any other unexpected error (a database blip) is logged and retried with a backoff."""
        watch = Watch(JobSnapshot(JobState.PENDING))
        deadline = self._run_deadline(run_id)
        last_state: JobState | None = None
        unreachable_since: float | None = None
        next_heartbeat, errors = 0.0, 0
        while True:
            try:
                try:
                    watch.snapshot = jobs.snapshot(submission_id)
                    unreachable_since = None
                except Exception as exc:  # requests' ConnectionError and friends while the head is down
                    unreachable_since = unreachable_since or time.monotonic()
                    grace = self.settings.worker.ray_unreachable_grace_seconds
                    if time.monotonic() - unreachable_since > grace:
                        raise JobLostError(f"the Ray Jobs API did not answer for {grace:.0f} s "
                                           f"({type(exc).__name__})") from None
                if unreachable_since is None:
                    state = watch.snapshot.state
                    if state is not last_state:
                        self.repo.record(run_id, ray_job_status=state.value)
                        last_state = state
                    if state.is_terminal():
                        return watch
                    self._stop_if_asked(jobs, run_id, submission_id, watch, deadline)
                if time.monotonic() >= next_heartbeat:
                    self._heartbeat(jobs, run_id, submission_id, watch.snapshot.state,
                                    with_logs=unreachable_since is None)
                    next_heartbeat = time.monotonic() + self.settings.worker.heartbeat_seconds
                errors = 0
            except (SyncmasterRayError, LeaseLost):
                raise
            except Exception:
                pause = ERROR_BACKOFF_SECONDS[min(errors, len(ERROR_BACKOFF_SECONDS) - 1)]
                errors += 1
                log.warning("Run %s: error while watching Ray job %s; retrying in %.0f s", run_id, submission_id,
                            pause, exc_info=True)
                time.sleep(pause)
                continue
            time.sleep(self.settings.worker.job_poll_interval_seconds)

    def _stop_if_asked(self, jobs: RayJobs, run_id: int, submission_id: str, watch: Watch,
                       deadline: float | None) -> None:
        if watch.stop_requested or watch.timed_out:
            return
        if self.repo.get_status(run_id) == Status.SEND_STOP_SIGNAL:
            log.info("Run %s: stop requested, stopping Ray job %s", run_id, submission_id)
            jobs.stop(submission_id)
            watch.stop_requested = True
        elif deadline is not None and time.monotonic() >= deadline:
            log.warning("Run %s: run timeout passed, stopping Ray job %s", run_id, submission_id)
            jobs.stop(submission_id)
            watch.timed_out = True

    def _heartbeat(self, jobs: RayJobs, run_id: int, submission_id: str, state: JobState, *,
                   with_logs: bool = True) -> None:
        """Renew the lease and keep the log tail so far: a restarting head forgets the job and its logs."""
        tail = None
        if with_logs:
            try:
                tail = jobs.logs_tail(submission_id, self._secrets())
            except Exception:
                tail = None
        self._renew(run_id, ray_job_status=state.value, **({"log_tail": tail} if tail else {}))

    # --- runs whose worker is gone -------------------------------------------------------------------------------
    def reconcile(self, stale_seconds: float | None = None, slugs: list[str] | None = None
                  ) -> list[tuple[int, str]]:
        """Settle active runs whose supervision lease is older than ``stale_seconds``: end those whose job ended
        or is gone, hand the others back to a worker (the task is sent again; a worker takes the run over and
        submits its job if it never was, or re-attaches to it). Each stale run is handled by exactly one caller:
        safe to run from every worker at once.

        ``slugs``: only runs of these queues. A worker reconciles the queues it consumes, whose runs go to the Ray
        cluster it knows (another queue's runs may belong to another cluster, where their jobs are)."""
        stale = self.stale_seconds if stale_seconds is None else stale_seconds
        outcomes = []
        for run_id, submission_id, slug in self.repo.stale_active_runs(stale, slugs):
            if self.repo.mark_for_reconcile(run_id, stale_seconds=stale):
                outcomes.append((run_id, self._reconcile_one(run_id, submission_id, slug)))
        return outcomes

    def _reconcile_one(self, run_id: int, submission_id: str | None, slug: str) -> str:
        record = self.repo.get_record(run_id)
        stop_requested = self.repo.get_status(run_id) == Status.SEND_STOP_SIGNAL
        if submission_id is None or not was_submitted(record):
            if stop_requested:
                self._finish(run_id, Verdict.stopped("stopped before its Ray job was submitted"), "-")
                return Status.STOPPED.value
            return self.hand_back(run_id, slug)
        try:
            jobs = RayJobs(self.settings.ray.address)
            snapshot = jobs.snapshot(submission_id)
        except Exception as exc:
            log.warning("Run %s: Ray did not answer (%s); left for the next pass", run_id, type(exc).__name__)
            return "unreachable"
        if not snapshot.state.is_terminal():
            return self.hand_back(run_id, slug)
        tail = None
        if snapshot.state is not JobState.MISSING:
            tail = self._persist_logs(jobs, run_id, submission_id, snapshot)
        verdict = self._judge(run_id, snapshot, stop_requested, log_tail=tail)
        # Read again (a job that ended since the read above had recorded whether its write is repeatable); a
        # worker taking the run over starts the next attempt.
        if self._retryable(self.repo.get_record(run_id), submission_id, verdict):
            return self.hand_back(run_id, slug)
        self._finish(run_id, self._with_earlier_attempts(run_id, verdict), submission_id)
        return verdict.status.value

    def hand_back(self, run_id: int, slug: str) -> str:
        """Send the run's task again: a worker of its queue takes it over (its lease must be free)."""
        from syncmaster_ray.worker.app import app  # noqa: PLC0415 (builds the Celery app from settings)

        app.send_task("run_transfer_task", kwargs={"run_id": run_id}, queue=slug)
        return "handed back to a worker"

    def _judge(self, run_id: int, snapshot: JobSnapshot, stop_requested: bool, *, timed_out: bool = False,
               log_tail: str | None = None) -> Verdict:
        """The one mapping from a Ray job's end to a SyncMaster status and reason. A stop request counts whoever
        made the job stop: a worker taking a run over after its first supervisor stopped the job finds the run
        still SEND_STOP_SIGNAL."""
        if snapshot.state is JobState.SUCCEEDED:
            return Verdict(Status.FINISHED)
        if timed_out and snapshot.state is not JobState.MISSING:
            timeout = self.settings.worker.run_timeout_seconds
            return Verdict.failed(ErrorCode.TIMED_OUT, f"the run was still going after {timeout:g} s and was stopped "
                                  "(SYNCMASTER__WORKER__RUN_TIMEOUT_SECONDS)")
        if snapshot.state is JobState.MISSING:
            error = JobLostError("the Ray job is gone (was the Ray head restarted?)")
            return Verdict.failed(error.code, error.reason)
        if snapshot.state is JobState.STOPPED:
            if stop_requested or self.repo.get_status(run_id) == Status.SEND_STOP_SIGNAL:
                return Verdict.stopped("stopped on request")
            return Verdict.failed(ErrorCode.STOPPED_EXTERNALLY, "the Ray job was stopped outside SyncMaster")
        record = self.repo.get_record(run_id)
        if record is not None and record.reason:
            return Verdict.failed(record.error_code, record.reason)
        missing = _MISSING_MODULE.search(log_tail or "")
        if missing:  # the job's interpreter lacks our package: it died before it could record anything
            return Verdict.failed(ErrorCode.CONFIG, "the Ray job's interpreter cannot import syncmaster-ray "
                                  f"(No module named {missing['module']!r}): install the package in the Python the "
                                  f"Ray nodes run jobs with ({self.settings.ray.job_python!r}), or point "
                                  "SYNCMASTER__RAY__JOB_PYTHON at one that has it")
        message = redact(" ".join(snapshot.message.split()), self._secrets())[:1000]
        return Verdict.failed(ErrorCode.JOB_FAILED, f"the Ray job failed: {message or 'no message'}")

    def _persist_logs(self, jobs: RayJobs, run_id: int, submission_id: str, snapshot: JobSnapshot) -> str | None:
        """Keep the job's message and log tail in our table: the Ray head forgets jobs when it restarts. A tail
        saved by an earlier heartbeat is kept when the job's logs are gone. Returns the tail fetched now."""
        try:
            tail = jobs.logs_tail(submission_id, self._secrets())
        except Exception as exc:  # logs are a convenience; never fail a run because of them
            log.warning("Run %s: could not fetch the Ray job's logs: %s", run_id, redact(str(exc), self._secrets()))
            tail = None
        self.repo.record(run_id, job_message=redact(snapshot.message, self._secrets())[:4000],
                         **({"log_tail": tail} if tail else {}))
        return tail

    def _prune_old_jobs(self, own_submission_id: str) -> threading.Thread | None:
        """Retention of the head's job records: ours only, and only of settled runs (their supervisor has saved the
        logs and written the status; a job deleted earlier would look lost to it). With retention 0 the run's own
        job is forgotten by a background thread, returned so a test can join it."""
        namespace = self.settings.job_namespace

        def is_ours_and_settled(submission_id: str) -> bool:
            run_id = run_id_of(submission_id)
            return (run_id is not None and is_submission_of(submission_id, run_id, namespace)
                    and self.repo.is_settled(run_id))

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

    def _finish(self, run_id: int, verdict: Verdict, submission_id: str) -> bool:
        """Write the verdict: status, ``ended_at`` and the reason together, and only if the run is still active
        (a supervisor that lost a race writes nothing at all)."""
        if not self.repo.finish_run(run_id, verdict.status, error_code=verdict.code, reason=verdict.reason):
            log.warning("Run %s was no longer active: %s not written", run_id, verdict.status)
            return False
        log.info("Run %s (Ray job %s): %s%s", run_id, submission_id, verdict.status,
                 f" [{verdict.code}] {verdict.reason}" if verdict.reason else "")
        return True

    def _secrets(self) -> tuple[str, ...]:
        return self.settings.secret_values()
