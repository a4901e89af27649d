"""Peak RSS of process trees, sampled in a background thread (psutil)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable

import psutil

MiB = 1024**2


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss(processes: Iterable[psutil.Process]) -> int:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):  # it may have exited meanwhile
            total += process.memory_info().rss
    return total


class PeakSampler:
    """Samples ``measure()`` (bytes) every ``interval`` seconds until stopped; keeps the peak."""

    def __init__(self, measure: Callable[[], int], interval: float = 0.25) -> None:
        self.measure = measure
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.measure())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
