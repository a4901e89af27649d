"""Every query the worker, the job and the CLI run against SyncMaster's database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, selectinload

from syncmaster_ray.db.crypto import decrypt_auth_data, encrypt_auth_data
from syncmaster_ray.db.models import (
    AuthData,
    Connection,
    Group,
    Queue,
    RayRun,
    Run,
    RunType,
    Status,
    Transfer,
    User,
)
from syncmaster_ray.errors import CredentialsError, InvalidParamsError, Phase, RunStateError
from syncmaster_ray.queue_order import QueuedRun
from syncmaster_ray.spec import ConnectionSpec, Resources, RunSpec, Strategy, parse_model
from syncmaster_ray.status import RunLine

ACTIVE_STATUSES = (Status.STARTED.value, Status.SEND_STOP_SIGNAL.value)
STANDALONE_USER = "syncmaster-ray"


def utcnow() -> datetime:
    return datetime.now(tz=UTC)


def queue_slug(group_id: int, name: str) -> str:
    """SyncMaster's slug rule: ``{group_id}-{name lowered, non-alnum runs -> '_', stripped}``."""
    return f"{group_id}-{re.sub('[^a-zA-Z0-9]+', '_', name.lower()).strip('_')}"


@dataclass(frozen=True)
class EndedRun:
    run_id: int
    queue: str
    status: str
    started_at: datetime | None
    ended_at: datetime
    metrics: dict[str, Any] | None
    rows_written: int | None


