"""The single exception hierarchy of syncmaster-ray.

Every error carries ``reason`` (one line, safe to store and show: no secrets, no traceback) and a stable ``code``::

    SyncmasterRayError
    ├── ConfigError                     settings missing or invalid
    ├── RunStateError                   run absent or not in a state we can act on
    ├── TransferSpecError               the transfer row cannot be turned into a runnable spec
    │   ├── CredentialsError            auth_data missing or not decryptable with our key
    │   ├── UnsupportedConnectionTypeError
    │   └── InvalidParamsError          malformed source/target/strategy params or resources
    │       └── ForbiddenSqlError       user-written SQL reaching beyond the run's data (reflection, paths, ...)
    ├── SourceError                     reading failed (no data was written)
    ├── TargetError                     writing failed
    ├── ClusterError
    │   ├── SubmitError                 the Ray Jobs API refused or could not be reached
    │   │   └── SubmitUnavailableError  ... for now (head starting or restarting): retried within the grace
    │   ├── JobLostError                the Ray job vanished (head restarted, job deleted)
    │   ├── TransferActorDiedError      the actor running Spark's driver died mid-run
    │   └── ResourcesUnavailableError   the cluster cannot fit the transfer
    └── RunStopped                      a stop was requested (a flow signal, not a failure)
"""

from __future__ import annotations


class SyncmasterRayError(Exception):
    code = "internal"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigError(SyncmasterRayError):
    code = "config"


class RunStateError(SyncmasterRayError):
    code = "run_state"


class TransferSpecError(SyncmasterRayError):
    code = "transfer_spec"


class CredentialsError(TransferSpecError):
    code = "credentials"


class UnsupportedConnectionTypeError(TransferSpecError):
    code = "unsupported_connection_type"


class InvalidParamsError(TransferSpecError):
    code = "invalid_params"


class ForbiddenSqlError(InvalidParamsError):
    code = "forbidden_sql"


class SourceError(SyncmasterRayError):
    code = "source"


class TargetError(SyncmasterRayError):
    code = "target"


class ClusterError(SyncmasterRayError):
    code = "cluster"


class SubmitError(ClusterError):
    code = "submit"


class SubmitUnavailableError(SubmitError):
    """The Jobs API cannot take the job yet (unreachable, or "No available agent" right after a head starts)."""


class JobLostError(ClusterError):
    code = "job_lost"


class TransferActorDiedError(ClusterError):
    code = "actor_died"


class ResourcesUnavailableError(ClusterError):
    code = "resources_unavailable"


class RunStopped(SyncmasterRayError):
    code = "stopped"
