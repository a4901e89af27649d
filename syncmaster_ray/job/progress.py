"""Live progress of a run's copy: rows so far, rows per second and, where the source's size is known cheaply,
percent and ETA.

While the copy runs, the transfer actor samples a row counter every ``INTERVAL_SECONDS``, writes the figures to the
run's record (``syncmaster_ray_run.progress``, which ``run show``, ``run watch`` and ``status`` read) and logs a
line in the job's log. The counters:
- Spark's: the rows the run's stages have read so far (``inputRecords`` in Spark's status store). Executors report
  a running task's figures with their heartbeats (every 10 s by default), so this count moves in steps.
- The Postgres target's, for what does not pass through Spark (the ``COPY`` pipe): rows of its ``COPY`` commands in
  flight (``pg_stat_progress_copy``) plus the rows of committed partitions (``handlers/pg_copy_pipe.py``).

The size is the source's estimate (Postgres' ``reltuples``) and only for a whole-table read; percent stays below
100 until the run ends, and nothing is claimed where no estimate exists.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from syncmaster_ray.status import progress_text

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3.0
Counter = Callable[[], int | None]


@dataclass(frozen=True)
class Progress:
    rows: int
    seconds: float
    total: int | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def percent(self) -> float | None:
        if not self.total:
            return None
        return min(round(100 * self.rows / self.total, 1), 99.0)  # an estimate; the end says 100

    @property
    def eta_seconds(self) -> float | None:
        if not self.total or self.rows_per_second <= 0:
            return None
        return round(max(self.total - self.rows, 0) / self.rows_per_second, 1)

    def as_record(self) -> dict[str, Any]:
        return {"rows": self.rows, "rows_per_second": round(self.rows_per_second), "seconds": round(self.seconds, 1),
                "total_estimate": self.total, "percent": self.percent, "eta_seconds": self.eta_seconds,
                "updated_at": round(time.time(), 3)}

    def line(self) -> str:
        return f"progress: {progress_text(self.as_record())}"


@contextmanager
def reporting(count: Counter, total: int | None, publish: Callable[[Progress], None],
              interval: float = INTERVAL_SECONDS) -> Iterator[None]:
    """Publish ``count()`` every ``interval`` seconds while the block runs (from a thread of its own)."""
    stop = threading.Event()
    started = time.monotonic()

    def loop() -> None:
        last = None
        while not stop.wait(interval):
            try:
                rows = count()
                if rows is None or rows == last:
                    continue
                last = rows
                publish(Progress(rows, time.monotonic() - started, total))
            except Exception as exc:  # progress is a view: the copy goes on without it
                log.debug("progress sample failed: %s", type(exc).__name__)

    thread = threading.Thread(target=loop, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)


def spark_rows_read(spark: Any) -> Counter:
    """Rows read by the stages of ``spark`` from now on, as Spark's status store has them."""
    store = spark.sparkContext._jsc.sc().statusStore()
    baseline = _input_records(store)
    return lambda: _input_records(store) - baseline


def _input_records(store: Any) -> int:
    stages = store.stageList(None, False, False, getattr(store, "stageList$default$4")(),
                             getattr(store, "stageList$default$5")())
    return sum(stages.apply(index).inputRecords() for index in range(stages.size()))
