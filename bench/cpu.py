"""Busy CPU seconds of the whole machine (psutil), the measure of what a run costs on a busy cluster.

Every process of a run counts (the Ray job, the transfer actor, RayDP's actors, every JVM, a standby started in the
background, the databases' server processes): the machine's busy time covers them all, including processes that
exit before anyone could sample them. Nothing else runs during a bench, and the idle background (the Ray head, the
services) is measured once and taken out, alike for every way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil


def busy_cpu_seconds() -> float:
    """CPU seconds the machine has spent busy since boot, summed over its CPUs (idle and iowait left out)."""
    times = psutil.cpu_times()
    return sum(value for name, value in times._asdict().items() if name not in {"idle", "iowait", "guest",
                                                                               "guest_nice"})


def background_rate(seconds: float = 10) -> float:
    """Busy CPU seconds per second while nothing is run (the idle head, the services, this process)."""
    started, busy = time.monotonic(), busy_cpu_seconds()
    time.sleep(seconds)
    return (busy_cpu_seconds() - busy) / (time.monotonic() - started)


@dataclass
class Span:
    """Wall and busy CPU seconds between ``start()`` and ``stop()``, less the background's share."""

    background: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0

    def start(self) -> Span:
        self._wall, self._cpu = time.monotonic(), busy_cpu_seconds()
        return self

    def stop(self) -> Span:
        self.wall = time.monotonic() - self._wall
        self.cpu = max(busy_cpu_seconds() - self._cpu - self.background * self.wall, 0.0)
        return self
