"""``TransferActor``: the Spark driver of one run, living in the driver bundle of the run's placement group.

A plain class that the entrypoint turns into an actor, one per run, killed by the entrypoint afterwards (so the
driver JVM, whose parent it is, dies with it). It starts Spark on RayDP and stops it in ``finally``.

A standby (``standby.py``) is the same class started without a run: it starts Spark at once, in a thread, and
waits to be claimed by one run, which then uses that session instead of starting its own.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncmaster_ray import node_env
from syncmaster_ray.errors import ConfigError
from syncmaster_ray.ids import submission_id_for
from syncmaster_ray.job import workdirs
from syncmaster_ray.job.transfer import build_handlers, perform_transfer
from syncmaster_ray.outcome import classify

log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A standby's warm-up read: enough rows of common types for the JIT to compile the read and Arrow paths.
WARM_UP_QUERY = ("SELECT g::bigint AS id, 'row ' || g AS name, (g % 1000)::numeric(12, 2) / 10 AS amount, "
                 "g % 2 = 0 AS active, now() + g * interval '1 second' AS created_at "
                 "FROM generate_series(1, 300000) AS g")


@dataclass
class SparkOnRay:
    """A started session and what stopping it needs."""

    spark: Any
    archive: Any
    start_seconds: float


class TransferActor:
    def __init__(self, run_id: int | None, *, standby: Any = None, group: Any = None,
                 executor_bundle_indexes: list[int] | None = None) -> None:
        self.run_id = run_id
        self.group = group
        self._lock = threading.Lock()
        self._session: SparkOnRay | None = None
        self._warm_up: threading.Thread | None = None
        # Actor processes log at WARNING by default; onETL's INFO lines (options, metrics) belong in the job log.
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        logging.getLogger("py4j").setLevel(logging.WARNING)
        if standby is not None:
            self._warm_up = threading.Thread(target=self._start_standby, args=(standby, executor_bundle_indexes),
                                             name="standby-warm-up", daemon=True)
            self._warm_up.start()

    def ping(self) -> bool:
        return True

    def claim(self, run_id: int, deadline: float | None = None) -> Any:
        """Standby: become ``run_id``'s actor; returns the placement group, or None if taken already, or if the
        claim arrives after ``deadline`` (epoch seconds): a claim queued while the standby still waited for its
        placement is answered only once it starts, and the run that sent it has given up on it by then."""
        with self._lock:
            if self.run_id is not None or (deadline is not None and time.time() > deadline):
                return None
            self.run_id = run_id
            return self.group

    def group_id(self) -> str | None:
        """Standby: the hex id of its placement group."""
        return self.group.id.hex() if self.group is not None else None

    def evict(self) -> Any:
        """Standby: refuse every later claim; returns the placement group to free, or None if a run has it."""
        return self.claim(-1)

    def run(self, placement_group: Any, executor_bundle_indexes: list[int]) -> dict[str, Any]:
        """Run the transfer; returns ``{"ok": True, "metrics": ...}`` or ``{"ok": False, "code", "reason"}``.

        Errors are classified here, where the original exception (and its secrets to redact) is at hand. A claimed
        standby also returns its log lines (``log``): its output is filed under the job that started it.
        """
        if self._warm_up is None:
            return self._run(placement_group, executor_bundle_indexes)
        with _captured_log() as lines:
            result = self._run(placement_group, executor_bundle_indexes)
        return {**result, "log": lines}

    def _run(self, placement_group: Any, executor_bundle_indexes: list[int]) -> dict[str, Any]:
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
            secrets += _connection_secrets(spec)
            source, target = build_handlers(spec)
            _sweep_settled_run_dirs(repo, settings.job_namespace)
            # Named after the submission id: run ids repeat across SyncMaster databases sharing a node.
            prefix = workdirs.prefix_for(submission_id_for(self.run_id, settings.job_namespace))
            with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
                os.chdir(workdir)
                for handler in (source, target):
                    # File handlers stage files here (removed with the directory).
                    handler.update_context(work_dir=Path(workdir))
                metrics = self._run_spark(spec, settings, placement_group, executor_bundle_indexes, source, target)
            return {"ok": True, "metrics": metrics}
        except BaseException as exc:
            log.exception("Run %s failed", self.run_id)
            code, reason = classify(exc, secrets)
            return {"ok": False, "code": code, "reason": reason}

    def _run_spark(self, spec, settings, placement_group, bundle_indexes, source, target) -> dict[str, Any]:
        from syncmaster_ray.job.executor_nodes import ExecutorPlacementProbe
        from syncmaster_ray.job.standby import run_shape
        from syncmaster_ray.job.strategy import hwm_store_for

        started_at = time.time()
        session, driver = self._warm_session(), "standby"
        if session is None:
            driver = "cold"
            shape = run_shape(settings, spec.resources, (source, target))
            session = self._start_spark(shape, settings, f"{spec.app_name}__run{spec.run_id}", placement_group,
                                        bundle_indexes)
        driver_exited = False
        try:
            probe = ExecutorPlacementProbe(placement_group, spec.resources.max_parallel_tasks)
            for handler in (source, target):
                # Staging handlers need the executors beside the driver's disk: they ask before reading.
                handler.update_context(executors_on_driver_node=probe.all_on_driver_node)
            try:
                metrics = perform_transfer(session.spark, source, target, hwm_store_for(settings))
                placement = probe.placement()
                if placement is not None:
                    metrics.update(placement.as_metrics())
            finally:
                stopping = time.monotonic()
                driver_exited = _stop_spark()
                metrics_teardown = round(time.monotonic() - stopping, 3)
        finally:
            session.archive.finish(driver_exited=driver_exited)
        metrics["driver_class_archive"] = session.archive.mode
        metrics["driver"] = driver
        # Wall-clock bounds (epoch seconds) of this run's Spark session, to see which runs overlapped.
        return {"spark_start_seconds": session.start_seconds, **metrics, "spark_stop_seconds": metrics_teardown,
                "spark_started_at": round(started_at, 3), "spark_stopped_at": round(time.time(), 3)}

    def _warm_session(self) -> SparkOnRay | None:
        """A standby's session once its warm-up is over (waited for, counted as start time), else None."""
        if self._warm_up is None:
            return None
        waiting = time.monotonic()
        self._warm_up.join()
        if self._session is None:
            log.warning("The standby's Spark did not start: starting it for this run")
            _stop_spark()
            return None
        self._session.start_seconds = round(time.monotonic() - waiting, 3)
        return self._session

    def _start_standby(self, shape: Any, executor_bundle_indexes: list[int]) -> None:
        from syncmaster_ray.settings import get_settings

        try:
            settings = get_settings()
            self._session = self._start_spark(shape, settings, "syncmaster-ray-standby", self.group,
                                              executor_bundle_indexes)
        except Exception:
            log.exception("The standby's Spark did not start")
            self._session = None
            return
        try:
            _warm_up_repository(settings.database.sync_url)
            _warm_up(self._session.spark, settings.database.sync_url)
        except Exception as exc:  # only slower: the session itself is fine
            log.warning("Standby warm-up read failed (%s): the run will load its code paths itself",
                        type(exc).__name__)

    def _start_spark(self, shape: Any, settings: Any, app_name: str, placement_group: Any,
                     bundle_indexes: list[int]) -> SparkOnRay:
        import raydp

        from syncmaster_ray.job.class_data_sharing import DriverArchive, archive_key
        from syncmaster_ray.job.spark import existing_jars, spark_configs

        resources = shape.resources
        archive = DriverArchive.plan(settings.spark.class_data_sharing_dir,
                                     archive_key(existing_jars(settings.spark.jars), list(shape.maven_packages),
                                                 settings.spark.driver_jvm_options))
        # Python workers of the executors (the Postgres COPY path) run this interpreter, which has our deps.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        started = time.monotonic()
        try:
            spark = raydp.init_spark(
                app_name=app_name,
                num_executors=resources.max_parallel_tasks,
                executor_cores=resources.cpu_cores_per_task,
                executor_memory=f"{resources.executor_memory_mb}M",
                fault_tolerant_mode=False,  # it would add a Ray driver per transfer (stack-notes pitfall 12)
                enable_hive=shape.hive,
                placement_group=placement_group,
                placement_group_bundle_indexes=bundle_indexes,
                configs=spark_configs(
                    settings.spark,
                    maven_packages=list(shape.maven_packages),
                    maven_excludes=list(shape.maven_excludes),
                    driver_memory_mb=settings.ray.driver_memory_bytes // (1024 * 1024),
                    parallelism=resources.max_parallel_tasks * resources.cpu_cores_per_task,
                    executor_memory_mb=resources.executor_memory_mb,
                    driver_java_options=archive.java_options,
                ),
            )
        except BaseException:
            archive.finish(driver_exited=_stop_spark())
            raise
        return SparkOnRay(spark=spark, archive=archive, start_seconds=round(time.monotonic() - started, 3))


