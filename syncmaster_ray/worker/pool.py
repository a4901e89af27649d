"""The runs one worker process supervises, outside Celery's message lifecycle.

A task only takes its run (one conditional UPDATE) and hands it to ``RunPool``, so its message is acknowledged
within a second: a run may last longer than the broker's ``consumer_timeout`` (RabbitMQ closes a channel whose
delivery stays unacknowledged longer, and Celery then exits). From then on the run is protected by our lease, not
by the message: a worker lost mid-run stops renewing its leases, and the ``Reconciler`` of any worker hands such
runs back (see ``docs/supervision.md``).

Each run gets a thread; at most ``size`` of them have a Ray job at a time (the worker's ``-c``), the others wait in
the order they were taken, renewing their lease, so a burst of runs does not start a burst of Ray jobs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syncmaster_ray.worker.supervisor import RunSupervisor, Taken

log = logging.getLogger(__name__)


class FifoSlots:
    """A counting semaphore that serves waiters in arrival order and lets them give up."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting: deque[object] = deque()
        self._changed = threading.Condition()

    def acquire(self, keep_waiting: Callable[[], bool], check_every: float) -> bool:
        """Block until a slot is free and every earlier waiter served; ``keep_waiting()`` is called every
        ``check_every`` seconds meanwhile (outside the lock), and a False from it gives up (returns False)."""
        ticket = object()
        with self._changed:
            self._waiting.append(ticket)
        next_check = time.monotonic() + check_every
        while True:
            with self._changed:
                if self._waiting[0] is ticket and self._free > 0:
                    self._waiting.popleft()
                    self._free -= 1
                    self._changed.notify_all()  # the next waiter may be served too
                    return True
                self._changed.wait(timeout=max(next_check - time.monotonic(), 0))
            if time.monotonic() < next_check:
                continue  # woken by a change, not yet time to check
            if not keep_waiting():
                with self._changed:
                    self._waiting.remove(ticket)
                    self._changed.notify_all()
                return False
            next_check = time.monotonic() + check_every

    def release(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify_all()

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._waiting)


class RunPool:
    """``start(supervisor, taken)`` supervises a run in a thread of its own; ``hand_back_all()`` gives every run
    up (a worker shutting down): their leases are released and their tasks sent again for another worker."""

    def __init__(self, size: int, check_every: float) -> None:
        self.size = size
        self._slots = FifoSlots(size)
        self._check_every = check_every
        self._runs: dict[int, tuple[RunSupervisor, Taken]] = {}
        self._lock = threading.Lock()

    def start(self, supervisor: RunSupervisor, taken: Taken) -> threading.Thread:
        with self._lock:
            self._runs[taken.run_id] = (supervisor, taken)
        thread = threading.Thread(target=self._supervise, args=(supervisor, taken), daemon=True,
                                  name=f"run-{taken.run_id}")
        thread.start()
        return thread

    def _supervise(self, supervisor: RunSupervisor, taken: Taken) -> None:
        acquired = False

        def slot(keep_waiting: Callable[[], bool]) -> bool:
            nonlocal acquired
            acquired = self._slots.acquire(keep_waiting, self._check_every)
            return acquired

        try:
            supervisor.supervise(taken, slot)
        except Exception:  # the run is not lost: its lease goes stale and a reconciler hands it back
            log.exception("Run %s: supervision ended by an unexpected error; it is left for reconcile",
                          taken.run_id)
        finally:
            if acquired:
                self._slots.release()
            with self._lock:
                self._runs.pop(taken.run_id, None)

    def supervised(self) -> list[int]:
        with self._lock:
            return sorted(self._runs)

    def hand_back_all(self) -> list[int]:
        """Release every run's lease and send its task again (another worker, or this one restarted, takes it
        over at once instead of after the lease goes stale). Returns the run ids handed back."""
        with self._lock:
            runs = list(self._runs.values())
        handed = []
        for supervisor, taken in runs:
            try:
                if supervisor.repo.release_lease(taken.run_id, supervisor=supervisor.worker_id):
                    supervisor.hand_back(taken.run_id, taken.slug)
                    handed.append(taken.run_id)
            except Exception:  # the lease goes stale instead and a reconciler hands the run back later
                log.warning("Run %s could not be handed back", taken.run_id, exc_info=True)
        return handed


class Reconciler:
    """Settles runs of the worker's queues whose supervisor is gone, every ``interval`` seconds, from a thread of
    the worker (every worker runs one; each stale run is settled by exactly one of them)."""

    def __init__(self, make_supervisor: Callable[[], RunSupervisor], interval: float, slugs: list[str]) -> None:
        self._make_supervisor = make_supervisor
        self._interval = interval
        self._slugs = slugs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                for run_id, outcome in self._make_supervisor().reconcile(slugs=self._slugs):
                    log.warning("Reconcile: run %s (its supervisor is gone): %s", run_id, outcome)
            except Exception:
                log.warning("Reconcile pass failed; trying again in %.0f s", self._interval, exc_info=True)
