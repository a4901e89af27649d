"""First come, first served admission to the cluster, with priorities per queue slug (docs/architecture.md).

Ray places whichever pending placement group fits, so left alone a run asking for much waits while smaller runs
claimed after it keep taking the capacity it needs (starvation). Each Ray job therefore waits here, before it
creates its placement group, until it is its turn:

- A Ray cluster's queue is every run whose job waits here for it or whose group is created but not placed yet
  (phase ``waiting_for_capacity`` in our table, with a heartbeat younger than ``STALE_SECONDS``), ordered by the
  priority of its queue slug (``SYNCMASTER__RAY__QUEUE_PRIORITIES``, higher first), then by when it was claimed
  (``run.started_at``), then by run id. The order lives in Postgres: every worker, slug and job sees the same one.
- A run goes when nothing is ahead of it, or when the cluster's free CPU and memory cover every run ahead of it
  and its own ask (backfill that cannot delay anyone ahead: they all fit too). Capacity that the head of the
  queue cannot use yet stays free meanwhile; that is the price of no starvation without knowing run lengths.
- A run that went but whose group is not placed yet gives way when a run of higher priority arrives ahead of it
  (it removes its pending group and waits for its turn again): Ray would place either pending group first.

Free capacity is summed over the cluster: on several nodes, a backfilled run may take a node's share that a
``STRICT_PACK`` run ahead needed whole (the bound is one backfilled run's length).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from syncmaster_ray.errors import ResourcesUnavailableError
from syncmaster_ray.queue_order import RESOURCE_KEYS, STALE_SECONDS, QueuedRun, turn_of, with_priorities

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 5.0


@dataclass(frozen=True)
class Turn:
    """How a run got its turn: ``first`` in the queue, or ``backfill`` (everything ahead fitted too)."""

    how: str
    ahead: int  # runs ahead of it at that moment
    queued_seconds: float


class CapacityQueue:
    """One Ray cluster's queue as one run's job sees it."""

    def __init__(self, repo: Any, cluster: str, priorities: Mapping[str, int],
                 free: Callable[[], Mapping[str, float]]) -> None:
        self.repo, self.cluster, self.priorities, self.free = repo, cluster, priorities, free

    def entries(self) -> list[QueuedRun]:
        return with_priorities(self.repo.capacity_queue(STALE_SECONDS, self.cluster), self.priorities)

    def turn(self, run_id: int) -> tuple[str | None, int]:
        """(``first``, ``backfill`` or None, how many runs are ahead of ``run_id``) now."""
        queue = self.entries()
        ahead = next((i for i, entry in enumerate(queue) if entry.run_id == run_id), None)
        if ahead is None:  # the job was too slow to renew its entry (a long pause): renewed, it is back in place
            self.renew(run_id)
            return None, len(queue)
        return turn_of(run_id, queue, self.free()), ahead

    def join(self, run_id: int, asked: Mapping[str, float]) -> None:
        self.repo.join_capacity_queue(run_id, self.cluster, {key: float(asked.get(key, 0)) for key in RESOURCE_KEYS})

    def renew(self, run_id: int) -> None:
        self.repo.renew_capacity_queue(run_id)

    def wait_for_turn(self, run_id: int, deadline: float) -> Turn:
        """Block until it is ``run_id``'s turn (it must have joined), renewing its entry; fails past ``deadline``
        (monotonic). The run stays queued until its group is placed and its phase moves on."""
        started = beat = time.monotonic()
        logged_ahead = -1
        while True:
            how, ahead = self.turn(run_id)
            if how is not None:
                return Turn(how, ahead, round(time.monotonic() - started, 3))
            if ahead != logged_ahead:
                log.info("Waiting for its turn: %d run(s) ahead in the capacity queue", ahead)
                logged_ahead = ahead
            if time.monotonic() > deadline:
                raise ResourcesUnavailableError(
                    f"still {ahead} run(s) ahead in the capacity queue when the placement timeout passed "
                    "(SYNCMASTER__RAY__PLACEMENT_TIMEOUT_SECONDS)")
            time.sleep(POLL_SECONDS)
            if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                self.renew(run_id)
                beat = time.monotonic()


def cluster_id() -> str:
    """The connected Ray cluster's name in the queue: its GCS address (one database may serve several clusters,
    each with a queue of its own)."""
    import ray

    return str(ray.get_runtime_context().gcs_address)


def cluster_free() -> dict[str, float]:
    """Free CPU and memory of the connected Ray cluster (placement groups' reservations excluded)."""
    import ray

    available = ray.available_resources()
    return {key: float(available.get(key, 0)) for key in RESOURCE_KEYS}
