"""RayDP's Spark on Ray with its app master created by the Spark driver JVM, not by a master actor of its own.

``raydp.init_spark`` starts a Python actor (``RayDPSparkMaster``) whose only job is to launch a JVM that joins Ray
as a Java driver and creates the ``RayAppMaster`` Java actor. That is two processes per session (a Python worker
that imports pyspark and a JVM that loads Ray's Java runtime) beside the driver, the app master and the executors.
Here the driver JVM, which a session starts anyway, joins Ray and creates the app master itself, with the same
options RayDP's bridge gives it (``AppMasterJavaBridge.startUpAppMaster``). RayDP's own ``--master ray`` mode
does the same from the driver, but gives the app master none of our JVM options.

The driver joins Ray in a namespace of its own, so the app master and the executors RayDP names
(``raydp-executor-<n>``) never collide with another session's. Its Ray job ends with the driver JVM, and Ray then
removes any actor of it that is still alive. See docs/architecture.md ("One driver JVM hosts RayDP's master").
"""

from __future__ import annotations

import glob
import json
import logging
import os
import uuid
from typing import Any

import pyspark
import ray
import raydp
from raydp.spark import SparkCluster

# RayDP's configuration keys (raydp/spark/ray_cluster_master.py and SparkOnRayConfigs in its jar).
JAVAAGENT = "spark.javaagent"
APP_MASTER_JAVA_OPTIONS = "spark.ray.raydp_app_master.extraJavaOptions"
DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
MASTER_RESOURCE_PREFIX = "spark.ray.raydp_spark_master.actor.resource"
EXECUTOR_EXTRA_CLASSPATH = "raydp.executor.extraClassPath"
RAY_PREFER_CLASSPATH = "spark.ray.preferClassPath"
LOGFILE_PREFIX_OPTION = "-Dray.logging.file-prefix=raydp-java-worker"
PLACEMENT_GROUP = "spark.ray.placement_group"
BUNDLE_INDEXES = "spark.ray.bundle_indexes"
NAMESPACE_PREFIX = "syncmaster-spark-"

log = logging.getLogger(__name__)


def app_master_java_options(configs: dict[str, str]) -> list[str]:
    """The app master's JVM options, as RayDP's bridge builds them: every Spark setting as a system property
    (the app master reads its SparkConf from them) but the driver's and its own JVM options, the Java agent, then
    its own JVM options and RayDP's log file prefix."""
    options = []
    for key, value in configs.items():
        if key in (DRIVER_JAVA_OPTIONS, APP_MASTER_JAVA_OPTIONS):
            continue
        options.append(f"-javaagent:{value}" if key == JAVAAGENT else f"-D{key}={value}")
    options.extend(configs.get(APP_MASTER_JAVA_OPTIONS, "").split())
    options.append(LOGFILE_PREFIX_OPTION)
    return options


def app_master_resources(configs: dict[str, str]) -> dict[str, float]:
    """RayDP's master resource settings, keyed as its ``RayAppMasterUtils.createAppMaster`` expects them."""
    return {key: float(value) for key, value in configs.items() if key.startswith(MASTER_RESOURCE_PREFIX + ".")}


def app_master_classpath(configs: dict[str, str]) -> str:
    """The app master's (and so the executors') classpath, in RayDP's order: preferred entries, the operator's
    executor jars, RayDP's jars, Spark's and Ray's."""
    entries: list[str] = []
    if RAY_PREFER_CLASSPATH in configs:
        entries.extend(configs[RAY_PREFER_CLASSPATH].split(os.pathsep))
    if EXECUTOR_EXTRA_CLASSPATH in configs:
        entries.extend(configs[EXECUTOR_EXTRA_CLASSPATH].rstrip(os.pathsep).split(os.pathsep))
    spark_home = os.environ.get("SPARK_HOME", os.path.dirname(pyspark.__file__))
    entries.extend(glob.glob(os.path.join(os.path.dirname(raydp.__file__), "jars", "*")))
    entries.append(os.path.abspath(os.path.join(spark_home, "jars", "*")))
    entries.extend(glob.glob(os.path.join(os.path.dirname(ray.__file__), "jars", "*")))
    return os.pathsep.join(entries)


