"""The options, resources and classpath the Spark driver gives RayDP's app master (``job/app_master.py``)."""

from __future__ import annotations

import os

from syncmaster_ray.job.app_master import (
    APP_MASTER_JAVA_OPTIONS,
    LOGFILE_PREFIX_OPTION,
    DriverHostedSparkCluster,
    app_master_classpath,
    app_master_java_options,
    app_master_resources,
)

CONFIGS = {
    "spark.executor.instances": "2",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseSerialGC",
    "spark.driver.extraJavaOptions": "-Xshare:auto -XX:SharedArchiveFile=/tmp/driver.jsa",
    APP_MASTER_JAVA_OPTIONS: "-XX:MaxRAMPercentage=10  -XX:+UseSerialGC -Dsyncmaster.marker=abc",
    "spark.javaagent": "/opt/raydp-agent.jar",
    "spark.ray.raydp_spark_master.actor.resource.CPU": "0",
    "spark.ray.raydp_spark_executor.actor.resource.CPU": "1",
}


def test_every_spark_setting_reaches_the_app_master_as_a_system_property_but_the_jvm_options_of_others():
    options = app_master_java_options(CONFIGS)
    assert "-Dspark.executor.instances=2" in options
    # One argument each, spaces kept: the app master hands these on to the executors it starts.
    assert "-Dspark.executor.extraJavaOptions=-Duser.timezone=UTC -XX:+UseSerialGC" in options
    assert not any(option.startswith("-Dspark.driver.extraJavaOptions") for option in options)
    assert not any(option.startswith(f"-D{APP_MASTER_JAVA_OPTIONS}") for option in options)
    assert "-javaagent:/opt/raydp-agent.jar" in options and "-Dspark.javaagent=/opt/raydp-agent.jar" not in options


def test_the_app_masters_own_jvm_options_come_split_and_last_but_the_log_prefix():
    options = app_master_java_options(CONFIGS)
    assert options[-4:] == ["-XX:MaxRAMPercentage=10", "-XX:+UseSerialGC", "-Dsyncmaster.marker=abc",
                            LOGFILE_PREFIX_OPTION]
    assert app_master_java_options({})[-1] == LOGFILE_PREFIX_OPTION


def test_only_the_master_resource_settings_size_the_app_master():
    assert app_master_resources(CONFIGS) == {"spark.ray.raydp_spark_master.actor.resource.CPU": 0.0}


def test_the_classpath_puts_preferred_entries_then_the_operators_jars_before_raydp_spark_and_ray():
    classpath = app_master_classpath({"spark.ray.preferClassPath": "/prefer/a.jar",
                                      "raydp.executor.extraClassPath": "/ops/pg.jar:/ops/my.jar:"}).split(os.pathsep)
    assert classpath[:3] == ["/prefer/a.jar", "/ops/pg.jar", "/ops/my.jar"]
    raydp_at = next(i for i, entry in enumerate(classpath) if "raydp" in entry and entry.endswith(".jar"))
    spark_at = next(i for i, entry in enumerate(classpath) if entry.endswith(os.path.join("pyspark", "jars", "*")))
    ray_at = next(i for i, entry in enumerate(classpath) if entry.endswith("ray_dist.jar"))
    assert 3 <= raydp_at < spark_at < ray_at


def test_stopping_goes_on_past_a_step_that_fails():
    # A dead executor or app master must not keep the rest from stopping: the driver JVM is ended after this.
    cluster = object.__new__(DriverHostedSparkCluster)
    done = []

    def failing_session_stop() -> None:
        done.append("session")
        raise RuntimeError("the session was gone")

    cluster._stop_session = failing_session_stop
    cluster._stop_app_master = lambda: done.append("app master")
    cluster._leave_ray = lambda: done.append("ray")
    cluster.stop()
    assert done == ["session", "app master", "ray"]
