"""What the job gives a handler: settings, the run's work dir, the executors probe and the HWM."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncmaster_ray.settings import SparkSettings


def unknown_placement() -> bool | None:
    return None


@dataclass(frozen=True)
class HandlerContext:
    """Everything a handler learns from the job, as one value replaced (never mutated) as the run goes on.

    ``work_dir`` is the run's own temp dir (removed after the run; the current directory when None).
    ``executors_on_driver_node`` says whether every executor runs on the driver's node (None: unknown); only
    handlers that stage files ask, and only before reading or writing. ``previous_hwm`` is the transfer's HWM
    before this run, known once the strategy scope has started.
    """

    hwm_name: str
    spark: SparkSettings = field(default_factory=SparkSettings)
    work_dir: Path | None = None
    executors_on_driver_node: Callable[[], bool | None] = unknown_placement
    previous_hwm: Any = None
