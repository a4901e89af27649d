"""The single vocabulary of syncmaster-ray's outcomes: error codes, run phases and the exception hierarchy.

Every error carries ``reason`` (one line, safe to store and show: no secrets, no traceback) and a stable ``code``
(an ``ErrorCode``; its value is the text stored in ``syncmaster_ray_run.error_code``)::

    SyncmasterRayError                  internal
    ├── ConfigError                     config: settings missing or invalid
    ├── RunStateError                   run_state: run absent or not in a state we can act on
    ├── TransferSpecError               transfer_spec: the transfer row cannot be turned into a runnable spec
    │   ├── CredentialsError            credentials: auth_data missing or not decryptable with our key
    │   ├── UnsupportedConnectionTypeError   unsupported_connection_type
    │   └── InvalidParamsError          invalid_params: malformed source/target/strategy params or resources
    │       └── ForbiddenSqlError       forbidden_sql: user-written SQL reaching beyond the run's data
    ├── SourceError                     source: reading failed (no data was written)
    ├── TargetError                     target: writing failed
    ├── ClusterError                    cluster
    │   ├── SubmitError                 submit: the Ray Jobs API refused or could not be reached
    │   │   └── SubmitUnavailableError  ... for now (head starting or restarting): retried within the grace
    │   ├── JobLostError                job_lost: the Ray job vanished (head restarted, job deleted)
    │   ├── TransferActorDiedError      actor_died: the actor running Spark's driver died mid-run
    │   └── ResourcesUnavailableError   resources_unavailable: the cluster cannot fit the transfer
    └── RunStopped                      stopped: a stop was requested (a flow signal, not a failure)

    LeaseLost (an Exception, no code)   another worker took the run over: a flow signal of the Celery side
    UndoFailed (an Exception, no code)  a file target's move failed and so did its undo (the handler turns it
                                        into a TargetError naming what is left where)

Codes no exception carries, written by the worker when it judges how a Ray job ended: ``timed_out``,
``stopped_externally``, ``job_failed`` (see ``ErrorCode``).
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Every ``error_code`` the worker writes; the values are the stored texts and never change."""

    INTERNAL = "internal"
    CONFIG = "config"
    RUN_STATE = "run_state"
    TRANSFER_SPEC = "transfer_spec"
    CREDENTIALS = "credentials"
    UNSUPPORTED_CONNECTION_TYPE = "unsupported_connection_type"
    INVALID_PARAMS = "invalid_params"
    FORBIDDEN_SQL = "forbidden_sql"
    SOURCE = "source"
    TARGET = "target"
    CLUSTER = "cluster"
    SUBMIT = "submit"
    JOB_LOST = "job_lost"
    ACTOR_DIED = "actor_died"
    RESOURCES_UNAVAILABLE = "resources_unavailable"
    STOPPED = "stopped"
    # Judged by the worker from the Ray job's end, not raised.
    TIMED_OUT = "timed_out"
    STOPPED_EXTERNALLY = "stopped_externally"
    JOB_FAILED = "job_failed"


class Phase(enum.StrEnum):
    """``syncmaster_ray_run.phase``: where an active run is; the values are the stored texts."""

    WAITING_FOR_WORKER = "waiting_for_worker"  # claimed, waiting for a free slot of its worker
    WAITING_FOR_CAPACITY = "waiting_for_capacity"  # its job waits for the cluster to place its resources
    TRANSFERRING = "transferring"
    ENDED = "ended"


class SyncmasterRayError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigError(SyncmasterRayError):
    code = ErrorCode.CONFIG


class RunStateError(SyncmasterRayError):
    code = ErrorCode.RUN_STATE


class TransferSpecError(SyncmasterRayError):
    code = ErrorCode.TRANSFER_SPEC


class CredentialsError(TransferSpecError):
    code = ErrorCode.CREDENTIALS


class UnsupportedConnectionTypeError(TransferSpecError):
    code = ErrorCode.UNSUPPORTED_CONNECTION_TYPE


class InvalidParamsError(TransferSpecError):
    code = ErrorCode.INVALID_PARAMS


class ForbiddenSqlError(InvalidParamsError):
    code = ErrorCode.FORBIDDEN_SQL


class SourceError(SyncmasterRayError):
    code = ErrorCode.SOURCE


class TargetError(SyncmasterRayError):
    code = ErrorCode.TARGET


class ClusterError(SyncmasterRayError):
    code = ErrorCode.CLUSTER


class SubmitError(ClusterError):
    code = ErrorCode.SUBMIT


class SubmitUnavailableError(SubmitError):
    """The Jobs API cannot take the job yet (unreachable, or "No available agent" right after a head starts)."""


class JobLostError(ClusterError):
    code = ErrorCode.JOB_LOST


class TransferActorDiedError(ClusterError):
    code = ErrorCode.ACTOR_DIED


class ResourcesUnavailableError(ClusterError):
    code = ErrorCode.RESOURCES_UNAVAILABLE


class LeaseLost(Exception):
    """Another worker took the run over (this one looked dead to it): stop watching, write nothing."""


class UndoFailed(Exception):
    """A move into a file target failed, and undoing it failed too; ``problems`` says what is left where (the
    message names the first few)."""

    SHOWN = 3

    def __init__(self, problems: list[str]) -> None:
        shown = "; ".join(problems[: self.SHOWN])
        more = len(problems) - self.SHOWN
        super().__init__(shown + (f"; and {more} more" if more > 0 else ""))
        self.problems = problems


class RunStopped(SyncmasterRayError):
    code = ErrorCode.STOPPED
