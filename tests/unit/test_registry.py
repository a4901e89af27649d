"""``syncmaster_ray.handlers.registry`` and handler construction (params validated without Spark)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from syncmaster_ray.errors import InvalidParamsError, UnsupportedConnectionTypeError
from syncmaster_ray.handlers.base import DBHandler, Handler
from syncmaster_ray.handlers.files.handler import FileHandler
from syncmaster_ray.handlers.postgres import DIALECT as POSTGRES
from syncmaster_ray.handlers.postgres import PostgresConnection, PostgresHandler
from syncmaster_ray.handlers.registry import KNOWN_TYPES, handler_class_for, handler_classes, jdbc_handler_classes
from syncmaster_ray.settings import SparkSettings
from syncmaster_ray.spec import ConnectionSpec, Resources, RunSpec, Strategy
from tests.unit import handler_cases
from tests.unit.handler_cases import CASES, case_spec

PASSWORD = "Pg-Pa55w0rd-never-shown"
SYNCMASTER_0_3_7_TYPES = {
    "clickhouse", "hive", "iceberg", "mssql", "mysql", "oracle", "postgres",
    "ftp", "ftps", "hdfs", "s3", "samba", "sftp", "webdav",
}
DB_TYPES = {"clickhouse", "hive", "iceberg", "mssql", "mysql", "oracle", "postgres"}
FILE_TYPES = SYNCMASTER_0_3_7_TYPES - DB_TYPES


def pg_connection(*, conn_id: int = 1, name: str = "pg_src", **data_overrides) -> ConnectionSpec:
    data = {"type": "postgres", "host": "db.example", "port": 5432, "database_name": "src", "additional_params": {}}
    data.update(data_overrides)
    data = {k: v for k, v in data.items() if v is not None}
    return ConnectionSpec(
        id=conn_id, type="postgres", name=name, data=data,
        auth={"type": "postgres", "user": "etl", "password": PASSWORD},
    )


def run_spec(*, source: ConnectionSpec | None = None, source_params: dict | None = None,
             transformations: tuple = (), resources: Resources | None = None) -> RunSpec:
    return RunSpec(
        run_id=42,
        run_created_at=datetime(2024, 5, 1, tzinfo=UTC),
        transfer_id=7,
        transfer_name="orders",
        group_name="team",
        source=source or pg_connection(),
        target=pg_connection(conn_id=2, name="pg_tgt"),
        source_params=source_params or {"type": "postgres", "table_name": "public.orders"},
        target_params={"type": "postgres", "table_name": "public.orders_copy"},
        strategy=Strategy(),
        transformations=transformations,
        resources=resources or Resources(),
    )


def build(spec: RunSpec, role: str = "source") -> PostgresHandler:
    connection = spec.source if role == "source" else spec.target
    params = spec.source_params if role == "source" else spec.target_params
    return handler_class_for(params["type"])(connection=connection, params=params, spec=spec, role=role)


# --- registry ------------------------------------------------------------------------------------------------------


def test_postgres_resolves_to_postgres_handler():
    cls = handler_class_for("postgres")
    assert cls is PostgresHandler
    assert issubclass(cls, DBHandler)
    assert issubclass(cls, Handler)
    assert cls.connection_type == "postgres"
    assert cls.dialect == POSTGRES


def test_every_registered_handler_imports_and_matches_its_type():
    for connection_type in handler_classes():
        assert handler_class_for(connection_type).connection_type == connection_type


def test_every_registered_type_has_its_test_case():
    """A new type needs its expectations in tests/unit/handler_cases.py (data, params, onETL class, kwargs)."""
    assert set(handler_classes()) == set(CASES)
    db_types = {kind for kind, cls in handler_classes().items() if issubclass(cls, DBHandler)}
    assert set(handler_cases.DB_TYPES) == db_types


def build_case(kind: str, role: str = "source") -> Handler:
    spec = case_spec(kind, role)
    connection, params = (spec.source, spec.source_params) if role == "source" else (spec.target, spec.target_params)
    return handler_class_for(kind)(connection=connection, params=params, spec=spec, role=role)


@pytest.mark.parametrize("kind", sorted(kind for kind, case in CASES.items() if case.kwargs is not None))
def test_connection_kwargs_of_every_type(kind):
    """What the onETL class gets besides ``spark``; secrets stay ``SecretStr`` (they compare equal only as such).

    Iceberg's kwargs are onETL objects: its own tests check them."""
    kwargs = build_case(kind).connection_kwargs()
    assert kwargs == CASES[kind].kwargs
    secret = handler_cases.PASSWORD
    assert secret not in repr(kwargs) and secret not in str(kwargs)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_onetl_class_of_every_type_takes_its_kwargs(kind):
    import onetl.connection

    handler = build_case(kind, role="target")
    cls = handler.onetl_connection_class()
    assert cls is getattr(onetl.connection, CASES[kind].onetl_class)
    assert set(handler.connection_kwargs()) <= set(cls.model_fields) - {"spark"}