def _stop_spark() -> bool:
    """Stop RayDP's Spark and end the driver JVM; True once the JVM exited."""
    import raydp

    from syncmaster_ray.job.class_data_sharing import stop_driver_jvm

    raydp.stop_spark()
    return stop_driver_jvm()


def _sweep_settled_run_dirs(repo: Any, namespace: str) -> None:
    """Remove what runs of our namespace left on this node when their job died before its teardown."""
    from syncmaster_ray.db.models import Status

    settled = (Status.FINISHED, Status.FAILED, Status.STOPPED)
    try:
        removed = workdirs.sweep_settled(lambda run_id: repo.get_status(run_id) in settled,
                                         submission_id_for(0, namespace).removesuffix("0"))
    except Exception:  # housekeeping never fails a run
        log.warning("Could not sweep directories of settled runs", exc_info=True)
        return
    if removed:
        log.info("Removed %d directory(ies) of settled runs left on this node", removed)


def _warm_up_repository(database_url: str) -> None:
    """What the run's first step loads: our models, a pooled connection to our database, the JDBC handlers."""
    from sqlalchemy import text

    from syncmaster_ray.db.engine import get_engine
    from syncmaster_ray.db.repository import RunRepository  # noqa: F401
    from syncmaster_ray.handlers.registry import handler_class_for, jdbc_types

    with get_engine(database_url).connect() as connection:
        connection.execute(text("SELECT 1"))
    for kind in jdbc_types():
        handler_class_for(kind)


