"""The Celery side's only door to Ray: submit, look up, stop and read logs of transfer jobs.

Owns the mapping from Ray's ``JobStatus`` to ours and turns Ray's bare ``RuntimeError``s into typed errors.
Imports ``ray.job_submission`` only (an HTTP client); never Spark, RayDP or onETL.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from syncmaster_ray.errors import JobLostError, SubmitError, SubmitUnavailableError
from syncmaster_ray.redact import redact
from syncmaster_ray.settings import ray_auth_secrets, ray_auth_token

log = logging.getLogger(__name__)
LOG_TAIL_CHARS = 20_000


# --- Ray's token authentication (RAY_AUTH_MODE=token) -----------------------------------------------------------
# The token itself is read by syncmaster_ray.settings (ray_auth_token, ray_auth_secrets: the settings refuse the
# example token and redact it); everything of ours that calls the dashboard over HTTP (the Jobs API client, `status`,
# the local head's readiness check, the tests) uses dashboard_auth_headers. tests/unit/test_ray_auth.py checks that
# they agree with Ray's private helper.


def ray_auth_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Ray clients authenticate only when ``RAY_AUTH_MODE=token`` (Ray's rule for a client given an address)."""
    environ = os.environ if environ is None else environ
    return environ.get("RAY_AUTH_MODE", "").strip().lower() == "token"


def dashboard_auth_headers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{"authorization": "Bearer <token>"}`` for requests to the Ray dashboard (Jobs API, state API) when token
    authentication is on, else ``{}``."""
    if not ray_auth_enabled(environ):
        return {}
    token = ray_auth_token(environ)
    if token is None:
        log.warning("RAY_AUTH_MODE=token but no Ray token was found (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                    "~/.ray/auth_token): the Ray dashboard will refuse our requests")
        return {}
    return {"authorization": f"Bearer {token}"}


def accepts_anonymous_jobs(address: str, timeout: float = 5) -> bool:
    """Whether the Jobs API at ``address`` lists jobs for a request without any token: then anyone who reaches it
    can run code on the cluster. False when it refuses, or cannot be reached. A bare request on purpose: Ray's
    clients add the token whenever one is configured."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{address.rstrip('/')}/api/jobs/", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class JobState(enum.StrEnum):
    """Ray job states as seen by us; ``MISSING`` when the head does not know the job (e.g. it restarted)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    MISSING = "MISSING"

    def is_terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.STOPPED, JobState.MISSING)


@dataclass(frozen=True)
class JobSnapshot:
    state: JobState
    message: str = ""
    start_time_ms: int | None = None
    end_time_ms: int | None = None


# What Ray's Jobs API answers while it cannot take jobs yet: right after `ray start --head`, its job agent is not
# registered ("No available agent to submit job, please try again later"), or the head is overloaded.
_UNAVAILABLE_FOR_NOW = ("no available agent", "try again later", "status code 503", "status code 502",
                        "failed to connect")


def _is_unavailable_for_now(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _UNAVAILABLE_FOR_NOW)


def _is_not_found(exc: Exception) -> bool:
    text = str(exc)
    return "404" in text or "does not exist" in text or "not found" in text.lower()


class RayJobs:
    """A thin, typed wrapper around ``JobSubmissionClient`` for one Ray cluster."""

    def __init__(self, address: str) -> None:
        from ray.job_submission import JobSubmissionClient

        self.address = address
        try:
            # Ray's client would add the same header itself under RAY_AUTH_MODE=token; ours says so explicitly.
            self._client = JobSubmissionClient(address, headers=dashboard_auth_headers())
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError, ray.exceptions.AuthenticationError
            if type(exc).__name__ == "AuthenticationError":  # HTTP 401/403: Ray's text is long and names no variable
                raise SubmitError(
                    f"the Ray Jobs API at {redact(address)} refused our requests (token authentication): give the "
                    "worker RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)"
                ) from None
            reason = f"the Ray Jobs API at {redact(address)} cannot be reached: {redact(str(exc), ray_auth_secrets())}"
            if isinstance(exc, OSError) or _is_unavailable_for_now(exc):  # ConnectionError is an OSError
                raise SubmitUnavailableError(reason) from None
            raise SubmitError(reason) from None

    def snapshot(self, submission_id: str) -> JobSnapshot:
        try:
            info = self._client.get_job_info(submission_id)
        except RuntimeError as exc:
            if _is_not_found(exc):
                return JobSnapshot(JobState.MISSING, f"Ray does not know job {submission_id}")
            raise
        return JobSnapshot(
            state=JobState(str(info.status.value if hasattr(info.status, "value") else info.status)),
            message=info.message or "",
            start_time_ms=info.start_time,
            end_time_ms=info.end_time,
        )

    def submit(self, *, submission_id: str, entrypoint: str, metadata: dict[str, str]) -> bool:
        """Submit unless a job with this id exists already. Returns True when this call submitted it."""
        if self.snapshot(submission_id).state is not JobState.MISSING:
            log.info("Ray job %s exists already: re-attaching", submission_id)
            return False
        try:
            self._client.submit_job(entrypoint=entrypoint, submission_id=submission_id, metadata=metadata)
        except RuntimeError as exc:
            # A concurrent submit of the same id surfaces as an HTTP 500 RuntimeError, not a typed error.
            if self.snapshot(submission_id).state is not JobState.MISSING:
                return False
            reason = f"Ray refused job {submission_id}: {redact(str(exc), ray_auth_secrets())}"
            if _is_unavailable_for_now(exc):
                raise SubmitUnavailableError(reason) from None
            raise SubmitError(reason) from None
        return True

    def stop(self, submission_id: str) -> None:
        try:
            self._client.stop_job(submission_id)
        except RuntimeError as exc:
            if not _is_not_found(exc):
                raise

    def logs_tail(self, submission_id: str, secrets: tuple[str, ...] = ()) -> str:
        try:
            logs = self._client.get_job_logs(submission_id)
        except RuntimeError as exc:
            if _is_not_found(exc):
                raise JobLostError(f"the logs of Ray job {submission_id} are gone") from None
            raise
        return redact(logs[-LOG_TAIL_CHARS:], secrets)

    def prune(self, is_ours: Callable[[str], bool], older_than_seconds: float) -> list[str]:
        """Delete ended jobs whose submission id ``is_ours`` and that ended more than ``older_than_seconds`` ago,
        so the head's job table does not grow without bound. Returns the deleted ids."""
        cutoff_ms = (time.time() - older_than_seconds) * 1000
        pruned = []
        for job in self._client.list_jobs():
            submission_id = job.submission_id or ""
            if job.end_time and job.end_time <= cutoff_ms and is_ours(submission_id) and self.delete(submission_id):
                pruned.append(submission_id)
        return pruned

    def delete(self, submission_id: str) -> bool:
        """Delete an ended job's record; True once it is gone. Another supervisor pruning the same job at the same
        moment makes Ray answer HTTP 500 ("non-terminal state None"), so a refusal is checked against the head."""
        try:
            self._client.delete_job(submission_id)
        except RuntimeError as exc:
            if _is_not_found(exc) or self.snapshot(submission_id).state is JobState.MISSING:
                return True
            log.warning("could not delete Ray job %s: %s", submission_id, redact(str(exc), ray_auth_secrets()))
            return False
        return True