def test_known_types_are_syncmaster_0_3_7_types():
    assert set(KNOWN_TYPES) == SYNCMASTER_0_3_7_TYPES
    assert set(handler_classes()) <= set(KNOWN_TYPES)


def test_every_syncmaster_type_is_supported():
    assert set(handler_classes()) == SYNCMASTER_0_3_7_TYPES


def test_jdbc_types_are_the_jdbc_handlers():
    assert [cls.connection_type for cls in jdbc_handler_classes()] == ["clickhouse", "mssql", "mysql", "oracle",
                                                                     "postgres"]


def test_every_db_type_is_supported_by_a_db_handler():
    for connection_type in DB_TYPES:
        assert issubclass(handler_class_for(connection_type), DBHandler)


@pytest.mark.parametrize("connection_type", sorted(FILE_TYPES))
def test_every_file_type_is_supported_by_a_file_handler(connection_type):
    cls = handler_class_for(connection_type)
    assert issubclass(cls, FileHandler)
    assert not issubclass(cls, DBHandler)
    assert cls.connection_type == connection_type


def test_known_but_unsupported_type(monkeypatch):
    monkeypatch.delitem(handler_classes(), "samba")
    with pytest.raises(UnsupportedConnectionTypeError) as info:
        handler_class_for("samba")
    reason = info.value.reason
    assert info.value.code == "unsupported_connection_type"
    assert reason.startswith("connection type 'samba' is not supported by this syncmaster-ray version yet (supported: ")
    assert "samba" not in reason.partition("supported: ")[2] and "postgres" in reason


@pytest.mark.parametrize("connection_type", ["mongodb", "Postgres", "", "postgresql", "POSTGRES"])
def test_unknown_type(connection_type):
    with pytest.raises(UnsupportedConnectionTypeError) as info:
        handler_class_for(connection_type)
    reason = info.value.reason
    assert reason.startswith(f"unknown connection type {connection_type!r}; SyncMaster's types are: ")
    assert "oracle" in reason and "postgres" in reason
    assert "not supported by this syncmaster-ray version" not in reason


def test_unsupported_and_unknown_messages_differ(monkeypatch):
    monkeypatch.delitem(handler_classes(), "s3")
    with pytest.raises(UnsupportedConnectionTypeError) as known:
        handler_class_for("s3")
    with pytest.raises(UnsupportedConnectionTypeError) as unknown:
        handler_class_for("garbage")
    assert known.value.reason != unknown.value.reason
    assert "'s3'" in known.value.reason and "'garbage'" in unknown.value.reason


# --- building a PostgresHandler (no Spark) -------------------------------------------------------------------------


def test_build_postgres_handler_validates_params():
    handler = build(run_spec())
    assert isinstance(handler, PostgresHandler)
    conn = handler.conn
    assert isinstance(conn, PostgresConnection)
    assert (conn.host, conn.port, conn.database_name, conn.user) == ("db.example", 5432, "src", "etl")
    assert conn.password.get_secret_value() == PASSWORD
    assert handler.table_name == "public.orders"
    assert handler.where is None
    assert handler.columns is None
    assert handler.sql_query is None
    assert handler.connection is None
    assert handler.describe == "postgres connection 'pg_src'"
    assert PASSWORD not in repr(conn)


