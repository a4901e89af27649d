"""The Ray job entrypoint: ``python -m syncmaster_ray.job --run-id N``.

It gets only the run id. Settings (database, Fernet key) come from the node's environment or the file named by
``SYNCMASTER_RAY_ENV_FILE``, so no secret appears in the entrypoint, runtime_env or metadata on the dashboard.

Lifecycle: load and validate the spec -> reserve every executor and the driver with one placement group and wait
for it -> start the transfer actor in the driver bundle -> kill the actor and remove the group (``finally``) ->
record the outcome -> exit at once (``exit_now``). Exit code 0 on success, 1 on failure (the reason is in our
table). With standbys on
(``SYNCMASTER__RAY__STANDBY_DRIVERS``), a run of their shape claims one (its actor and group) instead of reserving
and starting its own and starts its replacement right after the claim; a job that did not start one starts the
missing standby at its end.

``python -m syncmaster_ray.job --standbys start|stop`` starts the missing standbys, or stops the idle ones.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
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
    what.add_argument("--standbys", choices=("start", "stop"),
                      help="start the missing standby transfer actors, or stop the idle ones")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.standbys:
        return manage_standbys(args.standbys)
    # Ray's stop_job sends SIGTERM first: turn it into an exception so every ``finally`` below runs.
    signal.signal(signal.SIGTERM, _raise_stopped)
    return run_job(args.run_id)


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


def run_job(run_id: int) -> int:
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
        result = _execute(run_id, settings, repo)
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


def _execute(run_id: int, settings: Any, repo: Any) -> RunOutcome:
    import ray

    from syncmaster_ray.job import standby
    from syncmaster_ray.job.placement import placement_strategy, plan_placement
    from syncmaster_ray.job.session import can_use_standby, run_shape
    from syncmaster_ray.job.transfer import build_handlers

    spec = repo.load_run_spec(run_id, settings.secret_key)
    handlers = build_handlers(spec, settings.spark)  # fail on bad params before reserving anything
    plan = plan_placement(
        spec.resources, driver_cpus=settings.ray.driver_cpus, driver_memory_bytes=settings.ray.driver_memory_bytes
    )
    ray.init(logging_level=logging.WARNING)  # a namespace of the job's own: RayDP's actor names are fixed
    _ensure_metrics_recorder(settings)
    use_standby = settings.ray.standbys_on
    group = actor = result = None
    replaced = False
    try:  # from the claim on: whatever happens, the actor and group taken are torn down
        if use_standby and can_use_standby(run_shape(settings, spec.resources, handlers),
                                           standby.standby_shape(settings)):
            claimed = standby.claim(run_id, standby.ray_namespace(settings))
            if claimed is not None:
                group, actor = claimed.group, claimed.actor
                # Its replacement starts now, at background priority beside this run, where there is room: the
                # next run, sent right after this one, finds it started. (This job's namespace has no RayDP of
                # its own: the claimed standby's was started by an earlier job.)
                replaced = _replenish_standbys(settings, only_if_room=True, claimed=claimed.name)
        repo.record(run_id, phase=Phase.WAITING_FOR_CAPACITY)
        waiting = time.monotonic()
        if group is None:
            group = _reserve(run_id, plan, placement_strategy(handlers), settings)
        capacity_wait = round(time.monotonic() - waiting, 3)
        granted_at = time.time()
        repo.record(run_id, phase=Phase.TRANSFERRING)
        if actor is None:
            actor = _start_actor(run_id, plan, group, settings)
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
                              **result.metrics}
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
            _replenish_standbys(settings)


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


def _replenish_standbys(settings: Any, *, only_if_room: bool = False, claimed: str | None = None) -> bool:
    """Start a missing standby (see ``standby.replenish``); True if one was started."""
    from syncmaster_ray.job import standby

    try:
        return standby.replenish(settings, only_if_room=only_if_room, claimed=claimed) > 0
    except Exception:  # the run's own outcome stands; the next job tries again
        log.warning("Could not start standby transfer actors", exc_info=True)
        return False


def _reserve(run_id: int, plan: Any, strategy: str, settings: Any) -> Any:
    """The run's placement group, once it is placed: fails fast if the cluster can never hold it."""
    import ray
    from ray.util.placement_group import placement_group

    from syncmaster_ray.ids import placement_group_name_for, submission_id_for
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
    log.info("Placement group strategy %s for bundles %s", strategy, plan.bundles)
    submission_id = submission_id_for(run_id, settings.job_namespace)
    group = placement_group(plan.bundles, strategy=strategy, name=placement_group_name_for(submission_id))
    try:
        _wait_for_capacity(group, plan.total, settings)
    except BaseException:
        _tear_down(None, group)
        raise
    return group


def _start_actor(run_id: int, plan: Any, group: Any, settings: Any) -> Any:
    from syncmaster_ray.ids import actor_name_for, submission_id_for
    from syncmaster_ray.job.actor import TransferActor, spawn

    return spawn(
        TransferActor,
        run_id,
        group=group,
        plan=plan,
        name=actor_name_for(submission_id_for(run_id, settings.job_namespace)),
    )


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


def _wait_for_capacity(group: Any, asked: dict[str, float], settings: Any) -> None:
    """Wait for the group to be placed; idle standbys make way when it is not placed at once."""
    import ray

    from syncmaster_ray.job import standby

    timeout = settings.ray.placement_timeout_seconds
    log.info("Waiting for cluster capacity: %s", _describe(asked))
    started = time.monotonic()
    ready, _ = ray.wait([group.ready()], timeout=min(timeout, STANDBY_EVICTION_AFTER_SECONDS))
    if not ready and settings.ray.standbys_on and standby.evict_idle(standby.ray_namespace(settings)):
        log.info("Idle standbys evicted to make room for this run")
    if not ready:
        ready, _ = ray.wait([group.ready()], timeout=max(timeout - (time.monotonic() - started), 0))
    if not ready:
        raise ResourcesUnavailableError(
            f"no capacity for {_describe(asked)} within {timeout:.0f} s (SYNCMASTER__RAY__PLACEMENT_TIMEOUT_SECONDS)"
        )


def _describe(resources: dict[str, float]) -> str:
    parts = []
    for key in ("CPU", "memory"):
        if key in resources:
            value = resources[key]
            parts.append(f"{value / 1024**3:.1f} GiB memory" if key == "memory" else f"{value:g} CPU")
    return ", ".join(parts) or "nothing"


if __name__ == "__main__":
    sys.exit(main())
