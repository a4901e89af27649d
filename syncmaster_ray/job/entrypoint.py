"""The Ray job entrypoint: ``python -m syncmaster_ray.job --run-id N [--attempt K]``.

It gets only the run id (and which attempt of the run it is, ``attempts.py``). Settings (database, Fernet key)
come from the node's environment or the file named by ``SYNCMASTER_RAY_ENV_FILE``, so no secret appears in the
entrypoint, runtime_env or metadata on the dashboard.

Lifecycle: load and validate the spec -> wait for the run's turn in the cluster's capacity queue
(``capacity_queue``) -> reserve every executor and the driver with one placement group and wait for it -> start
the transfer actor in the driver bundle -> kill the actor and remove the group (``finally``) -> record the
outcome -> exit at once (``exit_now``). Exit code 0 on success, 1 on failure (the reason is in our table). With
standbys on (``SYNCMASTER__RAY__STANDBY_DRIVERS``), a run of their shape claims one (its actor and group) instead
of reserving and starting its own, when no run waits for capacity, and starts its replacement right after the
claim; a job that did not start one starts the missing standby at its end.

``python -m syncmaster_ray.job --standbys start|stop`` starts the missing standbys, or stops the idle ones.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from syncmaster_ray import node_env
from syncmaster_ray.errors import ConfigError, Phase, ResourcesUnavailableError, RunStopped, TransferActorDiedError
from syncmaster_ray.job import workdirs
from syncmaster_ray.outcome import RunOutcome

log = logging.getLogger("syncmaster_ray.job")
# A run not placed within this long evicts idle standbys (when there are any) and waits on.
STANDBY_EVICTION_AFTER_SECONDS = 1.0


def _raise_stopped(signum: int, frame: Any) -> None:
    raise RunStopped("the run was stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m syncmaster_ray.job", description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--run-id", type=int, help="SyncMaster run.id to execute")
    parser.add_argument("--attempt", type=int, default=1, help="which attempt of the run this job is (default 1)")
    what.add_argument("--standbys", choices=("start", "stop"),
                      help="start the missing standby transfer actors, or stop the idle ones")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.standbys:
        return manage_standbys(args.standbys)
    # Ray's stop_job sends SIGTERM first: turn it into an exception so every ``finally`` below runs.
    signal.signal(signal.SIGTERM, _raise_stopped)
    return run_job(args.run_id, args.attempt)


def exit_now(code: int) -> None:
    """End the job process with ``code`` once its output is flushed and Ray has sent what it still had to send.

    ``ray.shutdown()`` flushes the actor kills and group removals of the teardown; the interpreter's own
    finalization after it is skipped, which shortens the time from the run's end to its status by about 0.7 s (the
    Ray job is marked ended only once this process is gone).
    """
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def manage_standbys(action: str) -> int:
    import ray

    from syncmaster_ray.job import standby
    from syncmaster_ray.settings import get_settings

    settings = get_settings()
    ray.init(logging_level=logging.WARNING)
    if action == "start":
        print(f"started {standby.replenish(settings)} standby transfer actor(s)")
    else:
        print(f"stopped {standby.evict_idle(standby.ray_namespace(settings))} idle standby transfer actor(s)")
    return 0


def run_job(run_id: int, attempt: int = 1) -> int:
    from syncmaster_ray.db.engine import get_engine
    from syncmaster_ray.db.repository import RunRepository
    from syncmaster_ray.settings import get_settings

    try:
        settings = get_settings()
    except Exception as exc:
        # No database access without settings: the reason goes to the job log, the Celery side records it.
        # Without settings there is no database to record a reason in: the Celery side reports this message.
        print(f"syncmaster-ray: the Ray node has no valid settings ({type(exc).__name__})", file=sys.stderr)
        return 2
    repo = RunRepository(get_engine(settings.database.sync_url))
    secrets = settings.secret_values()
    started, started_at = time.monotonic(), time.time()
    try:
        refused_node = node_env.refusal(os.environ)
        if refused_node:  # the node's secrets would be in every process of it, users' SQL included
            raise ConfigError(refused_node)
        result = _execute(run_id, attempt, settings, repo)
    except BaseException as exc:
        result = RunOutcome.failed(exc, secrets)
    duration = round(time.monotonic() - started, 3)
    if result.ok:
        metrics = {**result.metrics, "job_started_at": round(started_at, 3), "job_seconds": duration}
        repo.record_while_active(run_id, metrics=metrics, duration_seconds=duration, error_code=None, reason=None,
                                 rows_written=metrics.get("rows_written"), phase=Phase.ENDED)
        log.info("Run %s finished in %.1f s: %s", run_id, duration, metrics)
        return 0
    # Only while the run is active: a job outliving its run (its head restarted under it, and it noticed late)
    # must not write its own reason over the one the run ended with.
    repo.record_while_active(run_id, error_code=result.code, reason=result.reason,
                             duration_seconds=duration, phase=Phase.ENDED)
    log.error("Run %s failed [%s]: %s", run_id, result.code, result.reason)
    return 1


def _execute(run_id: int, attempt: int, settings: Any, repo: Any) -> RunOutcome:
    import ray

    from syncmaster_ray.ids import submission_id_for
    from syncmaster_ray.job import standby
    from syncmaster_ray.job.placement import placement_strategy, plan_placement
    from syncmaster_ray.job.session import can_use_standby, run_shape
    from syncmaster_ray.job.transfer import build_handlers

    spec = repo.load_run_spec(run_id, settings.secret_key)
    handlers = build_handlers(spec, settings.spark)  # fail on bad params before reserving anything
    # Whether another attempt may follow this one if it fails mid-write (attempts.py): only when a repeat can
    # neither half-write nor duplicate rows, i.e. an atomic replace (an incremental run appends its increment).
    repo.record(run_id, repeatable=handlers[1].atomic_write and not handlers[1].incremental)
    submission_id = submission_id_for(run_id, settings.job_namespace, attempt)
    plan = plan_placement(
        spec.resources, driver_cpus=settings.ray.driver_cpus, driver_memory_bytes=settings.ray.driver_memory_bytes
    )
    ray.init(logging_level=logging.WARNING)  # a namespace of the job's own: RayDP's actor names are fixed
    _ensure_metrics_recorder(settings)
    use_standby = settings.ray.standbys_on
    group = actor = result = None
    replaced = False
    queue_metrics: dict[str, Any] = {}
    try:  # from the claim on: whatever happens, the actor and group taken are torn down
        # A standby's capacity is held already; it is claimed only when no run waits for capacity (a run
        # claimed earlier and still waiting goes first, and makes idle standbys give their capacity up).
        if use_standby and can_use_standby(run_shape(settings, spec.resources, handlers),
                                           standby.standby_shape(settings)) and not _anyone_waiting(repo):
            claimed = standby.claim(run_id, standby.ray_namespace(settings))
            if claimed is not None:
                group, actor = claimed.group, claimed.actor
                # Its replacement starts now, at background priority beside this run, where there is room: the
                # next run, sent right after this one, finds it started. (This job's namespace has no RayDP of
                # its own: the claimed standby's was started by an earlier job.)
                replaced = _replenish_standbys(settings, repo, only_if_room=True, claimed=claimed.name)
        waiting = time.monotonic()
        if group is None:
            group, queue_metrics = _reserve(run_id, submission_id, plan, placement_strategy(handlers), settings,
                                            repo)
        capacity_wait = round(time.monotonic() - waiting, 3)
        granted_at = time.time()
        repo.record(run_id, phase=Phase.TRANSFERRING)
        if actor is None:
            actor = _start_actor(run_id, submission_id, plan, group)
        try:
            result = ray.get(actor.run.remote(group, plan.executor_bundle_indexes))
        except ray.exceptions.RayActorError:
            raise TransferActorDiedError(
                "the transfer actor (the Spark driver) died mid-run: its process was killed, ran out of memory "
                "or lost its node"
            ) from None
        for line in result.log:
            print(line, flush=True)  # a claimed standby's log lines, into this job's log
        if result.ok:
            result.metrics = {"capacity_wait_seconds": capacity_wait, "capacity_granted_at": round(granted_at, 3),
                              **queue_metrics, **result.metrics}
        return result
    finally:
        # An actor that returned removed its own directory; one that was killed or never returned did not.
        driver_node = workdirs.driver_node_of(group, plan.driver_bundle_index) if (
            group is not None and result is None) else None
        released_at = _tear_down(actor, group)
        if result is not None and result.ok:
            result.metrics["capacity_released_at"] = round(released_at, 3)
        if driver_node is not None:
            _remove_run_dirs(driver_node, run_id, settings)
        if group is not None:
            kept_in = _keep_executor_logs(run_id, group, repo, settings, spec, failed=result is None or not result.ok)
            if kept_in is not None and result is not None and result.ok:
                result.metrics["executor_logs_seconds"] = kept_in
        if use_standby and not replaced:
            _replenish_standbys(settings, repo)


def _remove_run_dirs(node_id: str, run_id: int, settings: Any) -> None:
    from syncmaster_ray.ids import submission_id_for

    try:
        workdirs.remove_on_node(node_id, submission_id_for(run_id, settings.job_namespace))
    except BaseException:  # the run's outcome stands; the next actor on that node sweeps what is left
        log.warning("Could not remove the run's directories on node %s", node_id[:12], exc_info=True)


def _ensure_metrics_recorder(settings: Any) -> None:
    """Start the Prometheus metrics recorder of our runs when it is missing (``job/metrics.py``)."""
    from syncmaster_ray.job import metrics

    try:
        metrics.ensure_started(settings)
    except Exception as exc:  # the run goes on; the next job tries again
        log.warning("Could not start the metrics recorder (%s)", type(exc).__name__)


def _keep_executor_logs(run_id: int, group: Any, repo: Any, settings: Any, spec: Any, *,
                        failed: bool) -> float | None:
    """Save the last lines of each executor's log with the run, as ``SYNCMASTER__RAY__EXECUTOR_LOGS`` says;
    returns the seconds it took, None when it did not."""
    from syncmaster_ray.job import executor_logs

    if not executor_logs.wanted(settings.ray.executor_logs, failed=failed):
        return None
    started = time.monotonic()
    try:
        found = executor_logs.collect(group.id.hex(), settings.secret_values() + spec.secret_values())
        if found:
            repo.record(run_id, executor_log_tail=executor_logs.render(found))
    except Exception as exc:  # the run's outcome stands without them
        log.warning("Could not keep the executors' logs (%s)", type(exc).__name__)
        return None
    return round(time.monotonic() - started, 3)


def _replenish_standbys(settings: Any, repo: Any, *, only_if_room: bool = False, claimed: str | None = None) -> bool:
    """Start a missing standby (see ``standby.replenish``) unless runs wait for capacity (it would take theirs);
    True if one was started."""
    from syncmaster_ray.job import standby

    try:
        if _anyone_waiting(repo):
            return False
        return standby.replenish(settings, only_if_room=only_if_room, claimed=claimed) > 0
    except Exception:  # the run's own outcome stands; the next job tries again
        log.warning("Could not start standby transfer actors", exc_info=True)
        return False


def _anyone_waiting(repo: Any) -> bool:
    """Whether a run waits for this cluster's capacity."""
    from syncmaster_ray.job.capacity_queue import STALE_SECONDS, cluster_id

    return bool(repo.capacity_queue(STALE_SECONDS, cluster_id()))