def test_build_postgres_handler_default_port_and_target_role():
    spec = run_spec(source=pg_connection(port=None))
    assert build(spec).conn.port == 5432
    target = build(spec, role="target")
    assert target.table_name == "public.orders_copy"
    assert target.describe == "postgres connection 'pg_tgt'"


def test_build_postgres_handler_turns_transformations_into_sql():
    transformations = (
        {"type": "dataframe_rows_filter", "filters": [{"type": "equal", "field": "name", "value": "O'Brien"}]},
        {"type": "dataframe_columns_filter", "filters": [{"type": "include", "field": "name"}]},
        {"type": "sql", "query": "SELECT * FROM source"},
    )
    handler = build(run_spec(transformations=transformations))
    assert handler.where == "\"name\" = 'O''Brien'"
    assert handler.columns == ['"name"']
    assert handler.sql_query == "SELECT * FROM source"


def test_missing_host_is_invalid_params_without_password():
    with pytest.raises(InvalidParamsError) as info:
        build(run_spec(source=pg_connection(host=None)))
    error = info.value
    assert error.code == "invalid_params"
    assert error.reason.startswith("invalid source connection 1 (postgres): ")
    assert "host: Field required" in error.reason
    assert PASSWORD not in error.reason
    assert PASSWORD not in str(error)
    assert PASSWORD not in repr(error)


@pytest.mark.parametrize(("override", "field"), [({"port": 70000}, "port"), ({"port": "x"}, "port"),
                                                 ({"database_name": None}, "database_name")])
def test_bad_connection_fields_are_named(override, field):
    with pytest.raises(InvalidParamsError, match=rf"\b{field}: ") as info:
        build(run_spec(source=pg_connection(**override)))
    assert PASSWORD not in info.value.reason


def test_missing_password_is_invalid_params():
    spec = run_spec(source=ConnectionSpec(id=3, type="postgres", name="x",
                                          data={"host": "h", "database_name": "d"}, auth={"user": "u"}))
    with pytest.raises(InvalidParamsError, match="password: Field required"):
        build(spec)


def test_bad_table_name_is_invalid_params():
    with pytest.raises(InvalidParamsError, match=r"source_params\.table_name must look like 'schema\.table'"):
        build(run_spec(source_params={"type": "postgres", "table_name": "orders"}))


def test_bad_transformation_is_invalid_params():
    transformations = ({"type": "dataframe_rows_filter", "filters": [{"type": "equal", "field": "a"}]},)
    with pytest.raises(InvalidParamsError, match="needs a 'value'"):
        build(run_spec(transformations=transformations))


# --- connection type against params type ---------------------------------------------------------------------------

def test_params_of_another_type_than_the_connection_are_refused():
    from syncmaster_ray.job.transfer import build_handlers

    spec = run_spec(source_params={"type": "mysql", "table_name": "db.orders"})
    with pytest.raises(InvalidParamsError, match=r"source_params.type is 'mysql' but the source connection "
                                                 r"'pg_src' is of type 'postgres'"):
        build_handlers(spec, SparkSettings())


def test_an_unknown_connection_type_is_named_even_when_the_params_say_otherwise():
    from syncmaster_ray.job.transfer import build_handlers

    connection = pg_connection().model_copy(update={"type": "nosuchdb"})
    with pytest.raises(UnsupportedConnectionTypeError, match="unknown connection type 'nosuchdb'"):
        build_handlers(run_spec(source=connection), SparkSettings())


def test_matching_types_build_both_handlers():
    from syncmaster_ray.job.transfer import build_handlers

    source, target = build_handlers(run_spec(), SparkSettings())
    assert (type(source), type(target)) == (PostgresHandler, PostgresHandler)
