"""Which failed attempts of a run are tried again, when, and how the run's reason lists them (pure).

A failure is worth another attempt when it is transient: the transfer actor or its node was lost
(``actor_died``), the Ray job vanished with a restarting head (``job_lost``), the Jobs API could not take the job
(``submit``), or a source or target dropped or refused the connection. A permanent one (a missing table, bad
credentials, bad params, forbidden SQL, a timeout, a stop) never is. Another attempt is also only safe when the
failed one cannot have left a partial write nor rows a repeat would duplicate: the run replaces its target
atomically (a staging table swapped in, an Iceberg commit; not an incremental run, which appends), or it failed
before writing (a source error, or a job that never got as far as its handlers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from syncmaster_ray.errors import ErrorCode

TRANSIENT_CODES = frozenset({ErrorCode.ACTOR_DIED, ErrorCode.JOB_LOST, ErrorCode.SUBMIT})
# Codes whose reason is read for a dropped or refused connection.
CONNECTION_CODES = frozenset({ErrorCode.SOURCE, ErrorCode.TARGET, ErrorCode.JOB_FAILED})
_CONNECTION_LOST = re.compile(
    r"connection refused|connection to \S+ refused|connection reset|could not connect|communications link failure|"
    r"server closed the connection unexpectedly|terminating connection due to administrator command|"
    r"broken pipe|no route to host|connection timed out|connection attempt failed|"
    r"connection to server at .* failed: (?:connection refused|could not receive|server closed)|"
    r"the database system is (?:starting up|shutting down|in recovery mode)|too many connections",
    re.IGNORECASE,
)
# Always permanent, whatever else the reason says (a refused login mentions its connection too).
_PERMANENT = re.compile(
    r"authentication failed|access denied|password|permission denied|does not exist|not found|unknown database|"
    r"forbidden|invalid",
    re.IGNORECASE,
)
ATTEMPT_REASON_MAX_CHARS = 300


@dataclass(frozen=True)
class FailedAttempt:
    attempt: int
    submission_id: str
    code: str | None
    reason: str | None


def is_transient(code: str | None, reason: str | None) -> bool:
    """Whether a failure with this code and reason may pass on its own (a node lost, a connection dropped)."""
    if code in TRANSIENT_CODES:
        return True
    text = reason or ""
    return code in CONNECTION_CODES and bool(_CONNECTION_LOST.search(text)) and not _PERMANENT.search(text)


def is_safe_to_repeat(code: str | None, repeatable: bool | None) -> bool:
    """Whether repeating the failed attempt can neither half-write nor duplicate: the run replaces its target
    atomically (``repeatable``), the attempt failed reading (``source``: nothing written), or it never told (None:
    its job stopped before it had its handlers, or never ran)."""
    return repeatable is None or repeatable or code == ErrorCode.SOURCE


def delay_before(attempt: int, delays: Sequence[float]) -> float:
    """Seconds to wait before ``attempt`` (2, 3, ...): ``delays[attempt - 2]``, the last one beyond the list."""
    if not delays:
        return 0.0
    return float(delays[min(attempt - 2, len(delays) - 1)])


def listed(attempts: Sequence[FailedAttempt], last: FailedAttempt | None = None) -> str:
    """``attempt 1: [actor_died] ...; attempt 2: [source] ...``, each reason cut to a few hundred characters."""
    parts = []
    for failed in [*attempts, *([last] if last else [])]:
        reason = (failed.reason or "no reason").replace("\n", " ")
        if len(reason) > ATTEMPT_REASON_MAX_CHARS:
            reason = reason[: ATTEMPT_REASON_MAX_CHARS - 3] + "..."
        parts.append(f"attempt {failed.attempt}: [{failed.code}] {reason}")
    return "; ".join(parts)
