"""Spark configuration for a run on RayDP: jars (local paths or Maven coordinates), JVM flags, resources."""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from syncmaster_ray.settings import SparkSettings

log = logging.getLogger(__name__)


def existing_jars(paths: list[str]) -> list[str]:
    found = [path for path in paths if os.path.isfile(path)]
    for path in sorted(set(paths) - set(found)):
        log.warning("Configured jar %s does not exist on this node: skipped", path)
    return found


def spark_configs(
    settings: SparkSettings,
    *,
    maven_packages: list[str],
    driver_memory_mb: int,
    parallelism: int,
    executor_memory_mb: int = 1024,
    maven_excludes: list[str] | None = None,
    driver_java_options: str = "",
    marker_java_option: str = "",
) -> dict[str, str]:
    """Everything we pass as RayDP ``configs``: operator extras first, then ours. ``marker_java_option`` goes to
    every JVM of the session (a standby finds its processes by it)."""
    jars = existing_jars(settings.jars)
    timezone_flag = "-Duser.timezone=UTC"
    operator_driver = settings.extra_config.get("spark.driver.extraJavaOptions")
    operator_executor = settings.extra_config.get("spark.executor.extraJavaOptions")
    configs: dict[str, Any] = {
        **settings.extra_config,
        "spark.sql.pyspark.jvmStacktrace.enabled": "true",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.default.parallelism": str(parallelism),
        "spark.sql.shuffle.partitions": str(max(parallelism, 1)),
        "spark.driver.memory": f"{driver_memory_mb}m",
        # Operators' JVM options are kept; ours are appended.
        "spark.driver.extraJavaOptions": _join(operator_driver, timezone_flag,
                                               _unless_collector_chosen(settings.driver_jvm_options, operator_driver),
                                               driver_java_options, marker_java_option),
        "spark.executor.extraJavaOptions": _join(operator_executor, timezone_flag, settings.executor_jvm_options,
                                                 _unless_collector_chosen(
                                                     executor_collector(settings, executor_memory_mb),
                                                     operator_executor), marker_java_option),
        # RayDP's app master has no heap cap by default (25 % of RAM).
        "spark.ray.raydp_app_master.extraJavaOptions": _join(settings.master_jvm_options, marker_java_option),
        # RayDP's app master asks for no CPU: every CPU of the transfer is in its placement group.
        "spark.ray.raydp_spark_master.actor.resource.CPU": "0",
    }
    if jars:
        configs["spark.jars"] = ",".join(jars)
        configs["spark.driver.extraClassPath"] = ":".join(jars)
        configs["raydp.executor.extraClassPath"] = ":".join(jars)
    if settings.use_maven_packages and maven_packages:
        configs["spark.jars.packages"] = ",".join(maven_packages)
        if maven_excludes:
            configs["spark.jars.excludes"] = ",".join(maven_excludes)
    return {key: str(value) for key, value in configs.items()}


def executor_collector(settings: SparkSettings, executor_memory_mb: int) -> str:
    """The serial collector for small executors (see ``SparkSettings.executor_serial_gc_max_mb``), else none."""
    return "-XX:+UseSerialGC" if executor_memory_mb <= settings.executor_serial_gc_max_mb else ""


def _unless_collector_chosen(ours: str, operators: str | None) -> str:
    """``ours`` without its collector flag when the operator's options choose one (two make the JVM refuse to
    start)."""
    if not operators or not _COLLECTOR.search(operators):
        return ours
    return " ".join(flag for flag in ours.split() if not _COLLECTOR.fullmatch(flag))


_COLLECTOR = re.compile(r"-XX:\+Use\w*GC")


def _join(*options: str | None) -> str:
    return " ".join(option for option in options if option)
