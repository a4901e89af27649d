"""Standby transfer actors: Spark on RayDP already started for the next runs of the default shape.

RayDP's start-up (the driver, its app master and the executor: three JVMs) is most of a short run's fixed cost.
With ``SYNCMASTER__RAY__STANDBY_DRIVERS`` (``auto`` by default: one, where the cluster has room) jobs leave
transfer actors behind: detached, each in a placement group of its own, with its Spark session started, its
executor and Python worker warmed, and no run's data or credentials. A run of the default shape (SyncMaster's
default resources, no Hive) claims one under the actor's own lock, uses it as its transfer actor and tears it down
like any other; its job starts a replacement right after the claim, at background OS priority (``priority``), or
at its end when there was no room then. Each run still gets a dedicated actor, Spark and JVMs, all gone after it.

Trade-offs: an idle standby holds its resources (a run of another shape that finds no capacity evicts idle
standbys first) and about 1.6 GB of memory. A claimed standby was started by an earlier job, so Ray files its
output under that job: the run's Python log lines are captured and printed by the run's own job instead.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syncmaster_ray.ids import ray_namespace_for
from syncmaster_ray.job.actor import LOG_FORMAT, TransferActor, spawn
from syncmaster_ray.job.placement import PlacementPlan, plan_placement
from syncmaster_ray.job.priority import BackgroundPriority, marker_for
from syncmaster_ray.job.session import SessionShape, SparkOnRay, start_spark, stop_spark
from syncmaster_ray.outcome import RunOutcome
from syncmaster_ray.spec import Resources

if TYPE_CHECKING:
    from syncmaster_ray.settings import AppSettings

log = logging.getLogger(__name__)

PREFIX = "standby-"
CLAIM_TIMEOUT_SECONDS = 10
WARM_UP_GROUP = "syncmaster-standby-warm-up"
# A standby's warm-up read: enough rows of common types for the JIT to compile the read and Arrow paths.
WARM_UP_QUERY = ("SELECT g::bigint AS id, 'row ' || g AS name, (g % 1000)::numeric(12, 2) / 10 AS amount, "
                 "g % 2 = 0 AS active, now() + g * interval '1 second' AS created_at "
                 "FROM generate_series(1, 300000) AS g")


def ray_namespace(settings: AppSettings) -> str:
    """The Ray namespace standbys are named in: one per SyncMaster database, as submission ids are.

    Only their names live there. Each Spark session's driver joins Ray in a namespace of its own (RayDP names its
    executors ``raydp-executor-<n>``, so two sessions sharing one would collide; see ``app_master.py``).
    """
    return ray_namespace_for(settings.job_namespace)


def standby_shape(settings: AppSettings) -> SessionShape:
    """SyncMaster's default resources, and the Maven packages of every JDBC database when Maven is used."""
    if not settings.spark.use_maven_packages:
        return SessionShape(resources=Resources())
    from syncmaster_ray.handlers.registry import jdbc_handler_classes

    packages = tuple(sorted({package for cls in jdbc_handler_classes() for package in cls.maven_packages}))
    return SessionShape(resources=Resources(), maven_packages=packages)


def standby_plan(settings: AppSettings) -> PlacementPlan:
    return plan_placement(Resources(), driver_cpus=settings.ray.driver_cpus,
                          driver_memory_bytes=settings.ray.driver_memory_bytes)


