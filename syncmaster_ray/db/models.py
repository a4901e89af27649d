"""SyncMaster 0.3.7's tables as the worker sees them, plus our own table keyed by run id.

The SyncMaster models mirror ``syncmaster.db.models`` of data-syncmaster 0.3.7 column for column (names, types,
nullability, defaults, naming convention, computed search vectors), so ``db upgrade`` on an empty database builds
what SyncMaster's migrations would, and so the worker reads and writes the real server's rows byte-compatibly.
We never alter these tables: everything of ours lives in ``syncmaster_ray_run``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "all_column_names": lambda constraint, table: "_".join(column.name for column in constraint.columns.values()),
    "ix": "ix__%(table_name)s__%(all_column_names)s",
    "uq": "uq__%(table_name)s__%(all_column_names)s",
    "ck": "ck__%(table_name)s__%(constraint_name)s",
    "fk": "fk__%(table_name)s__%(all_column_names)s__%(referred_table_name)s",
    "pk": "pk__%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)  # type: ignore[arg-type]


class Status(enum.StrEnum):
    """``run.status`` values, stored as plain strings exactly as SyncMaster stores them."""

    CREATED = "CREATED"
    STARTED = "STARTED"
    FAILED = "FAILED"
    SEND_STOP_SIGNAL = "SEND_STOP_SIGNAL"
    STOPPED = "STOPPED"
    FINISHED = "FINISHED"

    def is_terminal(self) -> bool:
        return self in (Status.FAILED, Status.STOPPED, Status.FINISHED)


class RunType(enum.StrEnum):
    MANUAL = "MANUAL"
    SCHEDULED = "SCHEDULED"


def _search_vector(*json_fields: str, host: bool = False) -> Computed:
    """SyncMaster 0012's stored tsvector: name (russian + simple + split) and optional JSON fields."""
    parts = [
        "to_tsvector('russian', coalesce(name, ''))",
        "|| to_tsvector('simple', coalesce(name, ''))",
        "|| to_tsvector('simple', translate(coalesce(name, ''), './-_:\\', '      '))",
    ]
    fields = (["data->>'host'"] if host else []) + list(json_fields)
    parts += [f"|| to_tsvector('simple', coalesce({f}, ''))" for f in fields if "directory_path" not in f]
    parts += [
        f"|| to_tsvector('simple', translate(coalesce({f}, ''), './-_:\\', '      '))"
        for f in fields
        if "directory_path" not in f
    ]
    parts += [f"|| to_tsvector('simple', coalesce({f}, ''))" for f in fields if "directory_path" in f]
    parts += [
        f"|| to_tsvector('simple', translate(coalesce({f}, ''), './-_:\\', '      '))"
        for f in fields
        if "directory_path" in f
    ]
    return Computed("\n".join(parts), persisted=True)


def _search_vector_column(*json_fields: str, host: bool = False) -> Mapped[str]:
    return mapped_column(TSVECTOR, _search_vector(*json_fields, host=host), nullable=False, deferred=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=partial(datetime.now, tz=UTC), nullable=False
    )


class ResourceMixin:
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    group_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("group.id", ondelete="CASCADE"), nullable=False, index=True
    )
    description: Mapped[str] = mapped_column(String(512), nullable=False, default="")


class User(Base, TimestampMixin):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(256), nullable=False, unique=True, index=True)
    email: Mapped[str | None] = mapped_column(String(256), nullable=True)
    first_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    last_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    middle_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class Group(Base, TimestampMixin):
    __tablename__ = "group"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    description: Mapped[str] = mapped_column(String(512), nullable=False, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)
    search_vector: Mapped[str] = _search_vector_column()


