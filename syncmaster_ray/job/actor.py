"""``TransferActor``: the Spark driver of one run, living in the driver bundle of the run's placement group.

A plain class that the entrypoint turns into an actor (``spawn``), one per run, killed by the entrypoint afterwards
(so the driver JVM, whose parent it is, dies with it). It starts Spark on RayDP and stops it in ``finally``.
A standby (``standby.py``) is a subclass whose session was started before a run claimed it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncmaster_ray import node_env
from syncmaster_ray.errors import ConfigError
from syncmaster_ray.ids import submission_id_for
from syncmaster_ray.job import workdirs
from syncmaster_ray.job.session import SparkOnRay, run_shape, start_spark, stop_spark
from syncmaster_ray.job.transfer import build_handlers, perform_transfer
from syncmaster_ray.outcome import RunOutcome

if TYPE_CHECKING:
    from syncmaster_ray.job.placement import PlacementPlan
    from syncmaster_ray.job.progress import Progress

log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def spawn(actor_class: type, *args: Any, name: str, group: Any, plan: PlacementPlan, **options: Any) -> Any:
    """Start ``actor_class(*args)`` as a named actor in ``group``'s driver bundle, with that bundle's CPUs and
    memory, never restarted (a run's driver shares its run's fate). ``options``: more of Ray's actor options."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    driver = plan.bundles[plan.driver_bundle_index]
    return ray.remote(actor_class).options(
        name=name,
        num_cpus=driver["CPU"],
        memory=driver["memory"],
        max_restarts=0,
        scheduling_strategy=PlacementGroupSchedulingStrategy(
            placement_group=group, placement_group_bundle_index=plan.driver_bundle_index
        ),
        **options,
    ).remote(*args)


class TransferActor:
    def __init__(self, run_id: int | None) -> None:
        self.run_id = run_id
        # Actor processes log at WARNING by default; onETL's INFO lines (options, metrics) belong in the job log.
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        logging.getLogger("py4j").setLevel(logging.WARNING)

    def ping(self) -> bool:
        return True

    def run(self, placement_group: Any, executor_bundle_indexes: list[int]) -> RunOutcome:
        """Run the transfer; returns its metrics, or its error's code and reason.

        Errors are classified here, where the original exception (and its secrets to redact) is at hand.
        """
        from syncmaster_ray.db.engine import get_engine
        from syncmaster_ray.db.repository import RunRepository
        from syncmaster_ray.settings import get_settings

        secrets: tuple[str, ...] = ()
        try:
            refused_node = node_env.refusal(os.environ)
            if refused_node:  # this actor's node: its Spark JVMs would inherit the secrets
                raise ConfigError(refused_node)
            settings = get_settings()
            secrets = settings.secret_values()
            repo = RunRepository(get_engine(settings.database.sync_url))
            spec = repo.load_run_spec(self.run_id, settings.secret_key)
            secrets += spec.secret_values()
            source, target = build_handlers(spec, settings.spark)
            _sweep_settled_run_dirs(repo, settings.job_namespace)
            # Named after the submission id: run ids repeat across SyncMaster databases sharing a node.
            prefix = workdirs.prefix_for(submission_id_for(self.run_id, settings.job_namespace))
            with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
                os.chdir(workdir)
                for handler in (source, target):
                    # File handlers stage files here (removed with the directory).
                    handler.update_context(work_dir=Path(workdir))
                metrics = self._run_spark(spec, settings, placement_group, executor_bundle_indexes, source, target,
                                          _publisher(repo, self.run_id))
            return RunOutcome(metrics=metrics)
        except BaseException as exc:
            log.exception("Run %s failed", self.run_id)
            return RunOutcome.failed(exc, secrets)

    def _run_spark(self, spec, settings, placement_group, bundle_indexes, source, target,
                   publish: Callable[[Progress], None]) -> dict[str, Any]:
        from syncmaster_ray.job.executor_nodes import ExecutorPlacementProbe
        from syncmaster_ray.job.strategy import hwm_store_for

        started_at = time.time()
        session = self._started_session()
        driver = "cold" if session is None else "standby"
        if session is None:
            shape = run_shape(settings, spec.resources, (source, target))
            session = start_spark(shape, settings, f"{spec.app_name}__run{spec.run_id}", placement_group,
                                  bundle_indexes)
        driver_exited = False
        try:
            probe = ExecutorPlacementProbe(placement_group, spec.resources.max_parallel_tasks)
            for handler in (source, target):
                # Staging handlers need the executors beside the driver's disk: they ask before reading.
                handler.update_context(executors_on_driver_node=probe.all_on_driver_node)
            try:
                metrics = perform_transfer(session.spark, source, target, hwm_store_for(settings), publish)
                placement = probe.placement()
                if placement is not None:
                    metrics.update(placement.as_metrics())
            finally:
                stopping = time.monotonic()
                driver_exited = stop_spark()
                metrics_teardown = round(time.monotonic() - stopping, 3)
        finally:
            session.archive.finish(driver_exited=driver_exited)
        metrics["driver_class_archive"] = session.archive.mode
        metrics["driver"] = driver
        # Wall-clock bounds (epoch seconds) of this run's Spark session, to see which runs overlapped.
        return {"spark_start_seconds": session.start_seconds, **metrics, "spark_stop_seconds": metrics_teardown,
                "spark_started_at": round(started_at, 3), "spark_stopped_at": round(time.time(), 3)}

    def _started_session(self) -> SparkOnRay | None:
        """A session started before the run (a standby's), else None: the run starts its own."""
        return None


def _publisher(repo: Any, run_id: int) -> Callable[[Progress], None]:
    """Progress samples into the run's record (``run show``, ``run watch``, ``status``) and the job's log."""
    def publish(sample: Progress) -> None:
        repo.record(run_id, progress=sample.as_record())
        log.info(sample.line())

    return publish


def _sweep_settled_run_dirs(repo: Any, namespace: str) -> None:
    """Remove what runs of our namespace left on this node when their job died before its teardown."""
    try:
        removed = workdirs.sweep_settled(repo.is_settled, submission_id_for(0, namespace).removesuffix("0"))
    except Exception:  # housekeeping never fails a run
        log.warning("Could not sweep directories of settled runs", exc_info=True)
        return
    if removed:
        log.info("Removed %d directory(ies) of settled runs left on this node", removed)