class StandbyActor(TransferActor):
    """A transfer actor started without a run: it starts Spark at once, in a thread, and waits to be claimed by one
    run, which then uses that session instead of starting its own. Evicted, it refuses every later claim."""

    def __init__(self, shape: SessionShape, group: Any, executor_bundle_indexes: list[int]) -> None:
        super().__init__(None)
        self.group = group
        self._lock = threading.Lock()
        self._evicted = False
        self._session: SparkOnRay | None = None
        self._priority = BackgroundPriority(marker_for(uuid.uuid4().hex[:12]))
        self._priority_restored = False
        self._warm_up = threading.Thread(target=self._start_session, args=(shape, executor_bundle_indexes),
                                         name="standby-warm-up", daemon=True)
        self._warm_up.start()

    def claim(self, run_id: int, deadline: float | None = None) -> Any:
        """Become ``run_id``'s actor; returns the placement group, or None if taken or evicted already, or if the
        claim arrives after ``deadline`` (epoch seconds): a claim queued while the standby still waited for its
        placement is answered only once it starts, and the run that sent it has given up on it by then."""
        with self._lock:
            if self.run_id is not None or self._evicted or (deadline is not None and time.time() > deadline):
                return None
            self.run_id = run_id
            session = self._session
        # The run must not wait for a warm-up, nor share the CPUs with one, nor run at background priority.
        if session is not None:
            session.spark.sparkContext.cancelJobGroup(WARM_UP_GROUP)
        self._priority_restored = self._priority.restore()
        return self.group

    def evict(self) -> Any:
        """Refuse every later claim; returns the placement group to free, or None if a run has it (or it was
        evicted already)."""
        with self._lock:
            if self.run_id is not None or self._evicted:
                return None
            self._evicted = True
            return self.group

    def group_id(self) -> str | None:
        """The hex id of its placement group."""
        return self.group.id.hex() if self.group is not None else None

    def run(self, placement_group: Any, executor_bundle_indexes: list[int]) -> RunOutcome:
        """As ``TransferActor.run``, with the run's log lines in ``log``: this actor was started by an earlier
        job, so Ray files its output under that job, and the run's own job prints them."""
        with _captured_log() as lines:
            outcome = super().run(placement_group, executor_bundle_indexes)
        outcome.log = lines
        if outcome.ok:
            outcome.metrics["standby_priority"] = "restored" if self._priority_restored else "background"
        return outcome

    def _started_session(self) -> SparkOnRay | None:
        """The session once its warm-up is over (waited for, counted as start time), else None."""
        waiting = time.monotonic()
        self._warm_up.join()
        if self._session is None:
            log.warning("The standby's Spark did not start: starting it for this run")
            stop_spark()
            return None
        self._session.start_seconds = round(time.monotonic() - waiting, 3)
        return self._session

    def _start_session(self, shape: SessionShape, executor_bundle_indexes: list[int]) -> None:
        """Start Spark, then warm it up, at background priority (see ``priority.py``) unless a run claimed this
        standby meanwhile: a claimed standby skips or cuts short the warm-up."""
        from syncmaster_ray.settings import get_settings

        self._priority.lower()
        try:
            settings = get_settings()
            session = start_spark(shape, settings, "syncmaster-ray-standby", self.group, executor_bundle_indexes,
                                  marker_java_option=self._priority.marker)
        except Exception:
            log.exception("The standby's Spark did not start")
            return
        finally:
            self._priority.started()
        with self._lock:
            self._session = session
            if self.run_id is not None:
                return  # claimed while starting: the run needs no warm-up
            session.spark.sparkContext.setJobGroup(WARM_UP_GROUP, "standby warm-up")
        try:
            _warm_up_repository(settings.database.sync_url)
            _warm_up(session.spark, settings.database.sync_url)
        except Exception as exc:  # only slower: the session itself is fine
            if self.run_id is not None:
                log.info("Standby warm-up cut short: a run claimed this standby")
            else:
                log.warning("Standby warm-up read failed (%s): the run will load its code paths itself",
                            type(exc).__name__)


@dataclass
class Claimed:
    name: str
    actor: Any
    group: Any


def _standby_actors(namespace: str) -> list[tuple[str, Any]]:
    import ray

    actors = []
    for entry in sorted(ray.util.list_named_actors(all_namespaces=True), key=lambda e: e["name"]):
        if entry["namespace"] == namespace and entry["name"].startswith(PREFIX):
            try:
                actors.append((entry["name"], ray.get_actor(entry["name"], namespace=namespace)))
            except ValueError:
                continue  # gone since it was listed
    return actors


def claim(run_id: int, namespace: str) -> Claimed | None:
    """Take an idle standby for ``run_id`` (or None): the actor and its placement group, now the run's."""
    import ray

    for name, actor in _standby_actors(namespace):
        try:
            # The standby refuses the claim past half our wait: one it accepts reaches us before we give up (with
            # node clocks less than CLAIM_TIMEOUT_SECONDS / 2 apart).
            deadline = time.time() + CLAIM_TIMEOUT_SECONDS / 2
            group = ray.get(actor.claim.remote(run_id, deadline), timeout=CLAIM_TIMEOUT_SECONDS)
        except (ray.exceptions.RayError, TimeoutError):
            log.info("Standby %s did not answer: skipped", name)
            continue
        except BaseException:  # stopped mid-claim: it may be ours now, so it goes (its group is an orphan now)
            ray.kill(actor, no_restart=True)
            raise
        if group is not None:
            log.info("Run %s uses standby %s (Spark already started)", run_id, name)
            return Claimed(name=name, actor=actor, group=group)
    return None


def evict_idle(namespace: str) -> int:
    """Kill every idle standby and free its placement group; returns how many."""
    import ray
    from ray.util.placement_group import remove_placement_group

    evicted = 0
    for name, actor in _standby_actors(namespace):
        try:
            group = ray.get(actor.evict.remote(), timeout=CLAIM_TIMEOUT_SECONDS)
        except (ray.exceptions.RayError, TimeoutError):
            group = None  # dead or stuck: kill it anyway, its group is found below
        if group is None:
            continue
        ray.kill(actor, no_restart=True)
        remove_placement_group(group)
        evicted += 1
        log.info("Evicted standby %s", name)
    remove_orphan_groups(namespace)
    return evicted