class UserGroup(Base):
    __tablename__ = "user_group"
    __table_args__ = (PrimaryKeyConstraint("user_id", "group_id"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    group_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("group.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role: Mapped[str] = mapped_column(String(255), nullable=False)


class Queue(Base, ResourceMixin, TimestampMixin):
    __tablename__ = "queue"

    slug: Mapped[str] = mapped_column(String(256), nullable=False, unique=True)
    search_vector: Mapped[str] = _search_vector_column()


class Connection(Base, ResourceMixin, TimestampMixin):
    __tablename__ = "connection"
    __table_args__ = (
        UniqueConstraint("name", "group_id"),
        Index("idx_connection_search_vector", "search_vector", postgresql_using="gin"),
    )

    type: Mapped[str] = mapped_column(String(32), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    search_vector: Mapped[str] = _search_vector_column(host=True)


class AuthData(Base, TimestampMixin):
    __tablename__ = "auth_data"

    connection_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[str] = mapped_column(nullable=False)


class Transfer(Base, ResourceMixin, TimestampMixin):
    __tablename__ = "transfer"
    __table_args__ = (
        UniqueConstraint("name", "group_id"),
        Index("idx_transfer_search_vector", "search_vector", postgresql_using="gin"),
    )

    source_connection_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("connection.id", ondelete="CASCADE"), nullable=False, index=True
    )
    target_connection_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("connection.id", ondelete="CASCADE"), nullable=False, index=True
    )
    strategy_params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    source_params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    target_params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    transformations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    resources: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    is_scheduled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    schedule: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    queue_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("queue.id", ondelete="CASCADE"), nullable=False)

    group: Mapped[Group] = relationship(viewonly=True)
    queue: Mapped[Queue] = relationship(viewonly=True)
    source_connection: Mapped[Connection] = relationship(foreign_keys=source_connection_id, viewonly=True)
    target_connection: Mapped[Connection] = relationship(foreign_keys=target_connection_id, viewonly=True)
    search_vector: Mapped[str] = _search_vector_column(
        "source_params->>'table_name'",
        "target_params->>'table_name'",
        "source_params->>'directory_path'",
        "target_params->>'directory_path'",
    )


class Run(Base, TimestampMixin):
    __tablename__ = "run"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    transfer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("transfer.id", ondelete="CASCADE"), nullable=False, index=True
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, default=None)
    status: Mapped[str] = mapped_column(String(255), nullable=False, default=Status.CREATED.value, index=True)
    type: Mapped[str] = mapped_column(String(64), nullable=False, default=RunType.MANUAL.value, index=True)
    log_url: Mapped[str | None] = mapped_column(String(512), nullable=True)
    transfer_dump: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)

    transfer: Mapped[Transfer] = relationship(viewonly=True)


SYNCMASTER_TABLES = ("user", "group", "user_group", "queue", "connection", "auth_data", "transfer", "run")


class RayRun(Base):
    """Our record of a run: the Ray job behind it, its outcome and what must outlive the Ray head."""

    __tablename__ = "syncmaster_ray_run"
    # Every job waiting for capacity reads its cluster's queue every second (job/capacity_queue.py): only the few
    # waiting rows are indexed.
    __table_args__ = (
        Index("ix_syncmaster_ray_run_capacity_queue", "capacity_cluster",
              postgresql_where=text("phase = 'waiting_for_capacity'")),
    )

    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    submission_id: Mapped[str | None] = mapped_column(String(256), nullable=True, unique=True)
    ray_job_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The last lines of each Spark executor's log (``executor_logs``), written by the Ray job at the run's end.
    executor_log_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    # The copy's last progress sample (job/progress.py): rows so far, rate, percent and ETA where known.
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    rows_written: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Set by the Ray job: "waiting_for_capacity", then "transferring"; "ended" once it recorded its outcome.
    phase: Mapped[str | None] = mapped_column(String(32), nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Attempts (attempts.py): the current one (NULL: the first), the failed ones before it, and whether a failed
    # attempt's write may be repeated (an atomic replace: set by the job once it has its handlers; NULL: it never
    # got that far).
    attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    repeatable: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # While waiting for capacity (job/capacity_queue.py): the cluster (its GCS address), what the run asks for and
    # the job's last heartbeat.
    capacity_cluster: Mapped[str | None] = mapped_column(String(256), nullable=True)
    capacity_asked: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    capacity_heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The supervision lease: the worker watching the run and when it last said so (its heartbeat). Another worker
    # takes the run over only once the lease is stale or released (NULL supervisor).
    supervisor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    supervised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Set just before the Ray job is submitted: a job the head does not know is then lost, never to be resubmitted.
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=partial(datetime.now, tz=UTC), nullable=False
    )


class HWMRecord(Base):
    """High-water marks of incremental transfers (our default HWM store; Horizon is used when configured)."""

    __tablename__ = "syncmaster_ray_hwm"

    name: Mapped[str] = mapped_column(String(1024), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=partial(datetime.now, tz=UTC), nullable=False
    )
