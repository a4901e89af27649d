"""The stock worker's Spark session, with the JDBC driver from a local jar instead of Maven (this machine has no
Maven repository): ``SYNCMASTER__WORKER__CREATE_SPARK_SESSION_FUNCTION=bench.stock_session.get_worker_spark_session``.

Everything else is SyncMaster 0.3.7's own configuration (``syncmaster.worker.spark``). Runs in the stock worker's
venv, so it imports nothing of ours.
"""

from __future__ import annotations

from typing import Any

LOCAL_JARS = {"postgres": "/usr/share/java/postgresql.jar", "mysql": "/usr/share/java/mariadb-java-client.jar"}


def get_worker_spark_session(run: Any, source: Any, target: Any, settings: Any) -> Any:
    from pyspark.sql import SparkSession
    from syncmaster.worker.spark import get_spark_session_conf

    master = settings.spark_session_default_config.get("spark.master")
    config = {**settings.spark_session_default_config,
              **get_spark_session_conf(master, source, target, run.transfer.resources)}
    config.pop("spark.jars.packages", None)
    config.pop("spark.jars.excludes", None)
    config["spark.jars"] = ",".join(LOCAL_JARS[kind] for kind in sorted({source.type, target.type}))
    builder = SparkSession.builder.appName(f"SyncMaster__{run.transfer.group.name}_{run.transfer.name}")
    for key, value in config.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
