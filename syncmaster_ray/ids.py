"""Names derived from a run: the Ray submission id, and the actor and placement group named after it.

The submission id is deterministic, so a redelivered task finds the job its predecessor submitted instead of
starting a second one. It carries a namespace (by default the SyncMaster database's name) because run ids are only
unique within one database, and one Ray cluster may serve several SyncMaster installations. A run's second and
later attempts (``attempts.py``) are jobs of their own, ``...-run-<id>-attempt-<K>``.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^a-z0-9]+")
_SUBMISSION_RE = re.compile(r"^syncmaster-(?P<namespace>[a-z0-9-]+)-run-(?P<run_id>\d+)(?:-attempt-(?P<attempt>\d+))?$")


def normalize_namespace(value: str) -> str:
    return _UNSAFE.sub("-", value.lower()).strip("-")[:40] or "default"


def ray_namespace_for(namespace: str) -> str:
    """The Ray namespace our long-lived actors (standbys, the metrics recorder) are named in: one per SyncMaster
    database, as submission ids are."""
    return f"syncmaster-{normalize_namespace(namespace)}"


def submission_id_for(run_id: int, namespace: str, attempt: int = 1) -> str:
    """``syncmaster-<namespace>-run-<id>``, and ``...-attempt-<K>`` for the run's K-th attempt (K >= 2)."""
    base = f"{ray_namespace_for(namespace)}-run-{run_id}"
    return base if attempt <= 1 else f"{base}-attempt-{attempt}"


def run_id_of(submission_id: str) -> int | None:
    match = _SUBMISSION_RE.match(submission_id)
    return int(match["run_id"]) if match else None


def attempt_of(submission_id: str) -> int:
    """The attempt a submission id is of (1 without the suffix)."""
    match = _SUBMISSION_RE.match(submission_id)
    return int(match["attempt"]) if match and match["attempt"] else 1


def is_submission_of(submission_id: str, run_id: int, namespace: str) -> bool:
    """Whether ``submission_id`` is one of ``run_id``'s attempts in ``namespace``."""
    return submission_id == submission_id_for(run_id, namespace, attempt_of(submission_id))


def actor_name_for(submission_id: str) -> str:
    return f"{submission_id}-driver"


def placement_group_name_for(submission_id: str) -> str:
    return f"{submission_id}-pg"