def _reserve(run_id: int, submission_id: str, plan: Any, strategy: str, settings: Any, repo: Any
             ) -> tuple[Any, dict[str, Any]]:
    """The run's placement group, once it is the run's turn in the capacity queue and the group is placed, with
    the queue's figures for the run's metrics; fails fast if the cluster can never hold it."""
    from ray.util.placement_group import placement_group

    from syncmaster_ray.ids import placement_group_name_for
    from syncmaster_ray.job import capacity_queue

    _check_fits(plan, strategy)
    queue = capacity_queue.CapacityQueue(repo, capacity_queue.cluster_id(), settings.ray.queue_priorities,
                                         capacity_queue.cluster_free)
    queued_at, deadline = time.time(), time.monotonic() + settings.ray.placement_timeout_seconds
    queue.join(run_id, plan.total)
    name, yields = placement_group_name_for(submission_id), 0
    while True:
        turn = queue.wait_for_turn(run_id, deadline)
        log.info("Placement group strategy %s for bundles %s (its turn in the capacity queue: %s, %d run(s) "
                 "ahead, %.1f s in the queue)", strategy, plan.bundles, turn.how, turn.ahead, turn.queued_seconds)
        group = placement_group(plan.bundles, strategy=strategy, name=name)
        try:
            placed = _wait_for_capacity(group, plan.total, settings, lambda: queue.turn(run_id)[0] is not None,
                                        lambda: queue.renew(run_id), deadline=deadline)
        except BaseException:
            _tear_down(None, group)
            raise
        if placed:
            return group, {"capacity_queued_at": round(queued_at, 3), "capacity_turn": turn.how,
                           "capacity_runs_ahead": turn.ahead, "capacity_yields": yields}
        _tear_down(None, group)
        yields += 1
        log.info("A run ahead of it in the capacity queue arrived (higher priority, or claimed earlier): its "
                 "pending placement group is removed and it waits for its turn again")


