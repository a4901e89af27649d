"""``syncmaster_ray.spec``: SyncMaster's resource bounds, connection DTO merge, secret hiding, table names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from syncmaster_ray.errors import InvalidParamsError
from syncmaster_ray.spec import (
    ConnectionSpec,
    GiB,
    MiB,
    Resources,
    RunSpec,
    Strategy,
    parse_model,
    table_name_of,
)

PASSWORD = "Sup3r-S3cret-pw"


def connection(**overrides) -> ConnectionSpec:
    values = {
        "id": 11,
        "type": "postgres",
        "name": "pg_src",
        "data": {"type": "postgres", "host": "db", "port": 5432, "database_name": "src", "user": "from_data"},
        "auth": {"type": "postgres", "user": "etl", "password": PASSWORD},
    }
    return ConnectionSpec(**{**values, **overrides})


# --- Resources -----------------------------------------------------------------------------------------------------


def test_resources_defaults():
    resources = parse_model(Resources, {}, "resources")
    assert resources == Resources(max_parallel_tasks=1, cpu_cores_per_task=1, ram_bytes_per_task=GiB)


@pytest.mark.parametrize(
    "value",
    [
        {"max_parallel_tasks": 1, "cpu_cores_per_task": 1, "ram_bytes_per_task": 512 * MiB},
        {"max_parallel_tasks": 100, "cpu_cores_per_task": 32, "ram_bytes_per_task": 64 * GiB},
        {"max_parallel_tasks": 7, "cpu_cores_per_task": 3, "ram_bytes_per_task": 3 * GiB + 1},
    ],
)
def test_resources_within_bounds(value):
    resources = parse_model(Resources, value, "resources")
    assert resources.model_dump() == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_parallel_tasks", 0),
        ("max_parallel_tasks", 101),
        ("cpu_cores_per_task", 0),
        ("cpu_cores_per_task", 33),
        ("ram_bytes_per_task", 512 * MiB - 1),
        ("ram_bytes_per_task", 64 * GiB + 1),
        ("max_parallel_tasks", "many"),
        ("cpu_cores_per_task", 1.5),
    ],
)
def test_resources_out_of_bounds_name_the_field(field, value):
    with pytest.raises(InvalidParamsError) as info:
        parse_model(Resources, {field: value}, "resources of transfer 3")
    assert info.value.code == "invalid_params"
    assert info.value.reason.startswith("invalid resources of transfer 3: ")
    assert f"{field}: " in info.value.reason
    assert info.value.__suppress_context__


def test_every_bad_field_is_reported():
    with pytest.raises(InvalidParamsError) as info:
        parse_model(Resources, {"max_parallel_tasks": 0, "ram_bytes_per_task": 1}, "resources")
    reason = info.value.reason
    assert "max_parallel_tasks: " in reason
    assert "ram_bytes_per_task: " in reason
    assert "cpu_cores_per_task" not in reason
    assert reason.count("; ") == 1


def test_parse_model_non_object_names_root():
    with pytest.raises(InvalidParamsError, match=r"invalid resources: <root>: "):
        parse_model(Resources, [1, 2], "resources")


def test_resources_are_frozen_and_ignore_extras():
    resources = parse_model(Resources, {"max_parallel_tasks": 2, "gpu": 1}, "resources")
    assert not hasattr(resources, "gpu")
    with pytest.raises(ValidationError, match="frozen"):
        resources.max_parallel_tasks = 3


@pytest.mark.parametrize(
    ("ram", "mb"),
    [(512 * MiB, 512), (512 * MiB + 1, 513), (GiB, 1024), (GiB + MiB - 1, 1025), (64 * GiB, 65536)],
)
def test_executor_memory_mb_rounds_up(ram, mb):
    assert Resources(ram_bytes_per_task=ram).executor_memory_mb == mb


def test_strategy():
    assert parse_model(Strategy, {"type": "full"}, "strategy_params") == Strategy()
    incremental = parse_model(Strategy, {"type": "incremental", "increment_by": "id"}, "strategy_params")
    assert incremental.increment_by == "id"
    with pytest.raises(InvalidParamsError, match="invalid strategy_params: type: "):
        parse_model(Strategy, {"type": "sometimes"}, "strategy_params")


# --- ConnectionSpec ------------------------------------------------------------------------------------------------


def test_merged_is_data_or_auth_with_auth_winning_and_no_type():
    merged = connection().merged()
    assert merged == {"host": "db", "port": 5432, "database_name": "src", "user": "etl", "password": PASSWORD}
    assert "type" not in merged


def test_merged_does_not_mutate_the_spec():
    spec = connection()
    spec.merged()["host"] = "changed"
    spec.merged().pop("password")
    assert spec.data["host"] == "db"
    assert spec.auth.get_secret_value()["password"] == PASSWORD
    assert spec.data["type"] == "postgres"


def test_merged_without_type_key_anywhere():
    merged = connection(data={"host": "h"}, auth={"user": "u", "password": "p"}).merged()
    assert merged == {"host": "h", "user": "u", "password": "p"}


def test_connection_spec_repr_and_dump_hide_the_password():
    spec = connection()
    for text in (repr(spec), str(spec), spec.model_dump_json(), str(spec.model_dump())):
        assert PASSWORD not in text
    assert spec.auth.get_secret_value()["password"] == PASSWORD


def test_run_spec_repr_hides_both_passwords():
    spec = RunSpec(
        run_id=1,
        run_created_at=datetime(2024, 1, 1, tzinfo=UTC),
        transfer_id=2,
        transfer_name="orders",
        group_name="team",
        source=connection(),
        target=connection(id=12, name="pg_tgt", auth={"user": "w", "password": "Other-S3cret"}),
        source_params={"type": "postgres", "table_name": "public.a"},
        target_params={"type": "postgres", "table_name": "public.b"},
        strategy=Strategy(),
    )
    assert PASSWORD not in repr(spec)
    assert "Other-S3cret" not in repr(spec)
    assert spec.app_name == "SyncMaster__team_orders"
    assert spec.resources == Resources()


@pytest.mark.parametrize("params", [{}, {"type": 5}, {"table_name": "a.b"}])
def test_run_spec_params_need_a_string_type(params):
    with pytest.raises(InvalidParamsError, match="source_params: Value error, must be a JSON object"):
        parse_model(
            RunSpec,
            {
                "run_id": 1, "run_created_at": "2024-01-01T00:00:00Z", "transfer_id": 2, "transfer_name": "t",
                "group_name": "g", "source": connection().model_dump() | {"auth": {"password": "x"}},
                "target": connection().model_dump() | {"auth": {"password": "x"}},
                "source_params": params, "target_params": {"type": "postgres"}, "strategy": {},
            },
            "run 1",
        )


# --- table names ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["public.users", "schema_1.table_2", "S.T", "данные.таблица", "123.456"])
def test_table_name_of_accepts_schema_table(name):
    assert table_name_of({"table_name": name}, "source_params") == name


@pytest.mark.parametrize(
    "name",
    ["users", "a.b.c", "public.", ".users", "public.us-ers", "public. users", "public.users;drop", "", None, 5,
     'public."users"'],
)
def test_table_name_of_rejects_other_shapes(name):
    with pytest.raises(InvalidParamsError) as info:
        table_name_of({"table_name": name}, "target_params")
    assert info.value.reason == f"target_params.table_name must look like 'schema.table', got {name!r}"


def test_table_name_of_missing_key():
    with pytest.raises(InvalidParamsError, match="got None"):
        table_name_of({}, "source_params")

