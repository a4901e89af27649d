"""A run's Spark session on RayDP: its shape, starting it and stopping it.

Used by the transfer actor (``actor.py``) and by standbys (``standby.py``); imports neither of them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syncmaster_ray.spec import Resources

if TYPE_CHECKING:
    from syncmaster_ray.handlers.base import Handler
    from syncmaster_ray.job.app_master import DriverHostedSparkCluster
    from syncmaster_ray.job.class_data_sharing import DriverArchive
    from syncmaster_ray.settings import AppSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionShape:
    """What a Spark session on RayDP is started with; a run can use a standby whose shape equals its own."""

    resources: Resources
    maven_packages: tuple[str, ...] = ()
    maven_excludes: tuple[str, ...] = ()
    hive: bool = False


def run_shape(settings: AppSettings, resources: Resources, handlers: tuple[Handler, Handler]) -> SessionShape:
    """The session a run needs: Maven packages count only where the settings resolve them."""
    use_maven = settings.spark.use_maven_packages
    return SessionShape(
        resources=resources,
        maven_packages=tuple(sorted({p for h in handlers for p in h.maven_packages})) if use_maven else (),
        maven_excludes=tuple(sorted({e for h in handlers for e in h.maven_exclusions()})) if use_maven else (),
        hive=any(h.connection_type == "hive" for h in handlers),
    )


def can_use_standby(run: SessionShape, standby: SessionShape) -> bool:
    """A standby serves a run whose session it already is: same resources, no Hive, packages a subset of its own."""
    return (run.resources == standby.resources and not run.hive and run.maven_excludes == standby.maven_excludes
            and set(run.maven_packages) <= set(standby.maven_packages))


_cluster: DriverHostedSparkCluster | None = None  # this process's session (one at a time, as RayDP's)


@dataclass
class SparkOnRay:
    """A started session and what stopping it needs."""

    spark: Any
    archive: DriverArchive
    start_seconds: float


def start_spark(shape: SessionShape, settings: AppSettings, app_name: str, placement_group: Any,
                bundle_indexes: list[int], marker_java_option: str = "") -> SparkOnRay:
    """Start Spark on RayDP in ``placement_group``'s executor bundles, the driver JVM using (or dumping) the
    class-data-sharing archive of its classpath. A failed start stops whatever it started. ``marker_java_option``
    marks every JVM of the session (see ``priority.py``)."""
    from syncmaster_ray.job import app_master
    from syncmaster_ray.job.class_data_sharing import DriverArchive, archive_key
    from syncmaster_ray.job.spark import existing_jars, spark_configs

    resources = shape.resources
    archive = DriverArchive.plan(settings.spark.class_data_sharing_dir,
                                 archive_key(existing_jars(settings.spark.jars), list(shape.maven_packages),
                                             settings.spark.driver_jvm_options))
    # Python workers of the executors (the Postgres COPY path) run this interpreter, which has our deps.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    started = time.monotonic()
    global _cluster
    try:
        _cluster = app_master.init_spark(
            app_name=app_name,
            num_executors=resources.max_parallel_tasks,
            executor_cores=resources.cpu_cores_per_task,
            executor_memory=f"{resources.executor_memory_mb}M",
            enable_hive=shape.hive,
            placement_group=placement_group,
            bundle_indexes=bundle_indexes,
            configs=spark_configs(
                settings.spark,
                maven_packages=list(shape.maven_packages),
                maven_excludes=list(shape.maven_excludes),
                driver_memory_mb=settings.ray.driver_memory_bytes // (1024 * 1024),
                parallelism=resources.max_parallel_tasks * resources.cpu_cores_per_task,
                executor_memory_mb=resources.executor_memory_mb,
                driver_java_options=archive.java_options,
                marker_java_option=marker_java_option,
            ),
        )
    except BaseException:
        archive.finish(driver_exited=stop_spark())
        raise
    return SparkOnRay(spark=_cluster.get_spark_session(), archive=archive,
                      start_seconds=round(time.monotonic() - started, 3))


def stop_spark() -> bool:
    """Stop RayDP's Spark and end the driver JVM; True once the JVM exited."""
    from syncmaster_ray.job.class_data_sharing import stop_driver_jvm

    global _cluster
    started = time.monotonic()
    try:
        if _cluster is not None:
            _cluster.stop()
    finally:
        _cluster = None
    stopped = time.monotonic()
    exited = stop_driver_jvm()
    log.info("Spark stopped in %.2f s (RayDP), its driver JVM exited %.2f s later", stopped - started,
             time.monotonic() - stopped)
    return exited