def _check_fits(plan: Any, strategy: str) -> None:
    """Fail at once when the cluster could never hold the plan, whatever else runs."""
    import ray

    from syncmaster_ray.job.placement import fits_on_one_node, fits_somewhere

    cluster_total = ray.cluster_resources()
    if not fits_somewhere(plan, cluster_total):
        raise ResourcesUnavailableError(
            f"the transfer asks for {_describe(plan.total)} but the whole cluster has {_describe(cluster_total)}"
        )
    if strategy == "STRICT_PACK":
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        if not fits_on_one_node(plan, nodes):
            largest = max(nodes, key=lambda node: (node.get("CPU", 0), node.get("memory", 0)), default={})
            raise ResourcesUnavailableError(
                f"the transfer stages files on the Spark driver's disk, so it needs {_describe(plan.total)} on one "
                f"node, but no node has that much (the largest has {_describe(largest)})"
            )


def _start_actor(run_id: int, submission_id: str, plan: Any, group: Any) -> Any:
    from syncmaster_ray.ids import actor_name_for
    from syncmaster_ray.job.actor import TransferActor, spawn

    return spawn(TransferActor, run_id, group=group, plan=plan, name=actor_name_for(submission_id))


def _tear_down(actor: Any, group: Any) -> float:
    """Kill the actor and remove the group; returns the wall-clock time just before the group's capacity is
    released, so a run placed after it can be shown to have waited for it (its ``capacity_granted_at`` is later)."""
    import ray
    from ray.util.placement_group import remove_placement_group

    if actor is not None:
        ray.kill(actor, no_restart=True)
    released_at = time.time()
    if group is not None:
        remove_placement_group(group)
    return released_at