def _warm_up(spark: Any, database_url: str) -> None:
    """Run what a Postgres -> Postgres transfer runs first, so the run finds it loaded and JIT-compiled: onETL's
    connection check on the driver, a JDBC read of generated rows on the executor, Arrow batches to a Python worker
    that imports the COPY path (Spark reuses Python workers). Our own database (SyncMaster's, always Postgres) is
    the one server a standby may talk to; nothing is written."""
    from onetl.connection import Postgres
    from onetl.db import DBReader  # noqa: F401  (the run's imports, ahead of it)
    from sqlalchemy.engine import make_url

    def load_copy_path(batches: Any) -> Any:
        import psycopg  # noqa: F401
        import pyarrow as pa
        import pyarrow.csv

        for batch in batches:
            pyarrow.csv.write_csv(batch, pa.BufferOutputStream())
            yield pa.RecordBatch.from_pydict({"rows": [batch.num_rows]})

    url = make_url(database_url)
    connection = Postgres(host=url.host, port=url.port or 5432, user=url.username, password=url.password or "",
                          database=url.database, spark=spark).check()
    rows = connection.sql(WARM_UP_QUERY)
    rows.mapInArrow(load_copy_path, "rows long").groupBy().sum("rows").collect()


@contextmanager
def _captured_log() -> Iterator[list[str]]:
    """Collect the process's log lines (formatted) while the block runs."""
    lines: list[str] = []
    handler = _ListHandler(lines)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    try:
        yield lines
    finally:
        logging.getLogger().removeHandler(handler)


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(level=logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _connection_secrets(spec: Any) -> tuple[str, ...]:
    values: list[str] = []
    for connection in (spec.source, spec.target):
        for key, value in connection.auth.get_secret_value().items():
            if key != "user" and key != "type" and isinstance(value, str):
                values.append(value)
    return tuple(values)