class RunRepository:
    """Reads and writes runs. Each method opens and closes its own session: no connection is held during a run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    # --- runs -------------------------------------------------------------------------------------------------
    def get_run(self, run_id: int) -> Run | None:
        """The run with its transfer, group and connections loaded, detached from the session."""
        with self.session() as session:
            run = session.scalar(
                select(Run)
                .where(Run.id == run_id)
                .options(
                    selectinload(Run.transfer).selectinload(Transfer.group),
                    selectinload(Run.transfer).selectinload(Transfer.queue),
                    selectinload(Run.transfer).selectinload(Transfer.source_connection),
                    selectinload(Run.transfer).selectinload(Transfer.target_connection),
                ),
            )
            if run is not None:
                session.expunge_all()
            return run

    def get_status(self, run_id: int) -> Status | None:
        with self.session() as session:
            value = session.scalar(select(Run.status).where(Run.id == run_id))
            return Status(value) if value else None

    def is_settled(self, run_id: int) -> bool:
        """Whether the run exists and has ended (FINISHED, FAILED or STOPPED)."""
        status = self.get_status(run_id)
        return status is not None and status.is_terminal()

    def claim_run(self, run_id: int, *, started_at: datetime, log_url: str, **record: Any) -> bool:
        """``CREATED -> STARTED`` with ``started_at`` and ``log_url`` in one conditional UPDATE, and our row
        (``record``'s columns: submission id, the supervision lease, ...) in the same transaction, so no claimed
        run is ever without its row.

        Returns False when another worker claimed it first, or it was stopped or finished meanwhile.
        """
        with self.session() as session:
            result = session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == Status.CREATED.value)
                .values(status=Status.STARTED.value, started_at=started_at, log_url=log_url[:512])
            )
            if result.rowcount != 1:
                return False
            if record:
                if "supervisor" in record:
                    record["supervised_at"] = utcnow()
                session.execute(_upsert_record(run_id, {"error_code": None, "reason": None, **record}))
            return True

    def finish_run(self, run_id: int, status: Status, *, error_code: str | None = None, reason: str | None = None,
                   from_statuses: tuple[str, ...] = ACTIVE_STATUSES) -> bool:
        """Write a terminal status and ``ended_at`` and, in the same transaction, the reason (none for FINISHED)
        and the end of the lease; only if the run is still in one of ``from_statuses``. A supervisor that lost a
        race writes nothing: no reason of its own on a run another one ended."""
        with self.session() as session:
            result = session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status.in_(from_statuses))
                .values(status=status.value, ended_at=utcnow())
            )
            if result.rowcount != 1:
                return False
            fields: dict[str, Any] = {"supervisor": None}
            if status is not Status.FINISHED:
                fields.update(error_code=error_code, reason=reason)
            session.execute(_upsert_record(run_id, fields))
            return True

    def end_run(self, run_id: int, status: Status, *, from_statuses: tuple[str, ...] = ACTIVE_STATUSES) -> bool:
        """Write a terminal status and ``ended_at``, only if the run is still in one of ``from_statuses``."""
        with self.session() as session:
            result = session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status.in_(from_statuses))
                .values(status=status.value, ended_at=utcnow())
            )
            return result.rowcount == 1

    # --- the supervision lease ----------------------------------------------------------------------------------
    def take_over(self, run_id: int, *, supervisor: str, stale_seconds: float) -> bool:
        """Become the run's supervisor if nobody is (a released lease) or its supervisor has not renewed the lease
        for ``stale_seconds``: one conditional UPDATE, so of several workers exactly one wins."""
        cutoff = utcnow() - timedelta(seconds=stale_seconds)
        with self.session() as session:
            result = session.execute(
                update(RayRun)
                .where(RayRun.run_id == run_id,
                       (RayRun.supervisor.is_(None)) | (_last_mark(RayRun) < cutoff))
                .values(supervisor=supervisor, supervised_at=utcnow())
            )
            return result.rowcount == 1

    def renew_lease(self, run_id: int, *, supervisor: str, **fields: Any) -> bool:
        """The supervisor's heartbeat (with any other columns to write); False once the lease is someone else's."""
        with self.session() as session:
            result = session.execute(
                update(RayRun)
                .where(RayRun.run_id == run_id, RayRun.supervisor == supervisor)
                .values(supervised_at=utcnow(), updated_at=utcnow(), **fields)
            )
            return result.rowcount == 1

    def start_attempt(self, run_id: int, *, supervisor: str, log_url: str, **fields: Any) -> bool:
        """Point the run at its next attempt: our row's columns (the new submission id, attempt, a cleared outcome)
        and SyncMaster's ``log_url``, in one transaction, only while ``supervisor`` holds the lease and the run is
        STARTED (a stop asked for meanwhile wins)."""
        with self.session() as session:
            result = session.execute(
                update(RayRun)
                .where(RayRun.run_id == run_id, RayRun.supervisor == supervisor,
                       select(Run.id).where(Run.id == run_id, Run.status == Status.STARTED.value).exists())
                .values(supervised_at=utcnow(), updated_at=utcnow(), **fields)
            )
            if result.rowcount != 1:
                return False
            session.execute(update(Run).where(Run.id == run_id).values(log_url=log_url[:512]))
            return True

    def release_lease(self, run_id: int, *, supervisor: str) -> bool:
        """Give the run up (a worker shutting down): any worker may take it over at once."""
        with self.session() as session:
            result = session.execute(
                update(RayRun).where(RayRun.run_id == run_id, RayRun.supervisor == supervisor)
                .values(supervisor=None)
            )
            return result.rowcount == 1

    def mark_for_reconcile(self, run_id: int, *, stale_seconds: float) -> bool:
        """Take a stale run for settling: release its lease and mark it, in one conditional UPDATE, so that of
        several reconcilers exactly one handles it in a pass (a run claimed without our row gets one first)."""
        cutoff = utcnow() - timedelta(seconds=stale_seconds)
        started = select(func.coalesce(Run.started_at, Run.created_at)).where(Run.id == run_id).scalar_subquery()
        with self.session() as session:
            session.execute(insert(RayRun).values(run_id=run_id, supervised_at=started).on_conflict_do_nothing(
                index_elements=[RayRun.run_id]))
            result = session.execute(
                update(RayRun)
                .where(RayRun.run_id == run_id, _last_mark(RayRun) < cutoff)
                .values(supervisor=None, supervised_at=utcnow())
            )
            return result.rowcount == 1

    def request_stop(self, run_id: int) -> Status:
        """Set ``SEND_STOP_SIGNAL`` as the server's ``POST /v1/runs/{id}/stop`` does (CREATED or STARTED only)."""
        with self.session() as session:
            current = session.scalar(select(Run.status).where(Run.id == run_id).with_for_update())
            if current is None:
                raise RunStateError(f"run {run_id} does not exist")
            if current not in (Status.CREATED.value, Status.STARTED.value):
                raise RunStateError(f"cannot stop run {run_id}: its status is {current}")
            session.execute(update(Run).where(Run.id == run_id).values(status=Status.SEND_STOP_SIGNAL.value))
            return Status.SEND_STOP_SIGNAL

    def create_run(self, transfer_id: int, run_type: RunType = RunType.MANUAL) -> Run:
        """Insert a ``CREATED`` run the way the server does, with a secret-free ``transfer_dump``."""
        with self.session() as session:
            transfer = session.get(
                Transfer,
                transfer_id,
                options=[selectinload(Transfer.source_connection), selectinload(Transfer.target_connection)],
            )
            if transfer is None:
                raise RunStateError(f"transfer {transfer_id} does not exist")
            run = Run(transfer_id=transfer_id, type=run_type.value, transfer_dump=_transfer_dump(transfer))
            session.add(run)
            session.flush()
            session.refresh(run)
            return run

    # --- our table ---------------------------------------------------------------------------------------------
    def record(self, run_id: int, **fields: Any) -> None:
        """Upsert our row for the run with the given columns."""
        with self.session() as session:
            session.execute(_upsert_record(run_id, fields))

    def record_while_active(self, run_id: int, **fields: Any) -> bool:
        """Write the given columns of our row only while the run is STARTED or SEND_STOP_SIGNAL (a job's own
        outcome: once the run has ended, its reason is settled). Returns whether it wrote."""
        active = select(Run.id).where(Run.id == run_id, Run.status.in_(ACTIVE_STATUSES)).exists()
        with self.session() as session:
            result = session.execute(
                update(RayRun).where(RayRun.run_id == run_id, active).values(**fields, updated_at=utcnow())
            )
            return result.rowcount == 1

    def get_record(self, run_id: int) -> RayRun | None:
        with self.session() as session:
            return session.get(RayRun, run_id)

    def stale_active_runs(self, stale_seconds: float, slugs: list[str] | None = None
                          ) -> list[tuple[int, str | None, str]]:
        """(run id, submission id, queue slug) of STARTED / SEND_STOP_SIGNAL runs whose supervision lease has not
        been renewed for ``stale_seconds`` (a run without our row counts from its ``started_at``); only runs of
        the queues ``slugs`` when given."""
        cutoff = utcnow() - timedelta(seconds=stale_seconds)
        last_mark = func.coalesce(_last_mark(RayRun), Run.started_at, Run.created_at)
        query = (
            select(Run.id, RayRun.submission_id, Queue.slug)
            .join(Transfer, Transfer.id == Run.transfer_id)
            .join(Queue, Queue.id == Transfer.queue_id)
            .outerjoin(RayRun, RayRun.run_id == Run.id)
            .where(Run.status.in_(ACTIVE_STATUSES), last_mark < cutoff)
            .order_by(Run.id)
        )
        if slugs is not None:
            query = query.where(Queue.slug.in_(slugs))
        with self.session() as session:
            return [tuple(row) for row in session.execute(query)]

    # --- the capacity queue (job/capacity_queue.py) -------------------------------------------------------------
    def join_capacity_queue(self, run_id: int, cluster: str, asked: dict[str, float]) -> None:
        """Put the run in ``cluster``'s queue for capacity, asking for ``asked`` (CPU, memory)."""
        self.record(run_id, phase=Phase.WAITING_FOR_CAPACITY.value, capacity_cluster=cluster[:256],
                    capacity_asked=asked, capacity_heartbeat_at=utcnow())

    def renew_capacity_queue(self, run_id: int) -> None:
        """The waiting job's heartbeat: an entry not renewed for a while is a job gone, and no longer counts."""
        with self.session() as session:
            session.execute(update(RayRun).where(RayRun.run_id == run_id).values(capacity_heartbeat_at=utcnow()))

    def capacity_queue(self, stale_seconds: float, cluster: str | None = None) -> list[QueuedRun]:
        """Active runs waiting for capacity (of ``cluster`` when given) whose job renewed its entry within
        ``stale_seconds``, in no particular order."""
        cutoff = utcnow() - timedelta(seconds=stale_seconds)
        query = (
            select(Run.id, Queue.slug, func.coalesce(Run.started_at, Run.created_at), RayRun.capacity_asked,
                   RayRun.capacity_cluster)
            .join(RayRun, RayRun.run_id == Run.id)
            .join(Transfer, Transfer.id == Run.transfer_id)
            .join(Queue, Queue.id == Transfer.queue_id)
            .where(Run.status.in_(ACTIVE_STATUSES), RayRun.phase == Phase.WAITING_FOR_CAPACITY.value,
                   RayRun.capacity_heartbeat_at >= cutoff)
        )
        if cluster is not None:
            query = query.where(RayRun.capacity_cluster == cluster[:256])
        with self.session() as session:
            return [QueuedRun(run_id, slug, claimed_at, asked or {}, cluster or "")
                    for run_id, slug, claimed_at, asked, cluster in session.execute(query)]

    # --- for `syncmaster-ray status` -----------------------------------------------------------------------------
    def active_runs(self) -> list[RunLine]:
        """Runs a worker has taken and not ended (STARTED, SEND_STOP_SIGNAL), oldest first."""
        query = self._run_lines().where(Run.status.in_(ACTIVE_STATUSES)).order_by(Run.started_at)
        return self._lines(query)

    def recent_failures(self, limit: int) -> list[RunLine]:
        query = self._run_lines().where(Run.status == Status.FAILED.value).order_by(Run.ended_at.desc()).limit(limit)
        return self._lines(query)

    @staticmethod
    def _run_lines() -> Any:
        return (
            select(Run.id, Transfer.name, Run.status, RayRun.phase, Run.started_at, Run.ended_at, Run.log_url,
                   RayRun.error_code, RayRun.reason, RayRun.progress)
            .join(Transfer, Transfer.id == Run.transfer_id)
            .outerjoin(RayRun, RayRun.run_id == Run.id)
        )

    def _lines(self, query: Any) -> list[RunLine]:
        with self.session() as session:
            return [RunLine(*row) for row in session.execute(query)]

    # --- for the metrics recorder (job/metrics.py) ----------------------------------------------------------------
    def runs_ended_since(self, since: datetime) -> list[EndedRun]:
        """Our runs (those with a record of ours) that ended at or after ``since``, oldest first."""
        query = (
            select(Run.id, Queue.slug, Run.status, Run.started_at, Run.ended_at, RayRun.metrics, RayRun.rows_written)
            .join(RayRun, RayRun.run_id == Run.id)
            .join(Transfer, Transfer.id == Run.transfer_id)
            .join(Queue, Queue.id == Transfer.queue_id)
            .where(Run.ended_at >= since, Run.status.not_in((*ACTIVE_STATUSES, Status.CREATED.value)))
            .order_by(Run.ended_at)
        )
        with self.session() as session:
            return [EndedRun(*row) for row in session.execute(query)]

    def active_run_phases(self) -> list[tuple[str, str | None]]:
        """(queue slug, phase) of every run a worker has taken and not ended."""
        query = (
            select(Queue.slug, RayRun.phase)
            .select_from(Run)
            .join(Transfer, Transfer.id == Run.transfer_id)
            .join(Queue, Queue.id == Transfer.queue_id)
            .outerjoin(RayRun, RayRun.run_id == Run.id)
            .where(Run.status.in_(ACTIVE_STATUSES))
        )
        with self.session() as session:
            return [tuple(row) for row in session.execute(query)]

    # --- the job's view ------------------------------------------------------------------------------------------
    def load_run_spec(self, run_id: int, secret_key: str) -> RunSpec:
        """Read the live transfer and decrypt both connections' credentials (inside the Ray job only)."""
        run = self.get_run(run_id)
        if run is None:
            raise RunStateError(f"run {run_id} does not exist")
        transfer = run.transfer
        with self.session() as session:
            auth_rows = {
                row.connection_id: row.value
                for row in session.scalars(
                    select(AuthData).where(
                        AuthData.connection_id.in_([transfer.source_connection_id, transfer.target_connection_id])
                    )
                )
            }
        return RunSpec(
            run_id=run.id,
            run_created_at=run.created_at,
            transfer_id=transfer.id,
            transfer_name=transfer.name,
            group_name=transfer.group.name,
            source=_connection_spec(transfer.source_connection, auth_rows, secret_key),
            target=_connection_spec(transfer.target_connection, auth_rows, secret_key),
            source_params=_json_object(transfer.source_params, "source_params"),
            target_params=_json_object(transfer.target_params, "target_params"),
            strategy=parse_model(Strategy, transfer.strategy_params or {"type": "full"}, "strategy_params"),
            transformations=tuple(_json_list(transfer.transformations, "transformations")),
            resources=parse_model(Resources, transfer.resources or {}, "resources"),
        )


class CatalogRepository:
    """Groups, queues, connections and transfers for standalone use (what the server's REST API would create)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ensure_group(self, name: str) -> Group:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            group = session.scalar(select(Group).where(Group.name == name))
            if group is None:
                user = session.scalar(select(User).where(User.username == STANDALONE_USER))
                if user is None:
                    user = User(username=STANDALONE_USER, is_superuser=True, is_active=True)
                    session.add(user)
                    session.flush()
                group = Group(name=name, description="", owner_id=user.id)
                session.add(group)
            return group

    def ensure_queue(self, group_name: str, name: str) -> Queue:
        group = self.ensure_group(group_name)
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            queue = session.scalar(select(Queue).where(Queue.group_id == group.id, Queue.name == name))
            if queue is None:
                queue = Queue(name=name, group_id=group.id, description="", slug=queue_slug(group.id, name))
                session.add(queue)
            return queue

    def create_connection(
        self, *, group_name: str, name: str, type_: str, data: dict[str, Any], auth: dict[str, Any], secret_key: str
    ) -> Connection:
        group = self.ensure_group(group_name)
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            connection = Connection(group_id=group.id, name=name, description="", type=type_, data=data)
            session.add(connection)
            session.flush()
            session.add(AuthData(connection_id=connection.id, value=encrypt_auth_data(auth, secret_key)))
            return connection

    def create_transfer(self, **fields: Any) -> Transfer:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            transfer = Transfer(**fields)
            session.add(transfer)
            return transfer

    def find_connection(self, group_name: str, name: str) -> Connection | None:
        with Session(self.engine) as session:
            return session.scalar(
                select(Connection).join(Group, Group.id == Connection.group_id).where(
                    Group.name == group_name, Connection.name == name
                )
            )

    def find_transfer(self, name_or_id: str) -> Transfer | None:
        with Session(self.engine) as session:
            if name_or_id.isdigit():
                return session.get(Transfer, int(name_or_id))
            return session.scalar(select(Transfer).where(Transfer.name == name_or_id))

    def queue_of(self, transfer_id: int) -> Queue:
        with Session(self.engine) as session:
            return session.scalar(select(Queue).join(Transfer, Transfer.queue_id == Queue.id).where(
                Transfer.id == transfer_id
            ))


def _upsert_record(run_id: int, fields: dict[str, Any]) -> Any:
    """INSERT our row for the run, or UPDATE the given columns of it (and ``updated_at``)."""
    statement = insert(RayRun).values(run_id=run_id, **fields)
    return statement.on_conflict_do_update(index_elements=[RayRun.run_id], set_={**fields, "updated_at": utcnow()})


def _last_mark(record: Any) -> Any:
    """When a run's supervisor last said it was alive (rows written by an older worker have only ``updated_at``)."""
    return func.coalesce(record.supervised_at, record.updated_at)


def _connection_spec(connection: Connection, auth_rows: dict[int, str], secret_key: str) -> ConnectionSpec:
    if connection.id not in auth_rows:
        raise CredentialsError(f"connection {connection.id} ({connection.name!r}) has no auth_data row")
    auth = decrypt_auth_data(auth_rows[connection.id], secret_key, connection_id=connection.id)
    return ConnectionSpec(
        id=connection.id,
        type=connection.type,
        name=connection.name,
        data=_json_object(connection.data, f"connection {connection.id} data"),
        auth=auth,
    )


def _json_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParamsError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _json_list(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidParamsError(f"{what} must be a JSON list of objects")
    return value


def _transfer_dump(transfer: Transfer) -> dict[str, Any]:
    """``run.transfer_dump`` as the server writes it: transfer fields and connections, no secrets."""

    def connection(c: Connection) -> dict[str, Any]:
        return {"id": c.id, "group_id": c.group_id, "name": c.name, "description": c.description, "data": c.data,
                "auth_data": None}

    return {
        "id": transfer.id,
        "name": transfer.name,
        "group_id": transfer.group_id,
        "queue_id": transfer.queue_id,
        "source_connection_id": transfer.source_connection_id,
        "target_connection_id": transfer.target_connection_id,
        "is_scheduled": transfer.is_scheduled,
        "description": transfer.description,
        "schedule": transfer.schedule,
        "source_params": transfer.source_params,
        "target_params": transfer.target_params,
        "strategy_params": transfer.strategy_params,
        "source_connection": connection(transfer.source_connection),
        "target_connection": connection(transfer.target_connection),
    }
