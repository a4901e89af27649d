"""``TransferActor``: the Spark driver of one run, living in the driver bundle of the run's placement group.

A plain class that the entrypoint turns into an actor, one per run, killed by the entrypoint afterwards (so the
driver JVM, whose parent it is, dies with it). It starts Spark on RayDP and stops it in ``finally``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from syncmaster_ray.ids import submission_id_for
from syncmaster_ray.job.transfer import build_handlers, perform_transfer
from syncmaster_ray.outcome import classify

log = logging.getLogger(__name__)


class TransferActor:
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        # Actor processes log at WARNING by default; onETL's INFO lines (options, metrics) belong in the job log.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("py4j").setLevel(logging.WARNING)

    def ping(self) -> bool:
        return True

    def run(self, placement_group: Any, executor_bundle_indexes: list[int]) -> dict[str, Any]:
        """Run the transfer; returns ``{"ok": True, "metrics": ...}`` or ``{"ok": False, "code", "reason"}``.

        Errors are classified here, where the original exception (and its secrets to redact) is at hand.
        """
        from syncmaster_ray.db.engine import get_engine
        from syncmaster_ray.db.repository import RunRepository
        from syncmaster_ray.settings import get_settings

        secrets: tuple[str, ...] = ()
        try:
            settings = get_settings()
            secrets = settings.secret_values()
            spec = RunRepository(get_engine(settings.database.sync_url)).load_run_spec(
                self.run_id, settings.secret_key
            )
            secrets += _connection_secrets(spec)
            source, target = build_handlers(spec)
            maven = sorted({*source.maven_packages, *target.maven_packages})
            # Named after the submission id: run ids repeat across SyncMaster databases sharing a node.
            prefix = f"{submission_id_for(self.run_id, settings.job_namespace)}_"
            with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
                os.chdir(workdir)
                for handler in (source, target):
                    # File handlers stage files here (removed with the directory).
                    handler.work_dir = Path(workdir)
                metrics = self._run_spark(spec, settings, placement_group, executor_bundle_indexes, maven, source,
                                          target)
            return {"ok": True, "metrics": metrics}
        except BaseException as exc:
            log.exception("Run %s failed", self.run_id)
            code, reason = classify(exc, secrets)
            return {"ok": False, "code": code, "reason": reason}

    def _run_spark(self, spec, settings, placement_group, bundle_indexes, maven, source, target) -> dict[str, Any]:
        import raydp

        from syncmaster_ray.job.class_data_sharing import DriverArchive, archive_key, stop_driver_jvm
        from syncmaster_ray.job.executor_nodes import ExecutorPlacementProbe
        from syncmaster_ray.job.spark import existing_jars, spark_configs
        from syncmaster_ray.job.strategy import hwm_store_for

        resources = spec.resources
        archive = DriverArchive.plan(settings.spark.class_data_sharing_dir,
                                     archive_key(existing_jars(settings.spark.jars), maven))
        driver_exited = False
        # Python workers of the executors (the Postgres COPY path) run this interpreter, which has our deps.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        started, started_at = time.monotonic(), time.time()
        try:
            spark = raydp.init_spark(
                app_name=f"{spec.app_name}__run{spec.run_id}",
                num_executors=resources.max_parallel_tasks,
                executor_cores=resources.cpu_cores_per_task,
                executor_memory=f"{resources.executor_memory_mb}M",
                fault_tolerant_mode=False,  # it would add a Ray driver per transfer (stack-notes pitfall 12)
                enable_hive="hive" in (source.connection_type, target.connection_type),
                placement_group=placement_group,
                placement_group_bundle_indexes=bundle_indexes,
                configs=spark_configs(
                    settings.spark,
                    maven_packages=maven,
                    maven_excludes=sorted({*source.maven_exclusions(), *target.maven_exclusions()}),
                    driver_memory_mb=settings.ray.driver_memory_bytes // (1024 * 1024),
                    parallelism=resources.max_parallel_tasks * resources.cpu_cores_per_task,
                    driver_java_options=archive.java_options,
                ),
            )
            spark_start = round(time.monotonic() - started, 3)
            probe = ExecutorPlacementProbe(placement_group, resources.max_parallel_tasks)
            for handler in (source, target):
                # Staging handlers need the executors beside the driver's disk: they ask before reading.
                handler.executors_on_driver_node = probe.all_on_driver_node
            try:
                metrics = perform_transfer(spark, source, target, hwm_store_for(settings))
                placement = probe.placement()
                if placement is not None:
                    metrics.update(placement.as_metrics())
            finally:
                stopping = time.monotonic()
                raydp.stop_spark()
                driver_exited = stop_driver_jvm()
                metrics_teardown = round(time.monotonic() - stopping, 3)
        finally:
            archive.finish(driver_exited=driver_exited)
        metrics["driver_class_archive"] = archive.mode
        # Wall-clock bounds (epoch seconds) of this run's Spark session, to see which runs overlapped.
        return {"spark_start_seconds": spark_start, **metrics, "spark_stop_seconds": metrics_teardown,
                "spark_started_at": round(started_at, 3), "spark_stopped_at": round(time.time(), 3)}



def _connection_secrets(spec: Any) -> tuple[str, ...]:
    values: list[str] = []
    for connection in (spec.source, spec.target):
        for key, value in connection.auth.get_secret_value().items():
            if key != "user" and key != "type" and isinstance(value, str):
                values.append(value)
    return tuple(values)
