"""Where a run's Spark executors actually run, read from Ray's state API.

The placement group decides where bundles are; RayDP's app master then creates executor actors in them. Checking
the actors themselves (not only the bundles) makes the driver-local-files guarantee verifiable, and the node ids
end up in the run's metrics so an operator can see where each executor ran.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

log = logging.getLogger(__name__)

EXECUTOR_CLASS_SUFFIX = "RayDPExecutor"


@dataclass(frozen=True)
class ExecutorPlacement:
    driver_node: str
    executor_nodes: tuple[str, ...]

    @property
    def all_on_driver_node(self) -> bool:
        return all(node == self.driver_node for node in self.executor_nodes)

    def as_metrics(self) -> dict[str, Any]:
        return {"driver_node": self.driver_node, "executor_nodes": list(self.executor_nodes)}


def alive_executor_nodes(actors: list[dict[str, Any]]) -> tuple[str, ...]:
    """Node ids of the live RayDP executor actors among ``actors`` (state API records), sorted."""
    return tuple(sorted(
        actor["node_id"] for actor in actors
        if str(actor.get("class_name", "")).endswith(EXECUTOR_CLASS_SUFFIX)
        and actor.get("state") == "ALIVE" and actor.get("node_id")
    ))


def wait_for_executor_placement(placement_group: Any, executors: int, *, timeout: float = 60,
                                poll_seconds: float = 0.5) -> ExecutorPlacement | None:
    """Wait until ``executors`` executor actors of the group are alive; None if Ray cannot tell in time.

    Spark requests executors asynchronously after the session starts, so they may not exist yet.
    """
    import ray
    from ray.util.state import list_actors

    context = ray.get_runtime_context()
    driver_node = context.get_node_id()
    # This cluster's GCS, explicitly: without an address the state API picks "the latest cluster on this machine",
    # another one when several run side by side (tests; a developer's second cluster).
    address = context.gcs_address
    deadline = time.monotonic() + timeout
    seen: tuple[str, ...] = ()

    def alive_nodes() -> tuple[str, ...]:
        nonlocal seen
        actors = list_actors(address=address, filters=[("placement_group_id", "=", placement_group.id.hex())],
                             detail=True, raise_on_missing_output=False,
                             timeout=max(1, int(deadline - time.monotonic())))
        seen = alive_executor_nodes([_as_dict(actor) for actor in actors])
        return seen

    def warn_if_unanswered(state: RetryCallState) -> None:
        if state.outcome is not None and state.outcome.failed:  # a busy head may time out: asked again
            log.warning("Ray's state API did not answer (%s); asking again", type(state.outcome.exception()).__name__)

    retrying = Retrying(
        retry=retry_if_exception_type(Exception) | retry_if_result(lambda nodes: len(nodes) < executors),
        stop=stop_after_delay(timeout), wait=wait_fixed(poll_seconds), before_sleep=warn_if_unanswered,
        retry_error_callback=lambda state: None,
    )
    nodes = retrying(alive_nodes)
    if nodes is None:
        log.warning("Only %d of %d executors were alive after %.0f s", len(seen), executors, timeout)
        return None
    return ExecutorPlacement(driver_node=driver_node, executor_nodes=nodes)


class ExecutorPlacementProbe:
    """Looks the placement up once, when first asked (by a handler before it reads staged files, or for the
    metrics after the transfer), so that executors start while the driver connects to the storages."""

    def __init__(self, placement_group: Any, executors: int) -> None:
        self.placement_group = placement_group
        self.executors = executors
        self._placement: ExecutorPlacement | None = None
        self._looked = False

    def placement(self) -> ExecutorPlacement | None:
        if not self._looked:
            self._placement = wait_for_executor_placement(self.placement_group, self.executors)
            self._looked = True
        return self._placement

    def all_on_driver_node(self) -> bool | None:
        placement = self.placement()
        return None if placement is None else placement.all_on_driver_node


def _as_dict(actor: Any) -> dict[str, Any]:
    return actor if isinstance(actor, dict) else {
        key: getattr(actor, key, None) for key in ("class_name", "state", "node_id")
    }
