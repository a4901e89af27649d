"""Read, transform and write one transfer inside the Spark driver, timing each phase."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from syncmaster_ray.errors import InvalidParamsError, SourceError, SyncmasterRayError, TargetError
from syncmaster_ray.handlers.base import JDBCHandler
from syncmaster_ray.handlers.context import HandlerContext
from syncmaster_ray.handlers.registry import handler_class_for
from syncmaster_ray.job import progress
from syncmaster_ray.job.strategy import strategy_scope
from syncmaster_ray.outcome import error_with_cause
from syncmaster_ray.spec import ConnectionSpec, RunSpec, hwm_name

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from syncmaster_ray.handlers.base import Handler, Role
    from syncmaster_ray.job.progress import Progress
    from syncmaster_ray.settings import SparkSettings

log = logging.getLogger(__name__)


def build_handlers(spec: RunSpec, spark_settings: SparkSettings | None = None) -> tuple[Handler, Handler]:
    """Validate both sides' params and build their handlers; needs no Spark.

    ``spark_settings``: ``SYNCMASTER__SPARK__*`` (read from the environment when not given).
    """
    if spark_settings is None:
        from syncmaster_ray.settings import get_settings

        spark_settings = get_settings().spark
    context = HandlerContext(hwm_name=hwm_name(spec), spark=spark_settings)
    return (_handler(spec, spec.source, spec.source_params, "source", context),
            _handler(spec, spec.target, spec.target_params, "target", context))


def _handler(spec: RunSpec, connection: ConnectionSpec, params: dict[str, Any], role: Role,
             context: HandlerContext) -> Handler:
    """The handler of the connection's type; the params must be of that type too (SyncMaster's server checks it,
    a row edited by hand may not)."""
    handler_class = handler_class_for(connection.type)
    if params.get("type") != connection.type:
        raise InvalidParamsError(f"{role}_params.type is {params.get('type')!r} but the {role} connection "
                                 f"{connection.name!r} is of type {connection.type!r}")
    return handler_class(connection=connection, params=params, spec=spec, role=role, context=context)


@contextmanager
def _phase(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[name] = round(time.monotonic() - started, 3)


@contextmanager
def _blame(error: type[SyncmasterRayError], what: str) -> Iterator[None]:
    try:
        yield
    except SyncmasterRayError:
        raise
    except Exception as exc:
        raise error(f"{what} failed: {error_with_cause(exc)}") from exc


@contextmanager
def _progress(spark: SparkSession, source: Handler, target: Handler,
              publish: Callable[[Progress], None] | None) -> Iterator[None]:
    """Report the copy's progress while the block runs: the target's own count where it has one, else the rows
    Spark has read; out of the source's estimated size when it has one."""
    if publish is None:
        yield
        return
    spark_count = progress.spark_rows_read(spark)
    try:
        total = source.estimated_rows()
    except Exception as exc:  # an estimate only: go on without it
        log.info("No size estimate of the source (%s)", type(exc).__name__)
        total = None

    def count() -> int | None:
        own = target.rows_so_far()
        return own if own is not None else spark_count()

    with progress.reporting(count, total, publish):
        yield


def perform_transfer(spark: SparkSession, source: Handler, target: Handler, store: Any,
                     publish: Callable[[Progress], None] | None = None) -> dict[str, Any]:
    """Connect both sides, read, write within the strategy's scope (``store`` keeps HWMs); ``publish`` gets the
    copy's progress every few seconds.

    Returns phase timings in seconds and the number of read partitions.
    """
    timings: dict[str, float] = {}
    source_name = f"reading {_location(source)} from {source.describe}".replace("  ", " ")
    target_name = f"writing {_location(target)} to {target.describe}".replace("  ", " ")
    with _phase(timings, "connect_seconds"):
        _connect(spark, source, target)
    # The new HWM is saved when this scope ends without error: only after the write succeeded.
    with strategy_scope(source.spec, store) as previous_hwm:
        for handler in (source, target):
            handler.update_context(previous_hwm=previous_hwm)
        with _phase(timings, "read_plan_seconds"), _blame(SourceError, source_name):
            df = source.read()
            partitions = df.rdd.getNumPartitions() if df is not None else 0
        # Spark is lazy: rows are read and written here, so a failure may come from either side.
        timings["copy_started_at"] = round(time.time(), 3)  # epoch: the first row is read from here on
        counted: dict[str, int] = {}
        with _phase(timings, "copy_seconds"), _blame(TargetError, target_name), _count_rows(spark, counted):
            if df is None:
                log.info("Nothing new to transfer: the target is left as it is")
            else:
                with _progress(spark, source, target, publish):
                    target.write(df)
    log.info("Transfer done: %s %s", timings, counted)
    return {**timings, **counted, "source_partitions": partitions, **source.metrics, **target.metrics}


def _connect(spark: SparkSession, source: Handler, target: Handler) -> None:
    """Check both connections; two JDBC databases at once (each check is a round trip through py4j and the
    JVM), others one after the other (file handlers register process-wide hooks). A source error wins."""

    def connect(handler: Handler, error: type[SyncmasterRayError]) -> None:
        with _blame(error, f"connecting to {handler.describe}"):
            handler.connect(spark)

    if not (isinstance(source, JDBCHandler) and isinstance(target, JDBCHandler)):
        connect(source, SourceError)
        connect(target, TargetError)
        return
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="connect") as pool:
        checks = [pool.submit(connect, source, SourceError), pool.submit(connect, target, TargetError)]
    for check in checks:
        check.result()


@contextmanager
def _count_rows(spark: SparkSession, counted: dict[str, int]) -> Iterator[None]:
    """Fill ``counted`` with the rows and bytes Spark read and wrote in the block, as far as Spark's listener
    reports them (JDBC reads, for one, report rows but no bytes). onETL's own recorder, as its writers use it."""
    try:
        from onetl._metrics.recorder import SparkMetricsRecorder
    except ImportError:  # a private onETL module: count nothing rather than fail a transfer
        yield
        return
    with SparkMetricsRecorder(spark) as recorder:
        yield
        metrics = recorder.metrics()
    values = {"rows_read": metrics.input.read_rows, "bytes_read": metrics.input.read_bytes,
              "rows_written": metrics.output.written_rows, "bytes_written": metrics.output.written_bytes}
    counted.update({key: value for key, value in values.items() if value})


def _location(handler: Handler) -> str:
    """The table or directory a handler reads or writes, for messages."""
    return str(handler.params.get("table_name") or handler.params.get("directory_path") or "")
