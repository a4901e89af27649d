"""The one shape that crosses from the database to the Ray job: a frozen, validated description of a run.

Secrets stay inside ``pydantic.Secret`` so a spec can be logged or shown without leaking them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Secret, ValidationError, field_validator

from syncmaster_ray.errors import InvalidParamsError

MiB = 1024 * 1024
GiB = 1024 * MiB
TABLE_NAME_PATTERN = re.compile(r"^[\w\d]+\.[\w\d]+$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Resources(_Frozen):
    """``transfer.resources``: executors, cores and memory per executor (SyncMaster's bounds)."""

    max_parallel_tasks: int = Field(default=1, ge=1, le=100)
    cpu_cores_per_task: int = Field(default=1, ge=1, le=32)
    ram_bytes_per_task: int = Field(default=GiB, ge=512 * MiB, le=64 * GiB)

    @property
    def executor_memory_mb(self) -> int:
        return -(-self.ram_bytes_per_task // MiB)


class Strategy(_Frozen):
    type: Literal["full", "incremental"] = "full"
    increment_by: str | None = None


class ConnectionSpec(_Frozen):
    id: int
    type: str
    name: str
    data: dict[str, Any]
    auth: Secret[dict[str, Any]]

    def merged(self) -> dict[str, Any]:
        """SyncMaster's connection DTO: ``data | auth`` (auth wins) without the ``type`` key."""
        merged = {**self.data, **self.auth.get_secret_value()}
        merged.pop("type", None)
        return merged

    def secret_values(self) -> tuple[str, ...]:
        """The connection's credentials but its user name, for redacting what a run prints."""
        auth = self.auth.get_secret_value()
        return tuple(value for key, value in auth.items() if key not in ("user", "type") and isinstance(value, str))


class TransformSpec(_Frozen):
    model_config = ConfigDict(frozen=True, extra="allow")
    type: str


class RunSpec(_Frozen):
    run_id: int
    run_created_at: datetime
    transfer_id: int
    transfer_name: str
    group_name: str
    source: ConnectionSpec
    target: ConnectionSpec
    source_params: dict[str, Any]
    target_params: dict[str, Any]
    strategy: Strategy
    transformations: tuple[dict[str, Any], ...] = ()
    resources: Resources = Field(default_factory=Resources)

    @field_validator("source_params", "target_params")
    @classmethod
    def _has_type(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("type"), str):
            raise ValueError("must be a JSON object with a string 'type'")
        return value

    @property
    def app_name(self) -> str:
        return f"SyncMaster__{self.group_name}_{self.transfer_name}"

    def secret_values(self) -> tuple[str, ...]:
        """The credentials of both connections."""
        return self.source.secret_values() + self.target.secret_values()


def parse_model(model: type[BaseModel], value: Any, what: str) -> Any:
    """Validate ``value`` as ``model``; on failure raise InvalidParamsError naming ``what`` and each bad field."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidParamsError(f"invalid {what}: {problems}") from None


def table_name_of(params: dict[str, Any], what: str) -> str:
    """``schema.table`` from DB params, with SyncMaster's pattern."""
    name = params.get("table_name")
    if not isinstance(name, str) or not TABLE_NAME_PATTERN.match(name):
        raise InvalidParamsError(f"{what}.table_name must look like 'schema.table', got {name!r}")
    return name


def hwm_name(spec: RunSpec) -> str:
    """SyncMaster's HWM name: ``{transfer_id}_{source type}_{table name or directory path}``."""
    params = spec.source_params
    return f"{spec.transfer_id}_{params['type']}_{params.get('table_name') or params.get('directory_path')}"
