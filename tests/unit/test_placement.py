"""``syncmaster_ray.job.placement``: one placement group, executors first, driver last."""

from __future__ import annotations

import pytest

from syncmaster_ray.job.placement import (
    PlacementPlan,
    fits_on_one_node,
    fits_somewhere,
    placement_strategy,
    plan_placement,
)
from syncmaster_ray.spec import GiB, MiB, Resources


def test_executor_bundles_first_then_driver():
    resources = Resources(max_parallel_tasks=3, cpu_cores_per_task=2, ram_bytes_per_task=4 * GiB)
    plan = plan_placement(resources, driver_cpus=1, driver_memory_bytes=GiB)
    executor = {"CPU": 2.0, "memory": float(4 * GiB)}
    driver = {"CPU": 1.0, "memory": float(GiB)}
    assert plan.bundles == [executor, executor, executor, driver]
    assert plan.executor_bundle_indexes == [0, 1, 2]
    assert plan.driver_bundle_index == 3
    assert plan.bundles[plan.driver_bundle_index] == driver
    assert all(plan.bundles[i] == executor for i in plan.executor_bundle_indexes)


def test_single_executor():
    plan = plan_placement(Resources(), driver_cpus=0.5, driver_memory_bytes=512 * MiB)
    assert plan.bundles == [{"CPU": 1.0, "memory": float(GiB)}, {"CPU": 0.5, "memory": float(512 * MiB)}]
    assert plan.executor_bundle_indexes == [0]
    assert plan.driver_bundle_index == 1


def test_bundles_are_independent_dicts():
    plan = plan_placement(Resources(max_parallel_tasks=2), driver_cpus=1, driver_memory_bytes=GiB)
    plan.bundles[0]["CPU"] = 99.0
    assert plan.bundles[1]["CPU"] == 1.0


def test_values_are_floats():
    plan = plan_placement(Resources(max_parallel_tasks=2), driver_cpus=1, driver_memory_bytes=GiB)
    for bundle in plan.bundles:
        assert all(type(v) is float for v in bundle.values())


@pytest.mark.parametrize(("tasks", "cores", "ram"), [(1, 1, 512 * MiB), (4, 2, 2 * GiB), (100, 32, 64 * GiB)])
def test_total(tasks, cores, ram):
    plan = plan_placement(
        Resources(max_parallel_tasks=tasks, cpu_cores_per_task=cores, ram_bytes_per_task=ram),
        driver_cpus=1.5,
        driver_memory_bytes=3 * GiB,
    )
    assert len(plan.bundles) == tasks + 1
    assert plan.total == {"CPU": tasks * cores + 1.5, "memory": float(tasks * ram + 3 * GiB)}


def test_total_of_hand_made_plan_sums_every_key():
    plan = PlacementPlan(bundles=[{"CPU": 1, "GPU": 1}, {"CPU": 2}], executor_bundle_indexes=[0], driver_bundle_index=1)
    assert plan.total == {"CPU": 3, "GPU": 1}


@pytest.fixture
def plan() -> PlacementPlan:
    # 2 executors x (2 CPU, 2 GiB) + driver (1 CPU, 1 GiB) = 5 CPU, 5 GiB
    return plan_placement(
        Resources(max_parallel_tasks=2, cpu_cores_per_task=2, ram_bytes_per_task=2 * GiB),
        driver_cpus=1,
        driver_memory_bytes=GiB,
    )


def test_fits_exactly(plan):
    assert fits_somewhere(plan, {"CPU": 5.0, "memory": float(5 * GiB)})


def test_fits_with_room_and_extra_resources(plan):
    assert fits_somewhere(plan, {"CPU": 64.0, "memory": float(256 * GiB), "GPU": 2.0, "object_store_memory": 1.0})


@pytest.mark.parametrize(
    "cluster",
    [
        {"CPU": 4.0, "memory": float(5 * GiB)},
        {"CPU": 5.0, "memory": float(5 * GiB - 1)},
        {"CPU": 100.0},
        {"memory": float(100 * GiB)},
        {},
    ],
)
def test_does_not_fit(plan, cluster):
    assert not fits_somewhere(plan, cluster)


# --- STRICT_PACK when a side keeps files on the driver's disk ---------------------------------------------------------


class Side:
    """A handler as the placement sees it."""

    def __init__(self, driver_local_files: bool) -> None:
        self.driver_local_files = driver_local_files


@pytest.mark.parametrize(("sides", "strategy"), [
    ((False, False), "PACK"), ((True, False), "STRICT_PACK"), ((False, True), "STRICT_PACK"),
    ((True, True), "STRICT_PACK"),
])
def test_placement_strategy(sides, strategy):
    assert placement_strategy([Side(flag) for flag in sides]) == strategy


def test_strict_pack_needs_one_node_big_enough():
    plan = plan_placement(Resources(max_parallel_tasks=2), driver_cpus=1, driver_memory_bytes=GiB)  # 3 CPU, 3 GiB
    small = {"CPU": 2.0, "memory": float(8 * GiB)}
    assert not fits_on_one_node(plan, [small, small])  # 4 CPUs in all, but on two nodes
    assert fits_on_one_node(plan, [small, {"CPU": 3.0, "memory": float(3 * GiB)}])
    assert not fits_on_one_node(plan, [])
