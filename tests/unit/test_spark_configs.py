"""``spark_configs``: the JVM options each run's driver and executors start with (docs/jvm-options.md)."""

from __future__ import annotations

import pytest

from syncmaster_ray.job.spark import spark_configs
from syncmaster_ray.settings import SparkSettings


def configs(memory_mb: int = 1024, **settings) -> dict[str, str]:
    return spark_configs(SparkSettings(jars=[], **settings), maven_packages=[], driver_memory_mb=1024,
                         parallelism=1, executor_memory_mb=memory_mb, driver_java_options="-XX:SharedArchiveFile=a")


def test_the_driver_runs_c1_code_with_the_serial_collector_and_keeps_its_archive():
    driver = configs()["spark.driver.extraJavaOptions"].split()
    assert driver == ["-Duser.timezone=UTC", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                      "-XX:SharedArchiveFile=a"]


@pytest.mark.parametrize(("memory_mb", "serial"), [(1024, True), (2048, True), (4096, False)])
def test_executors_compile_only_hot_loops_with_c2_and_small_ones_collect_serially(memory_mb, serial):
    executor = configs(memory_mb)["spark.executor.extraJavaOptions"].split()
    assert executor[0] == "-Duser.timezone=UTC" and "-XX:Tier4InvocationThreshold=50000" in executor
    assert ("-XX:+UseSerialGC" in executor) is serial
    assert not any("TieredStopAtLevel" in flag for flag in executor)  # long copies keep C2


def test_a_collector_the_operator_chose_is_kept_and_ours_left_out():
    chosen = configs(1024, extra_config={"spark.executor.extraJavaOptions": "-XX:+UseG1GC -Xss2m",
                                         "spark.driver.extraJavaOptions": "-XX:+UseParallelGC"})
    executor = chosen["spark.executor.extraJavaOptions"].split()
    driver = chosen["spark.driver.extraJavaOptions"].split()
    assert executor[:2] == ["-XX:+UseG1GC", "-Xss2m"] and "-XX:+UseSerialGC" not in executor
    assert driver[0] == "-XX:+UseParallelGC" and "-XX:+UseSerialGC" not in driver
    assert "-XX:TieredStopAtLevel=1" in driver  # the rest of ours stays


def test_options_are_settings_an_operator_can_empty():
    plain = configs(1024, driver_jvm_options="", executor_jvm_options="", executor_serial_gc_max_mb=0)
    assert plain["spark.driver.extraJavaOptions"] == "-Duser.timezone=UTC -XX:SharedArchiveFile=a"
    assert plain["spark.executor.extraJavaOptions"] == "-Duser.timezone=UTC"
