"""Standby transfer actors: Spark on RayDP already started for the next runs of the default shape.

RayDP's start-up (its master, the driver and the executor: three or four JVMs) is most of a short run's fixed cost.
With ``SYNCMASTER__RAY__STANDBY_DRIVERS=N`` each job leaves up to N transfer actors behind: detached, each in a
placement group of its own, with its Spark session started, its executor and Python worker warmed, and no run's
data or credentials. A run of the default shape (SyncMaster's default resources, no Hive) claims one under the
actor's own lock, uses it as its transfer actor and tears it down like any other; its job then starts a
replacement. Each run still gets a dedicated actor, Spark and JVMs, all gone after it.

Trade-offs: an idle standby holds its resources (a run of another shape that finds no capacity evicts idle
standbys first) and about 2.5 GB of memory. A claimed standby was started by an earlier job, so Ray files its
output under that job: the run's Python log lines are captured and printed by the run's own job instead.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syncmaster_ray.ids import normalize_namespace
from syncmaster_ray.job.placement import PlacementPlan, plan_placement
from syncmaster_ray.spec import Resources

if TYPE_CHECKING:
    from syncmaster_ray.handlers.base import Handler
    from syncmaster_ray.settings import AppSettings

log = logging.getLogger(__name__)

PREFIX = "standby-"
CLAIM_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class SessionShape:
    """What a Spark session on RayDP is started with; a run can use a standby whose shape equals its own."""

    resources: Resources
    maven_packages: tuple[str, ...] = ()
    maven_excludes: tuple[str, ...] = ()
    hive: bool = False


def ray_namespace(settings: AppSettings) -> str:
    """The Ray namespace standbys are named in: one per SyncMaster database, as submission ids are.

    Only their names live there. Jobs keep Ray's own namespace per job: RayDP names its app master
    ``RAY_APP_MASTER`` and its executors ``raydp-executor-<n>``, so two Spark sessions sharing a namespace collide.
    For the same reason a job starts at most one standby (each standby's RayDP runs in its creator's namespace).
    """
    return f"syncmaster-{normalize_namespace(settings.job_namespace)}"


def run_shape(settings: AppSettings, resources: Resources, handlers: tuple[Handler, Handler]) -> SessionShape:
    """The session a run needs: Maven packages count only where the settings resolve them."""
    use_maven = settings.spark.use_maven_packages
    return SessionShape(
        resources=resources,
        maven_packages=tuple(sorted({p for h in handlers for p in h.maven_packages})) if use_maven else (),
        maven_excludes=tuple(sorted({e for h in handlers for e in h.maven_exclusions()})) if use_maven else (),
        hive=any(h.connection_type == "hive" for h in handlers),
    )


def standby_shape(settings: AppSettings) -> SessionShape:
    """SyncMaster's default resources, and the Maven packages of every JDBC database when Maven is used."""
    if not settings.spark.use_maven_packages:
        return SessionShape(resources=Resources())
    from syncmaster_ray.handlers.registry import handler_class_for, jdbc_types

    jdbc = [handler_class_for(kind) for kind in jdbc_types()]  # the databases whose drivers a standby carries
    packages = tuple(sorted({package for cls in jdbc for package in cls.maven_packages}))
    return SessionShape(resources=Resources(), maven_packages=packages)


def can_use_standby(run: SessionShape, standby: SessionShape) -> bool:
    """A standby serves a run whose session it already is: same resources, no Hive, packages a subset of its own."""
    return (run.resources == standby.resources and not run.hive and run.maven_excludes == standby.maven_excludes
            and set(run.maven_packages) <= set(standby.maven_packages))


def standby_plan(settings: AppSettings) -> PlacementPlan:
    return plan_placement(Resources(), driver_cpus=settings.ray.driver_cpus,
                          driver_memory_bytes=settings.ray.driver_memory_bytes)


@dataclass
class Claimed:
    actor: Any
    group: Any


def _standby_actors(namespace: str) -> list[tuple[str, Any]]:
    import ray

    actors = []
    for entry in sorted(ray.util.list_named_actors(all_namespaces=True), key=lambda e: e["name"]):
        if entry["namespace"] == namespace and entry["name"].startswith(PREFIX):
            try:
                actors.append((entry["name"], ray.get_actor(entry["name"], namespace=namespace)))
            except ValueError:
                continue  # gone since it was listed
    return actors