def remove_orphan_groups(namespace: str) -> int:
    """Remove standby placement groups that no live standby holds (left by a job stopped mid-claim or mid-start,
    or by a standby that died); returns how many."""
    import ray
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group

    held = set()
    for _, actor in _standby_actors(namespace):
        try:
            held.add(ray.get(actor.group_id.remote(), timeout=CLAIM_TIMEOUT_SECONDS))
        except (ray.exceptions.RayError, TimeoutError):
            continue
    removed = 0
    for group_id, info in placement_group_table().items():
        name = info.get("name") or ""
        if name.startswith(_group_prefix(namespace)) and info.get("state") != "REMOVED" and group_id not in held:
            remove_placement_group(PlacementGroup(PlacementGroupID(bytes.fromhex(group_id))))
            removed += 1
            log.info("Removed orphan standby placement group %s", name)
    return removed


def _group_prefix(namespace: str) -> str:
    """Standby group names carry the standbys' namespace: another installation's are never ours to remove."""
    return f"{namespace}/{PREFIX}"


def free_names(existing: set[str], claimed: str | None, wanted: int) -> list[str]:
    """Names a new standby may take, when fewer than ``wanted`` are unclaimed (else none). A claimed standby keeps
    its name until its run ends, so there are twice as many names as standbys."""
    if len(existing - {claimed}) >= wanted:
        return []
    return [name for name in (f"{PREFIX}{i}" for i in range(2 * wanted)) if name not in existing]


def replenish(settings: AppSettings, *, only_if_room: bool = False, claimed: str | None = None) -> int:
    """Start one standby if fewer than wanted exist (``SYNCMASTER__RAY__STANDBY_DRIVERS``); returns 1 or 0.

    One per call, so that a job never starts several sessions on the CPUs its run needs; nothing is waited for.
    With ``only_if_room`` (and always with ``auto``) it starts only if the cluster has room for it now, so it never
    waits in Ray's queue ahead of a run.
    ``claimed``: the name of the standby this job's run claimed, which no longer counts (but keeps its name until
    its run ends, so the new one takes a free name).
    """
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    from syncmaster_ray.job.placement import fits_somewhere

    namespace = ray_namespace(settings)
    remove_orphan_groups(namespace)
    existing = {name for name, _ in _standby_actors(namespace)}
    names = free_names(existing, claimed, settings.ray.standby_count)
    plan, shape = standby_plan(settings), standby_shape(settings)
    if not names or ((only_if_room or settings.ray.standbys_only_where_room)
                     and not fits_somewhere(plan, ray.available_resources())):
        return 0
    for name in names:
        # STRICT_PACK: the driver beside its executor, which is what every run's placement accepts.
        group_name = f"{_group_prefix(namespace)}{name.removeprefix(PREFIX)}-{uuid.uuid4().hex[:8]}"
        group = placement_group(plan.bundles, strategy="STRICT_PACK", name=group_name, lifetime="detached")
        try:
            spawn(StandbyActor, shape, group, plan.executor_bundle_indexes, name=name, group=group, plan=plan,
                  namespace=namespace, lifetime="detached",
                  max_concurrency=4)  # claim/evict answer while the warm-up or a run is under way
        except ValueError:  # another job started this one just now
            remove_placement_group(group)
            continue
        log.info("Started standby %s", name)
        return 1
    return 0


def _warm_up_repository(database_url: str) -> None:
    """What the run's first step loads: our models, a pooled connection to our database, the handler modules."""
    from sqlalchemy import text

    from syncmaster_ray.db.engine import get_engine
    from syncmaster_ray.db.repository import RunRepository  # noqa: F401
    from syncmaster_ray.handlers.registry import handler_classes

    engine = get_engine(database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()  # an idle standby holds no session of our database
    handler_classes()  # imports every handler module


def _warm_up(spark: Any, database_url: str) -> None:
    """Run what a Postgres -> Postgres transfer runs first, so the run finds it loaded and JIT-compiled: onETL's
    connection check on the driver, a JDBC read of generated rows on the executor, Arrow batches to a Python worker
    that imports the COPY path (Spark reuses Python workers), and a task of the COPY pipe's shape (an RDD job whose
    Python worker imports the pipe and finds ``psql``). Our own database (SyncMaster's, always Postgres) is the one
    server a standby may talk to; nothing is written."""
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
    spark.sparkContext.parallelize(range(1), 1).map(_load_copy_pipe).collect()


def _load_copy_pipe(index: int) -> bool:
    """In a Python worker of the executor: what the COPY pipe's task loads (True when the node has ``psql``)."""
    import shutil

    import psycopg  # noqa: F401

    from syncmaster_ray.handlers import pg_copy_pipe  # noqa: F401

    return shutil.which("psql") is not None


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
