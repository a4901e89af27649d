"""Bundle maths: one placement group reserves the whole transfer (every executor, then the driver)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from syncmaster_ray.spec import Resources

# RayDP's app-master actor is tiny and asks for no CPU; it runs outside the group.
EXECUTOR_MEMORY_OVERHEAD = 0.0


@dataclass(frozen=True)
class PlacementPlan:
    bundles: list[dict[str, float]]
    executor_bundle_indexes: list[int]
    driver_bundle_index: int

    @property
    def total(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for bundle in self.bundles:
            for key, value in bundle.items():
                total[key] = total.get(key, 0) + value
        return total


def plan_placement(resources: Resources, *, driver_cpus: float, driver_memory_bytes: int) -> PlacementPlan:
    """Executor bundles first, driver bundle last.

    RayDP 1.6.5 ignores the values of ``placement_group_bundle_indexes`` and cycles 0..n-1, so the executors must
    own bundles 0..n-1.
    """
    executors = resources.max_parallel_tasks
    executor_bundle = {"CPU": float(resources.cpu_cores_per_task), "memory": float(resources.ram_bytes_per_task)}
    driver_bundle = {"CPU": float(driver_cpus), "memory": float(driver_memory_bytes)}
    return PlacementPlan(
        bundles=[dict(executor_bundle) for _ in range(executors)] + [driver_bundle],
        executor_bundle_indexes=list(range(executors)),
        driver_bundle_index=executors,
    )


def fits_somewhere(plan: PlacementPlan, cluster_total: dict[str, float]) -> bool:
    """Could the cluster ever hold this plan (ignoring what is busy now)? A PACK group may span nodes."""
    return all(cluster_total.get(key, 0) >= value for key, value in plan.total.items())


def placement_strategy(handlers: Iterable[Any]) -> str:
    """``STRICT_PACK`` (driver and executors on one node) when a side stages files on the driver's local disk,
    which executors on another node would not see; else ``PACK`` (one node preferred, several allowed)."""
    return "STRICT_PACK" if any(getattr(h, "driver_local_files", False) for h in handlers) else "PACK"


def fits_on_one_node(plan: PlacementPlan, node_totals: Iterable[dict[str, float]]) -> bool:
    """Could a single node ever hold the whole plan (a ``STRICT_PACK`` group)?"""
    return any(fits_somewhere(plan, node) for node in node_totals)
