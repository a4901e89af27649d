"""Prometheus metrics of our runs, through Ray's metrics export (each node's ``--metrics-export-port``).

One detached actor per SyncMaster database, ``syncmaster-ray-metrics`` in our Ray namespace, reads the runs from
the database every ``POLL_SECONDS`` and records them with ``ray.util.metrics``. Ray prefixes every name with
``ray_``: ``ray_syncmaster_ray_runs_total`` and so on (docs/operator-guide.md lists them).

Why one recorder reading the database rather than each job recording its own run:
- a run's end is written by the Celery worker (or a reconcile), which is not a Ray process, and runs that end
  without a job of theirs (stopped before pickup, lost) must count as well;
- Ray labels each series with the process that recorded it and keeps a finished process's counters: a job per run
  would add a series per run, without bound. One recorder keeps one series per label set.

A run counts when the recorder sees it ended; one started after runs ended counts from its start on (counters start
at zero, which Prometheus' ``rate`` and ``increase`` handle as a restart). Any job starts the recorder when it is
missing (``ensure_started``); it holds no CPU or memory reservation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from syncmaster_ray.ids import ray_namespace_for

if TYPE_CHECKING:
    from syncmaster_ray.db.repository import EndedRun
    from syncmaster_ray.settings import AppSettings

log = logging.getLogger(__name__)

ACTOR_NAME = "syncmaster-ray-metrics"
POLL_SECONDS = 5.0
# Runs are looked for from a little before the last poll: a transaction that wrote ``ended_at`` before that poll
# may commit after it.
OVERLAP = timedelta(minutes=2)
DURATION_BUCKETS = [5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600]
WAIT_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600]


class CountedRuns:
    """Which ended runs are new since the last poll: each run is counted once, whatever the overlap."""

    def __init__(self, since: datetime) -> None:
        self.since = since
        self._counted: dict[int, datetime] = {}

    def new(self, ended: Iterable[EndedRun]) -> list[EndedRun]:
        fresh = [run for run in ended if run.run_id not in self._counted]
        for run in fresh:
            self._counted[run.run_id] = run.ended_at
        if fresh:
            self.since = max(self.since, max(run.ended_at for run in fresh) - OVERLAP)
        # Forget what the next query can no longer return.
        self._counted = {run_id: at for run_id, at in self._counted.items() if at >= self.since}
        return fresh


def active_counts(phases: Iterable[tuple[str, str | None]], queues: Iterable[str]) -> dict[str, tuple[int, int]]:
    """queue -> (runs waiting for capacity, runs transferring or about to), zero for ``queues`` with none now."""
    counts = {queue: [0, 0] for queue in queues}
    for queue, phase in phases:
        counts.setdefault(queue, [0, 0])[0 if phase == "waiting_for_capacity" else 1] += 1
    return {queue: (waiting, running) for queue, (waiting, running) in counts.items()}


class RunMetricsRecorder:
    """The detached actor: polls the database and records the metrics (see the module's docstring)."""

    def __init__(self) -> None:
        from ray.util.metrics import Counter, Gauge, Histogram
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        from syncmaster_ray.db.repository import RunRepository
        from syncmaster_ray.settings import get_settings

        # No pool: the recorder lives as long as the cluster and holds no database session between its polls.
        self.repo = RunRepository(create_engine(get_settings().database.sync_url, poolclass=NullPool))
        self.counted = CountedRuns(since=datetime.now(tz=UTC))
        self.queues: set[str] = set()
        self.runs = Counter("syncmaster_ray_runs_total", description="Runs ended, by final status and queue slug.",
                            tag_keys=("status", "queue"))
        self.rows = Counter("syncmaster_ray_rows_written_total", description="Rows written by runs that ended.",
                            tag_keys=("queue",))
        self.duration = Histogram("syncmaster_ray_run_duration_seconds", description="From start to end of a run.",
                                  boundaries=DURATION_BUCKETS, tag_keys=("status", "queue"))
        self.wait = Histogram("syncmaster_ray_capacity_wait_seconds",
                              description="How long a run waited for cluster capacity.", boundaries=WAIT_BUCKETS,
                              tag_keys=("queue",))
        self.waiting = Gauge("syncmaster_ray_runs_waiting", description="Runs waiting for cluster capacity now.",
                             tag_keys=("queue",))
        self.running = Gauge("syncmaster_ray_runs_running", description="Runs transferring (or starting) now.",
                             tag_keys=("queue",))
        threading.Thread(target=self._loop, name="metrics-poll", daemon=True).start()

    def ping(self) -> bool:
        return True

    def _loop(self) -> None:
        while True:
            try:
                self.poll()
            except Exception as exc:  # the database is away for now: the next poll catches up
                log.warning("Could not read runs for the metrics (%s)", type(exc).__name__)
            time.sleep(POLL_SECONDS)

    def poll(self) -> int:
        """Record the runs ended since the last poll and the active runs now; returns how many runs ended."""
        fresh = self.counted.new(self.repo.runs_ended_since(self.counted.since))
        for run in fresh:
            self._record_end(run)
        counts = active_counts(self.repo.active_run_phases(), self.queues)
        for queue, (waiting, running) in counts.items():
            self.queues.add(queue)
            self.waiting.set(waiting, tags={"queue": queue})
            self.running.set(running, tags={"queue": queue})
        return len(fresh)

    def _record_end(self, run: EndedRun) -> None:
        self.queues.add(run.queue)
        self.runs.inc(1, tags={"status": run.status, "queue": run.queue})
        if run.started_at is not None:
            seconds = max((run.ended_at - run.started_at).total_seconds(), 0.0)
            self.duration.observe(seconds, tags={"status": run.status, "queue": run.queue})
        wait = (run.metrics or {}).get("capacity_wait_seconds")
        if isinstance(wait, int | float):
            self.wait.observe(float(wait), tags={"queue": run.queue})
        if run.rows_written:
            self.rows.inc(run.rows_written, tags={"queue": run.queue})


def ensure_started(settings: AppSettings) -> Any:
    """The recorder of this SyncMaster database, started if missing (one call, whoever asks first)."""
    import ray

    return ray.remote(RunMetricsRecorder).options(
        name=ACTOR_NAME, namespace=ray_namespace_for(settings.job_namespace), lifetime="detached",
        get_if_exists=True, num_cpus=0, max_restarts=-1, max_concurrency=2,
    ).remote()
