"""The run's directory on the Spark driver's node, and who removes it.

The transfer actor stages files (and Spark its local files) in ``<tempdir>/<submission id>_<random>``. The actor
removes it when the run ends normally; a stopped, killed or timed-out run's actor dies first, so the job's
teardown removes it with a small task on the driver's node (``remove_on_node``). A job that never got to its
teardown (its head restarted, its node lost) leaves it to the next actor on that node, which sweeps directories of
settled runs (``sweep_settled``).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncmaster_ray.ids import run_id_of

log = logging.getLogger(__name__)
REMOVE_TIMEOUT_SECONDS = 60
_RUN_DIR = re.compile(r"^(?P<submission_id>syncmaster-[a-z0-9-]+-run-\d+)_[A-Za-z0-9_]+$")


def prefix_for(submission_id: str) -> str:
    return f"{submission_id}_"


def remove_run_dirs(submission_id: str, root: str | None = None) -> int:
    """Remove every directory of the run under ``root`` (this node's temp dir); returns how many."""
    removed = 0
    for path in Path(root or tempfile.gettempdir()).glob(f"{prefix_for(submission_id)}*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def sweep_settled(is_settled: Callable[[int], bool], namespace_prefix: str, root: str | None = None) -> int:
    """Remove this node's run directories (of our namespace) whose run is settled: left by jobs that died before
    their teardown. Returns how many."""
    removed = 0
    for path in Path(root or tempfile.gettempdir()).glob(f"{namespace_prefix}*"):
        match = _RUN_DIR.match(path.name)
        run_id = run_id_of(match["submission_id"]) if match else None
        if run_id is not None and path.is_dir() and not path.is_symlink() and is_settled(run_id):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def driver_node_of(group: Any, driver_bundle_index: int) -> str | None:
    """The node id (hex) the group's driver bundle was placed on, or None when unknown."""
    from ray.util.placement_group import placement_group_table

    try:
        return placement_group_table(group)["bundles_to_node_id"][driver_bundle_index]
    except (KeyError, IndexError, TypeError):
        return None


def remove_on_node(node_id: str, submission_id: str) -> None:
    """Remove the run's directories on ``node_id`` with a zero-CPU task pinned there (waits up to a minute)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(remove_run_dirs).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False))
    removed = ray.get(task.remote(submission_id), timeout=REMOVE_TIMEOUT_SECONDS)
    if removed:
        log.info("Removed %d directory(ies) the run left on node %s", removed, node_id[:12])