def claim(run_id: int, namespace: str) -> Claimed | None:
    """Take an idle standby for ``run_id`` (or None): the actor and its placement group, now the run's."""
    import ray

    for name, actor in _standby_actors(namespace):
        try:
            # The standby refuses the claim past half our wait: one it accepts reaches us before we give up (with
            # node clocks less than CLAIM_TIMEOUT_SECONDS / 2 apart).
            deadline = time.time() + CLAIM_TIMEOUT_SECONDS / 2
            group = ray.get(actor.claim.remote(run_id, deadline), timeout=CLAIM_TIMEOUT_SECONDS)
        except (ray.exceptions.RayError, TimeoutError):
            log.info("Standby %s did not answer: skipped", name)
            continue
        except BaseException:  # stopped mid-claim: it may be ours now, so it goes (its group is an orphan now)
            ray.kill(actor, no_restart=True)
            raise
        if group is not None:
            log.info("Run %s uses standby %s (Spark already started)", run_id, name)
            return Claimed(actor=actor, group=group)
    return None


def evict_idle(namespace: str) -> int:
    """Kill every idle standby and free its placement group; returns how many."""
    import ray
    from ray.util.placement_group import remove_placement_group

    evicted = 0
    for name, actor in _standby_actors(namespace):
        try:
            group = ray.get(actor.evict.remote(), timeout=CLAIM_TIMEOUT_SECONDS)
        except (ray.exceptions.RayError, TimeoutError):
            group = None  # dead or stuck: kill it anyway, its group is found below
        if group is None:
            continue
        ray.kill(actor, no_restart=True)
        remove_placement_group(group)
        evicted += 1
        log.info("Evicted standby %s", name)
    remove_orphan_groups(namespace)
    return evicted


def remove_orphan_groups(namespace: str) -> int:
    """Remove standby placement groups that no live standby holds (left by a job stopped mid-claim or mid-start,
    or by a standby that died); returns how many."""
    import ray
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group

    held = set()
    for _, actor in _standby_actors(namespace):
        try:
            held.add(ray.get(actor.group_id.remote(), timeout=CLAIM_TIMEOUT_SECONDS))
        except (ray.exceptions.RayError, TimeoutError):
            continue
    removed = 0
    for group_id, info in placement_group_table().items():
        name = info.get("name") or ""
        if name.startswith(_group_prefix(namespace)) and info.get("state") != "REMOVED" and group_id not in held:
            remove_placement_group(PlacementGroup(PlacementGroupID(bytes.fromhex(group_id))))
            removed += 1
            log.info("Removed orphan standby placement group %s", name)
    return removed


def _group_prefix(namespace: str) -> str:
    """Standby group names carry the standbys' namespace: another installation's are never ours to remove."""
    return f"{namespace}/{PREFIX}"


def replenish(settings: AppSettings) -> int:
    """Start one standby if fewer than N exist (N = ``SYNCMASTER__RAY__STANDBY_DRIVERS``); returns 1 or 0.

    One per job (see ``ray_namespace``); nothing is waited for: it starts once its placement group fits, after this
    job has ended.
    """
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from syncmaster_ray.job.actor import TransferActor

    namespace = ray_namespace(settings)
    remove_orphan_groups(namespace)
    existing = {name for name, _ in _standby_actors(namespace)}
    plan, shape = standby_plan(settings), standby_shape(settings)
    driver = plan.bundles[plan.driver_bundle_index]
    for name in (f"{PREFIX}{i}" for i in range(settings.ray.standby_drivers)):
        if name in existing:
            continue
        # STRICT_PACK: the driver beside its executor, which is what every run's placement accepts.
        group_name = f"{_group_prefix(namespace)}{name.removeprefix(PREFIX)}-{uuid.uuid4().hex[:8]}"
        group = placement_group(plan.bundles, strategy="STRICT_PACK", name=group_name, lifetime="detached")
        try:
            ray.remote(TransferActor).options(
                name=name, namespace=namespace, lifetime="detached", num_cpus=driver["CPU"], memory=driver["memory"],
                max_restarts=0,
                max_concurrency=4,  # claim/evict answer while the warm-up or a run is under way
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=group, placement_group_bundle_index=plan.driver_bundle_index),
            ).remote(None, standby=shape, group=group, executor_bundle_indexes=plan.executor_bundle_indexes)
        except ValueError:  # another job started this one just now
            remove_placement_group(group)
            continue
        log.info("Started standby %s", name)
        return 1
    return 0