def _wait_for_capacity(group: Any, asked: dict[str, float], settings: Any, still_its_turn: Callable[[], bool],
                       heartbeat: Callable[[], None], *, deadline: float) -> bool:
    """Wait until ``deadline`` (monotonic) for the group to be placed: True once it is, False as soon as it is no
    longer the run's turn (a run ahead arrived); ``heartbeat`` keeps the run's queue entry alive meanwhile. Idle
    standbys make way when the group is not placed at once."""
    import ray

    from syncmaster_ray.job import standby
    from syncmaster_ray.job.capacity_queue import HEARTBEAT_SECONDS, POLL_SECONDS

    log.info("Waiting for cluster capacity: %s", _describe(asked))
    ready, _ = ray.wait([group.ready()], timeout=min(max(deadline - time.monotonic(), 0),
                                                     STANDBY_EVICTION_AFTER_SECONDS))
    if not ready and settings.ray.standbys_on and standby.evict_idle(standby.ray_namespace(settings)):
        log.info("Idle standbys evicted to make room for this run")
    beat = time.monotonic()
    while not ready and (left := deadline - time.monotonic()) > 0:
        if not still_its_turn():
            return False
        if time.monotonic() - beat >= HEARTBEAT_SECONDS:
            heartbeat()
            beat = time.monotonic()
        ready, _ = ray.wait([group.ready()], timeout=min(left, POLL_SECONDS))
    if not ready:
        raise ResourcesUnavailableError(
            f"no capacity for {_describe(asked)} within {settings.ray.placement_timeout_seconds:.0f} s "
            "(SYNCMASTER__RAY__PLACEMENT_TIMEOUT_SECONDS)"
        )
    return True


def _describe(resources: dict[str, float]) -> str:
    parts = []
    for key in ("CPU", "memory"):
        if key in resources:
            value = resources[key]
            parts.append(f"{value / 1024**3:.1f} GiB memory" if key == "memory" else f"{value:g} CPU")
    return ", ".join(parts) or "nothing"


if __name__ == "__main__":
    sys.exit(main())
