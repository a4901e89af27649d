"""The stock SyncMaster worker's way: a local Spark session inside the worker process, onETL read then write.

Run as ``BENCH_DB_URL=... python -m bench.stock <source> <target> <threads>`` in a fresh process whose imports are done
before the clock starts (a running Celery worker has them loaded). Prints one JSON line of phase timings.
"""

from __future__ import annotations

import json
import os
import sys
import time

from sqlalchemy.engine import make_url


def main(db_url: str, source: str, target: str, threads: int) -> dict[str, float]:
    from onetl.connection import Postgres
    from onetl.db import DBReader, DBWriter
    from pyspark.sql import SparkSession

    url = make_url(db_url)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    spark = (SparkSession.builder.master(f"local[{threads}]").appName("stock-way")
             .config("spark.jars", "/usr/share/java/postgresql.jar").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    timings["spark_start_seconds"] = time.perf_counter() - started
    try:
        mark = time.perf_counter()
        kwargs = {"host": url.host, "port": url.port or 5432, "user": url.username, "password": url.password or "",
                  "database": url.database, "spark": spark}
        source_conn, target_conn = Postgres(**kwargs).check(), Postgres(**kwargs).check()
        timings["connect_seconds"] = time.perf_counter() - mark
        mark = time.perf_counter()
        df = DBReader(connection=source_conn, source=source).run()
        DBWriter(connection=target_conn, target=target,
                 options=Postgres.WriteOptions(if_exists="replace_entire_table")).run(df)
        timings["copy_seconds"] = time.perf_counter() - mark
    finally:
        mark = time.perf_counter()
        spark.stop()
        timings["spark_stop_seconds"] = time.perf_counter() - mark
    timings["total_seconds"] = time.perf_counter() - started
    return timings


if __name__ == "__main__":
    import onetl.db  # noqa: F401  (warm imports, as in a running worker)
    import pyspark.sql  # noqa: F401

    print(json.dumps(main(os.environ["BENCH_DB_URL"], sys.argv[1], sys.argv[2], int(sys.argv[3]))))
