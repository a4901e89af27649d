"""The capacity queue's order and turn rule, pure: shared by the Ray job that waits in it
(``job/capacity_queue.py``) and ``syncmaster-ray status``, which shows it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

RESOURCE_KEYS = ("CPU", "memory")
STALE_SECONDS = 30.0  # an entry not renewed this long is a job that died without leaving the queue
EPSILON = 1e-6


@dataclass(frozen=True)
class QueuedRun:
    """A run in the capacity queue; ``priority`` is its slug's, from the settings (``with_priorities``)."""

    run_id: int
    slug: str
    claimed_at: datetime
    asked: dict[str, float]
    cluster: str = ""  # the Ray cluster's GCS address: each cluster has a queue of its own
    priority: int = 0


def ordered(entries: list[QueuedRun]) -> list[QueuedRun]:
    return sorted(entries, key=lambda entry: (-entry.priority, entry.claimed_at, entry.run_id))


def with_priorities(entries: list[QueuedRun], priorities: Mapping[str, int]) -> list[QueuedRun]:
    """The entries with their slug's priority (0 for slugs not listed), in queue order."""
    return ordered([replace(entry, priority=priorities.get(entry.slug, 0)) for entry in entries])


def turn_of(run_id: int, queue: list[QueuedRun], free: Mapping[str, float]) -> str | None:
    """``first``, ``backfill`` or None (not yet) for ``run_id`` in ``queue`` (in order), given the free capacity."""
    position = next((i for i, entry in enumerate(queue) if entry.run_id == run_id), None)
    if position is None:  # its entry went stale: it must renew it and look again
        return None
    if position == 0:
        return "first"
    needed = {key: sum(entry.asked.get(key, 0) for entry in queue[: position + 1]) for key in RESOURCE_KEYS}
    if all(needed[key] <= free.get(key, 0) + EPSILON for key in RESOURCE_KEYS):
        return "backfill"
    return None


def positions(entries: list[QueuedRun], priorities: Mapping[str, int]) -> dict[int, tuple[int, int]]:
    """run id -> (its place in its cluster's queue, from 1; its priority)."""
    places: dict[int, tuple[int, int]] = {}
    for cluster in {entry.cluster for entry in entries}:
        queue = with_priorities([entry for entry in entries if entry.cluster == cluster], priorities)
        places.update({entry.run_id: (place, entry.priority) for place, entry in enumerate(queue, start=1)})
    return places