def ray_java_properties(namespace: str) -> dict[str, str]:
    """What the driver JVM needs to join this node's Ray as a Java driver (RayDP's ``_generate_ray_configs``),
    in ``namespace``. Set through py4j, never on a command line."""
    node = ray._private.worker._global_node
    return {
        "ray.run-mode": "CLUSTER",
        "ray.node-ip": node.node_ip_address,
        "ray.address": node.address,
        "ray.logging.dir": node.get_logs_dir_path(),
        "ray.session-dir": node.get_session_dir_path(),
        "ray.raylet.node-manager-port": str(node.node_manager_port),
        "ray.raylet.socket-name": node.raylet_socket_name,
        "ray.raylet.config.num_workers_per_process_java": "1",
        "ray.object-store.socket-name": node.plasma_store_socket_name,
        "ray.logging.level": "WARN",
        "ray.job.namespace": namespace,
    }


def _join_ray(jvm: Any) -> None:
    """``Ray.init()`` in the driver JVM, keeping the job's log as it was. A Ray Java driver replaces the JVM's
    log4j setup with a console logger at INFO; Spark's own setup for pyspark showed WARN and above only (a filter
    on its console appender, which Ray's replaces), so the root level is set to WARN."""
    jvm.io.ray.api.Ray.init()
    log4j = jvm.org.apache.logging.log4j
    log4j.core.config.Configurator.setRootLevel(log4j.Level.WARN)


class DriverHostedSparkCluster(SparkCluster):
    """RayDP's ``SparkCluster`` (its Spark settings, classpath and session) without ``RayDPSparkMaster``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._app_master: Any = None
        self._ray_joined = False
        super().__init__(*args, **kwargs)

    def _set_up_master(self, resources: dict[str, float], kwargs: Any) -> None:
        """Nothing to start yet: the app master is created once the driver JVM runs (``get_cluster_url``)."""

    def get_cluster_url(self) -> str:
        jvm = self._driver_jvm()
        raydp_jvm = jvm.org.apache.spark.deploy.raydp
        raydp_jvm.RayAppMaster.setProperties(json.dumps(ray_java_properties(NAMESPACE_PREFIX + uuid.uuid4().hex)))
        self._ray_joined = True  # leaving is harmless if joining fails half-way
        _join_ray(jvm)
        self._app_master = raydp_jvm.RayAppMasterUtils.createAppMaster(
            app_master_classpath(self._configs), None, app_master_java_options(self._configs),
            app_master_resources(self._configs))
        return raydp_jvm.RayAppMasterUtils.getMasterUrl(self._app_master)

    def _driver_jvm(self) -> Any:
        """Launch the driver JVM with the session's Spark settings (the session created next reuses it)."""
        from pyspark import SparkConf, SparkContext

        SparkContext._ensure_initialized(conf=SparkConf(loadDefaults=False).setAll(list(self._configs.items())))
        return SparkContext._jvm

    def stop(self, cleanup_data: bool = True) -> None:
        """Stop the Spark session, then the app master (which kills its executors), then leave Ray. Each step runs
        even when one before it failed: the caller then ends the driver JVM, and Ray removes whatever of its job
        is still alive."""
        for what, step in (("the Spark session", self._stop_session), ("RayDP's app master", self._stop_app_master),
                           ("the driver's Ray connection", self._leave_ray)):
            try:
                step()
            except Exception as exc:
                log.warning("Stopping %s failed (%s); the driver JVM's exit ends it", what, type(exc).__name__)

    def _stop_session(self) -> None:
        session, self._spark_session = self._spark_session, None
        if session is not None:
            session.stop()

    def _stop_app_master(self) -> None:
        from pyspark import SparkContext

        handle, self._app_master = self._app_master, None
        if handle is not None and SparkContext._jvm is not None:
            SparkContext._jvm.org.apache.spark.deploy.raydp.RayAppMasterUtils.stopAppMaster(handle)

    def _leave_ray(self) -> None:
        from pyspark import SparkContext

        joined, self._ray_joined = self._ray_joined, False
        if joined and SparkContext._jvm is not None:
            SparkContext._jvm.io.ray.api.Ray.shutdown()


def init_spark(app_name: str, num_executors: int, executor_cores: int, executor_memory: str, enable_hive: bool,
               placement_group: Any, bundle_indexes: list[int], configs: dict[str, str]) -> DriverHostedSparkCluster:
    """A started session in ``placement_group``'s ``bundle_indexes`` (``raydp.init_spark`` without its master
    actor); a failed start stops whatever it started. The session is the result's ``get_spark_session()``."""
    configs = {**configs, PLACEMENT_GROUP: placement_group.id.hex(), BUNDLE_INDEXES: ",".join(map(str, bundle_indexes))}
    cluster = DriverHostedSparkCluster(app_name, num_executors, executor_cores, executor_memory, enable_hive, configs)
    try:
        cluster.get_spark_session()
    except BaseException:
        cluster.stop()
        raise
    return cluster
