"""DB handlers without Spark: validation, dialect SQL, write options, staged writes, Maven coordinates.

Each type's connection, kwargs, dialect and packages are in ``handler_cases.CASES``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from syncmaster_ray.errors import ConfigError, InvalidParamsError
from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import DBHandler
from syncmaster_ray.handlers.clickhouse import DIALECT as CLICKHOUSE
from syncmaster_ray.handlers.clickhouse import ClickhouseHandler, order_by_column
from syncmaster_ray.handlers.iceberg import (
    IcebergBearerAuth,
    IcebergDelegatedWarehouse,
    IcebergHandler,
    IcebergOAuth2ClientCredentials,
    IcebergS3DirectWarehouse,
)
from syncmaster_ray.handlers.mssql import MSSQLHandler
from syncmaster_ray.handlers.mysql import DIALECT as MYSQL
from syncmaster_ray.handlers.mysql import (
    MARIADB_DRIVER_CLASS,
    MYSQL_DRIVER_CLASS,
    MySQLHandler,
    choose_driver,
    mariadb_connection_class,
    mariadb_jdbc_url,
)
from syncmaster_ray.handlers.oracle import DIALECT as ORACLE
from syncmaster_ray.handlers.oracle import OracleHandler
from syncmaster_ray.handlers.postgres import DIALECT as POSTGRES
from syncmaster_ray.handlers.postgres import PostgresHandler
from syncmaster_ray.handlers.registry import handler_class_for
from syncmaster_ray.settings import get_settings
from syncmaster_ray.spec import ConnectionSpec, Resources, RunSpec, Strategy
from tests.unit.handler_cases import BASIC_AUTH, CASES, DB_TYPES, OPERATORS, PASSWORD, S3_SECRET, TOKEN

CLIENT_SECRET = "OAuth-S3cret-never-shown"
SECRETS = (PASSWORD, TOKEN, CLIENT_SECRET, S3_SECRET)
DATA: dict[str, dict[str, Any]] = {kind: CASES[kind].data for kind in DB_TYPES}
ICEBERG_DIRECT = CASES["iceberg"].data
ICEBERG_DELEGATED = {
    "type": "iceberg_rest_s3_delegated",
    "rest_catalog_url": "https://catalog.example/api/catalog",
    "s3_warehouse_name": "lake",
    "s3_access_delegation": "remote-signing",
}
OAUTH2 = {
    "rest_catalog_oauth2_client_id": "syncmaster",
    "rest_catalog_oauth2_client_secret": CLIENT_SECRET,
    "rest_catalog_oauth2_scopes": ["catalog", "sql"],
    "rest_catalog_oauth2_resource": None,
    "rest_catalog_oauth2_audience": "lakekeeper",
    "rest_catalog_oauth2_token_endpoint": "https://idp.example/realms/x/protocol/openid-connect/token",
}
ICEBERG_AUTH = {
    "iceberg_rest_bearer_s3_basic": {"rest_catalog_token": TOKEN, "s3_access_key": "AKIA1", "s3_secret_key": S3_SECRET},
    "iceberg_rest_oauth2_client_credentials_s3_basic": {**OAUTH2, "s3_access_key": "AKIA1", "s3_secret_key": S3_SECRET},
    "iceberg_rest_bearer": {"rest_catalog_token": TOKEN},
    "iceberg_rest_oauth2_client_credentials": OAUTH2,
}

HANDLER_CLASSES: dict[str, type[DBHandler]] = {kind: handler_class_for(kind) for kind in DB_TYPES}
TYPES = DB_TYPES


def connection(connection_type: str, data: dict | None = None, auth: dict | None = None, **overrides) -> ConnectionSpec:
    data = dict(DATA[connection_type] if data is None else data)
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not ...}
    return ConnectionSpec(id=11, type=connection_type, name=f"{connection_type}_conn", data=data,
                          auth=BASIC_AUTH if auth is None else auth)


def iceberg_connection(data: dict, auth_type: str, **auth_overrides) -> ConnectionSpec:
    auth = {"type": auth_type, **ICEBERG_AUTH[auth_type], **auth_overrides}
    auth = {k: v for k, v in auth.items() if v is not ...}
    return ConnectionSpec(id=12, type="iceberg", name="lake", data=data, auth=auth)


def build(conn: ConnectionSpec, *, role: str = "source", table_name: str = "sales.orders",
          transformations: tuple = (), tasks: int = 1) -> Any:
    other = connection("postgres")
    params = {"type": conn.type, "table_name": table_name}
    spec = RunSpec(
        run_id=5, run_created_at=datetime(2025, 1, 2, tzinfo=UTC), transfer_id=3, transfer_name="t", group_name="g",
        source=conn if role == "source" else other,
        target=conn if role == "target" else other,
        source_params=params if role == "source" else {"type": "postgres", "table_name": "public.src"},
        target_params=params if role == "target" else {"type": "postgres", "table_name": "public.tgt"},
        strategy=Strategy(), transformations=transformations, resources=Resources(max_parallel_tasks=tasks),
    )
    return handler_class_for(conn.type)(connection=conn, params=params, spec=spec, role=role)


def secret(value: Any) -> str:
    assert isinstance(value, SecretStr), f"{value!r} should stay a SecretStr"
    return value.get_secret_value()


def assert_no_secret(text: str) -> None:
    for value in SECRETS:
        assert value not in text


# --- connection kwargs (what the onETL class gets besides spark) ---------------------------------------------------


def test_mysql_defaults_port_and_no_database():
    kwargs = build(connection("mysql", {"host": "m"})).connection_kwargs()
    assert (kwargs["port"], kwargs["database"], kwargs["extra"]) == (3306, None, MySQLHandler.forced_params)


def test_oracle_kwargs_with_sid_and_default_port():
    kwargs = build(connection("oracle", {"host": "o", "sid": "XE", "service_name": None})).connection_kwargs()
    assert kwargs["sid"] == "XE"
    assert "service_name" not in kwargs
    assert kwargs["port"] == 1521


def test_mssql_additional_params_win_over_trust_server_certificate():
    conn = connection("mssql", additional_params={"trustServerCertificate": "false", "encrypt": "true"})
    assert build(conn).connection_kwargs()["extra"] == {"trustServerCertificate": "false", "encrypt": "true"}
    assert build(connection("mssql", {"host": "s", "database_name": "d"})).connection_kwargs()["port"] == 1433


def test_clickhouse_kwargs_default_port():
    assert build(connection("clickhouse", {"host": "c", "database_name": "db"})).connection_kwargs()["port"] == 8123


def test_hive_kwargs_are_the_cluster_only():
    handler = build(connection("hive"))
    assert handler.connection_kwargs() == {"cluster": "test-hive"}
    # basic auth is still required and kept (SyncMaster uses it for kinit)
    assert (handler.conn.user, handler.conn.password.get_secret_value()) == ("etl", PASSWORD)


def test_kwargs_never_show_secrets_in_repr():
    for connection_type in ("postgres", "mysql", "oracle", "mssql", "clickhouse"):
        kwargs = build(connection(connection_type)).connection_kwargs()
        assert_no_secret(repr(kwargs))
        assert_no_secret(str(kwargs))


# --- iceberg --------------------------------------------------------------------------------------------------------


def test_iceberg_direct_bearer_kwargs():
    handler = build(iceberg_connection(ICEBERG_DIRECT, "iceberg_rest_bearer_s3_basic"))
    conn = handler.conn
    assert conn.flavour == "iceberg_rest_s3_direct"
    assert isinstance(conn.auth, IcebergBearerAuth)
    assert isinstance(conn.warehouse, IcebergS3DirectWarehouse)
    kwargs = handler.connection_kwargs()
    assert set(kwargs) == {"catalog_name", "catalog", "warehouse"}
    assert kwargs["catalog_name"] == handler.catalog_name
    catalog = kwargs["catalog"]
    assert str(catalog.url) == "http://rest.example:8181"
    assert secret(catalog.auth.access_token) == TOKEN
    assert catalog.get_config()["token"] == TOKEN
    warehouse = kwargs["warehouse"]
    assert secret(warehouse.secret_key) == S3_SECRET
    config = warehouse.get_config()
    assert config["warehouse"] == "s3a://warehouse/data"
    assert config["s3.endpoint"] == "http://minio.example:9010"
    assert config["s3.access-key-id"] == "AKIA1"
    assert config["s3.path-style-access"] == "true"
    assert config["client.region"] == "us-east-1"
    assert_no_secret(repr(kwargs))


def test_iceberg_direct_defaults_follow_syncmaster():
    data = {k: v for k, v in ICEBERG_DIRECT.items()
            if k not in ("s3_port", "s3_protocol", "s3_bucket_style", "s3_additional_params")}
    handler = build(iceberg_connection(data, "iceberg_rest_bearer_s3_basic"))
    warehouse = handler.conn.warehouse
    assert (warehouse.s3_port, warehouse.s3_protocol, warehouse.s3_bucket_style) == (None, "https", "path")
    config = handler.connection_kwargs()["warehouse"].get_config()
    # no port: onETL picks the protocol's
    assert config["s3.endpoint"] == "https://minio.example:443"
    assert config["s3.path-style-access"] == "true"


def test_iceberg_domain_bucket_style_disables_path_style_access():
    data = {**ICEBERG_DIRECT, "s3_bucket_style": "domain"}
    config = build(iceberg_connection(data, "iceberg_rest_bearer_s3_basic")).connection_kwargs()["warehouse"]
    assert config.get_config()["s3.path-style-access"] == "false"


def test_iceberg_direct_oauth2_kwargs():
    handler = build(iceberg_connection(ICEBERG_DIRECT, "iceberg_rest_oauth2_client_credentials_s3_basic"))
    assert isinstance(handler.conn.auth, IcebergOAuth2ClientCredentials)
    auth = handler.connection_kwargs()["catalog"].auth
    assert auth.client_id == "syncmaster"
    assert secret(auth.client_secret) == CLIENT_SECRET
    assert auth.scopes == ["catalog", "sql"]
    assert auth.audience == "lakekeeper"
    assert auth.resource is None
    assert str(auth.oauth2_token_endpoint) == OAUTH2["rest_catalog_oauth2_token_endpoint"]


def test_iceberg_delegated_oauth2_kwargs():
    handler = build(iceberg_connection(ICEBERG_DELEGATED, "iceberg_rest_oauth2_client_credentials"))
    conn = handler.conn
    assert conn.flavour == "iceberg_rest_s3_delegated"
    assert isinstance(conn.warehouse, IcebergDelegatedWarehouse)
    kwargs = handler.connection_kwargs()
    assert str(kwargs["catalog"].url) == "https://catalog.example/api/catalog"
    config = kwargs["catalog"].get_config()
    assert config["credential"] == f"syncmaster:{CLIENT_SECRET}"
    assert config["scope"] == "catalog sql"
    warehouse = kwargs["warehouse"]
    assert (warehouse.name, warehouse.access_delegation) == ("lake", "remote-signing")
    assert_no_secret(repr(kwargs))


def test_iceberg_delegated_bearer_defaults():
    data = {"type": "iceberg_rest_s3_delegated", "rest_catalog_url": "http://rest:8181"}
    handler = build(iceberg_connection(data, "iceberg_rest_bearer"))
    assert isinstance(handler.conn.auth, IcebergBearerAuth)
    warehouse = handler.connection_kwargs()["warehouse"]
    assert (warehouse.name, warehouse.access_delegation) == (None, "vended-credentials")


def test_iceberg_oauth2_optional_fields_default():
    auth = {"rest_catalog_oauth2_client_id": "id", "rest_catalog_oauth2_client_secret": CLIENT_SECRET}
    conn = ConnectionSpec(id=1, type="iceberg", name="x", data=ICEBERG_DELEGATED, auth=auth)
    oauth = build(conn).connection_kwargs()["catalog"].auth
    assert (oauth.scopes, oauth.audience, oauth.resource, oauth.oauth2_token_endpoint) == ([], None, None, None)


def test_iceberg_flavour_is_picked_by_key_presence_not_by_type():
    # the merged DTO has no "type": a direct-looking dict is direct whatever the flavour string said
    data = {**ICEBERG_DIRECT, "type": "iceberg_rest_s3_delegated"}
    assert build(iceberg_connection(data, "iceberg_rest_bearer_s3_basic")).conn.flavour == "iceberg_rest_s3_direct"
    # the oauth2 client id key alone selects oauth2, even when null (then it is invalid, as in SyncMaster)
    with pytest.raises(InvalidParamsError, match=r"auth\.oauth2\.rest_catalog_oauth2_client_id"):
        build(iceberg_connection(ICEBERG_DELEGATED, "iceberg_rest_bearer", rest_catalog_oauth2_client_id=None))


def test_iceberg_catalog_name_is_random_per_handler():
    conn = iceberg_connection(ICEBERG_DIRECT, "iceberg_rest_bearer_s3_basic")
    first, second = build(conn), build(conn, role="target")
    assert re.fullmatch(r"iceberg_[0-9a-f]{8}", first.catalog_name)
    assert first.catalog_name != second.catalog_name
    assert first.connection_kwargs()["catalog_name"] == first.catalog_name


# --- validation errors: InvalidParamsError naming the field, never a secret ----------------------------------------


INVALID_CASES = [
    ("mysql", {"port": 3306}, "host: Field required"),
    ("mysql", {"host": "h", "port": 0}, "port: Input should be greater than or equal to 1"),
    ("oracle", {"host": "h"}, "exactly one of 'sid' and 'service_name'"),
    ("oracle", {"host": "h", "sid": "XE", "service_name": "XEPDB1"}, "exactly one of 'sid' and 'service_name'"),
    ("oracle", {"host": "h", "sid": "", "service_name": None}, "exactly one of 'sid' and 'service_name'"),
    ("mssql", {"host": "h"}, "database_name: Field required"),
    ("clickhouse", {"host": "h", "port": "http"}, "port: Input should be a valid integer"),
    ("hive", {}, "cluster: Field required"),
]


@pytest.mark.parametrize(("connection_type", "data", "message"), INVALID_CASES)
def test_invalid_connection_data(connection_type, data, message):
    with pytest.raises(InvalidParamsError) as info:
        build(connection(connection_type, data))
    error = info.value
    assert error.code == "invalid_params"
    assert error.reason.startswith(f"invalid source connection 11 ({connection_type}): ")
    assert message in error.reason
    assert_no_secret(error.reason + str(error) + repr(error))


@pytest.mark.parametrize("connection_type", ["mysql", "oracle", "mssql", "clickhouse", "hive"])
def test_missing_user_or_password(connection_type):
    with pytest.raises(InvalidParamsError, match="password: Field required") as info:
        build(connection(connection_type, auth={"type": "basic", "user": "etl"}))
    assert "user:" not in info.value.reason
    with pytest.raises(InvalidParamsError, match="user: Field required") as info:
        build(connection(connection_type, auth={"type": "basic", "password": PASSWORD}))
    assert_no_secret(info.value.reason)


@pytest.mark.parametrize(
    ("data", "auth_type", "auth_overrides", "messages"),
    [
        (ICEBERG_DIRECT, "iceberg_rest_bearer_s3_basic", {"rest_catalog_token": ...},
         ["auth.bearer.rest_catalog_token: Field required"]),
        (ICEBERG_DIRECT, "iceberg_rest_bearer_s3_basic", {"s3_secret_key": ..., "s3_access_key": ...},
         ["warehouse.direct.s3_access_key: Field required", "warehouse.direct.s3_secret_key: Field required"]),
        (ICEBERG_DIRECT, "iceberg_rest_oauth2_client_credentials_s3_basic",
         {"rest_catalog_oauth2_client_secret": ...}, ["auth.oauth2.rest_catalog_oauth2_client_secret: Field required"]),
        ({**ICEBERG_DIRECT, "rest_catalog_url": "rest.example:8181"}, "iceberg_rest_bearer_s3_basic", {},
         ["rest_catalog_url: URL scheme should be 'http' or 'https'"]),
        ({**ICEBERG_DIRECT, "s3_bucket_style": "virtual"}, "iceberg_rest_bearer_s3_basic", {},
         ["warehouse.direct.s3_bucket_style: Input should be 'domain' or 'path'"]),
        ({**ICEBERG_DELEGATED, "s3_access_delegation": "none"}, "iceberg_rest_bearer", {},
         ["warehouse.delegated.s3_access_delegation: Input should be 'vended-credentials' or 'remote-signing'"]),
        (ICEBERG_DELEGATED, "iceberg_rest_oauth2_client_credentials",
         {"rest_catalog_oauth2_token_endpoint": "not a url"}, ["auth.oauth2.rest_catalog_oauth2_token_endpoint: "]),
        ({k: v for k, v in ICEBERG_DELEGATED.items() if k != "rest_catalog_url"}, "iceberg_rest_bearer", {},
         ["rest_catalog_url: "]),
    ],
)
def test_invalid_iceberg_connection(data, auth_type, auth_overrides, messages):
    with pytest.raises(InvalidParamsError) as info:
        build(iceberg_connection(data, auth_type, **auth_overrides))
    assert info.value.reason.startswith("invalid source connection 12 (iceberg): ")
    for message in messages:
        assert message in info.value.reason
    assert_no_secret(info.value.reason + repr(info.value))


# --- dialects: quoting and the rows-filter SQL ---------------------------------------------------------------------

EXPECTED_CLAUSES = {kind: CASES[kind].db.clauses for kind in DB_TYPES}
DIALECTS = {kind: CASES[kind].db.dialect for kind in DB_TYPES}


def test_every_type_has_expectations():
    assert set(EXPECTED_CLAUSES) == set(DIALECTS) == set(HANDLER_CLASSES)
    assert all(len(clauses) == len(OPERATORS) == 13 for clauses in EXPECTED_CLAUSES.values())


@pytest.mark.parametrize("connection_type", TYPES)
def test_handler_uses_its_dialect(connection_type):
    assert HANDLER_CLASSES[connection_type].dialect is DIALECTS[connection_type]


@pytest.mark.parametrize("connection_type", TYPES)
@pytest.mark.parametrize("op_index", range(13), ids=OPERATORS)
def test_rows_filter_operator(connection_type, op_index):
    filter_ = {"type": OPERATORS[op_index], "field": "Name", "value": "a%"}
    expected = EXPECTED_CLAUSES[connection_type][op_index]
    assert transforms.rows_filter_sql([filter_], DIALECTS[connection_type]) == expected


def sample_connection(connection_type: str) -> ConnectionSpec:
    if connection_type == "iceberg":
        return iceberg_connection(ICEBERG_DIRECT, "iceberg_rest_bearer_s3_basic")
    return connection(connection_type)


@pytest.mark.parametrize("connection_type", TYPES)
def test_handler_where_has_all_thirteen_operators(connection_type):
    filters = [{"type": op, "field": "Name", "value": "a%"} for op in OPERATORS]
    transformations = ({"type": "dataframe_rows_filter", "filters": filters},)
    handler = build(sample_connection(connection_type), transformations=transformations)
    assert handler.where == " AND ".join(EXPECTED_CLAUSES[connection_type])


@pytest.mark.parametrize("connection_type", TYPES)
def test_quoting(connection_type):
    assert DIALECTS[connection_type].quote_name('we"ird') == CASES[connection_type].db.quoted


@pytest.mark.parametrize("connection_type", ["mysql", "hive", "iceberg"])
def test_backtick_in_name_is_doubled(connection_type):
    assert DIALECTS[connection_type].quote_name("a`b") == "`a``b`"


@pytest.mark.parametrize(
    ("connection_type", "literal_sql"),
    [
        # backslash is an escape character in these literals: doubled, so the value is taken as typed
        ("mysql", r"'\\d+'' OR 1=1 --'"), ("clickhouse", r"'\\d+'' OR 1=1 --'"),
        # Spark SQL (hive, iceberg) reads '' as two adjacent literals: the quote is backslash-escaped instead
        ("hive", r"'\\d+\' OR 1=1 --'"), ("iceberg", r"'\\d+\' OR 1=1 --'"),
        # and a plain character here
        ("postgres", r"'\d+'' OR 1=1 --'"), ("oracle", r"'\d+'' OR 1=1 --'"), ("mssql", r"'\d+'' OR 1=1 --'"),
    ],
)
def test_values_are_escaped_per_dialect(connection_type, literal_sql):
    dialect = DIALECTS[connection_type]
    value = r"\d+' OR 1=1 --"
    assert dialect.literal(value) == literal_sql
    assert transforms.rows_filter_sql([{"type": "equal", "field": "x", "value": value}], dialect).endswith(literal_sql)


def test_a_trailing_backslash_cannot_close_the_literal():
    # MySQL would read 'x\' as an unterminated string starting with x'
    assert MYSQL.literal("x\\") == "'x\\\\'"
    assert transforms.rows_filter_sql([{"type": "regexp", "field": "f", "value": "x\\"}], MYSQL) == (
        "`f` RLIKE 'x\\\\'"
    )


def test_clickhouse_escapes_backslashes_in_names():
    assert CLICKHOUSE.quote_name('a\\" OR 1=1 --') == '"a\\\\"" OR 1=1 --"'
    assert POSTGRES.quote_name("a\\b") == '"a\\b"'
    assert MYSQL.quote_name("a\\b") == "`a\\b`"


def test_oracle_regexp_value_is_escaped_inside_the_function():
    sql = transforms.rows_filter_sql([{"type": "regexp", "field": "name", "value": "^O'B{2}"}], ORACLE)
    assert sql == "REGEXP_LIKE(\"name\", '^O''B{2}')"


def test_columns_filter_uses_the_handler_dialect():
    transformations = ({"type": "dataframe_columns_filter", "filters": [
        {"type": "include", "field": "id"},
        {"type": "rename", "field": "Name", "to": "full_name"},
        {"type": "cast", "field": "amount", "as_type": "DECIMAL(10, 2)"},
    ]},)
    assert build(connection("mysql"), transformations=transformations).columns == [
        "`id`", "`Name` AS `full_name`", "CAST(`amount` AS DECIMAL(10, 2)) AS `amount`"]
    assert build(connection("oracle"), transformations=transformations).columns == [
        '"id"', '"Name" AS "full_name"', 'CAST("amount" AS DECIMAL(10, 2)) AS "amount"']


# --- reads ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("connection_type", ["hive", "iceberg"])
def test_hive_and_iceberg_never_partition_reads(connection_type):
    handler = build(sample_connection(connection_type), tasks=8)
    assert handler.partitioned_reads is False
    assert handler.partitioned_read_options() == {}  # no schema lookup: the connection is not even made


@pytest.mark.parametrize("connection_type", ["postgres", "mysql", "oracle", "mssql", "clickhouse"])
def test_jdbc_types_partition_reads(connection_type):
    assert HANDLER_CLASSES[connection_type].partitioned_reads is True


def test_single_task_reads_are_not_partitioned():
    assert build(connection("mysql"), tasks=1).partitioned_read_options() == {}


# --- writes --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connection_type", "if_exists"),
    [("postgres", "replace_entire_table"), ("mysql", "replace_entire_table"), ("oracle", "replace_entire_table"),
     ("mssql", "replace_entire_table"), ("hive", "replace_overlapping_partitions"),
     ("iceberg", "replace_overlapping_partitions")],
)
def test_write_options(connection_type, if_exists):
    handler = build(sample_connection(connection_type), role="target")
    assert handler.write_options(["id", "name"]) == {"if_exists": if_exists}
    assert handler.write_options() == {"if_exists": if_exists}


def test_clickhouse_write_options_order_by():
    handler = build(connection("clickhouse"), role="target")
    assert handler.write_options(["name", "user_id", "id"]) == {
        "if_exists": "replace_entire_table",
        "createTableOptions": 'ENGINE = MergeTree() ORDER BY "user_id"',
    }


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["id", "name"], "id"),
        (["name", "id"], "id"),
        (["name", "user_id", "id"], "user_id"),  # the first one ending in "id"
        (["name", "amount"], "name"),  # none: the first column
        (["UserID", "name"], "UserID"),  # any case
        (["paid", "id"], "paid"),  # a plain suffix test, as in SyncMaster
        (["value"], "value"),
    ],
)
def test_clickhouse_order_by_column(columns, expected):
    assert order_by_column(columns) == expected


def test_clickhouse_order_by_needs_a_column():
    with pytest.raises(InvalidParamsError, match="without columns"):
        order_by_column([])


def test_clickhouse_order_by_column_is_quoted():
    handler = build(connection("clickhouse"), role="target")
    assert handler.write_options(['we"id'])["createTableOptions"] == 'ENGINE = MergeTree() ORDER BY "we""id"'


@pytest.mark.parametrize("connection_type", ["postgres", "mysql", "mssql", "clickhouse", "hive", "iceberg"])
def test_target_column_names_are_lower_case(connection_type):
    cls = HANDLER_CLASSES[connection_type]
    assert cls.column_case == "lower"
    assert cls.target_column_names(["ID", "Name", "created_AT", "ÄÖ"]) == ["id", "name", "created_at", "äö"]


def test_oracle_target_column_names_are_upper_case():
    assert OracleHandler.column_case == "upper"
    assert OracleHandler.target_column_names(["id", "Name", "created_AT", "äö"]) == ["ID", "NAME", "CREATED_AT", "ÄÖ"]
    assert OracleHandler.target_column_names([]) == []


# --- Maven packages (onETL 0.17, Spark 3.5, Scala 2.12) ------------------------------------------------------------

@pytest.mark.parametrize("connection_type", TYPES)
def test_maven_packages(connection_type):
    assert HANDLER_CLASSES[connection_type].maven_packages == CASES[connection_type].db.maven


def test_maven_packages_match_onetl():
    from onetl.connection import MSSQL, Clickhouse, Iceberg, MySQL, Oracle, Postgres

    assert list(PostgresHandler.maven_packages) == Postgres.get_packages()
    assert list(OracleHandler.maven_packages) == Oracle.get_packages()
    assert list(MSSQLHandler.maven_packages) == MSSQL.get_packages()
    assert list(MySQLHandler.maven_packages) == MySQL.get_packages()
    assert list(ClickhouseHandler.maven_packages[1:]) == Clickhouse.get_packages()
    assert list(IcebergHandler.maven_packages) == [
        *Iceberg.get_packages(package_version="1.10.0", spark_version="3.5.7", scala_version="2.12"),
        *Iceberg.S3Warehouse.get_packages(package_version="1.10.0"),
    ]


# --- the kwargs fit the onETL classes ------------------------------------------------------------------------------


@pytest.mark.parametrize("connection_type", TYPES)
def test_onetl_connection_class(connection_type):
    import onetl.connection

    handler = build(sample_connection(connection_type))
    cls = handler.onetl_connection_class()
    assert cls is getattr(onetl.connection, CASES[connection_type].onetl_class)
    assert set(handler.connection_kwargs()) <= set(cls.model_fields) - {"spark"}


@pytest.mark.parametrize("connection_type", ["postgres", "mysql", "oracle", "mssql", "clickhouse", "hive"])
def test_onetl_accepts_the_kwargs(connection_type):
    """onETL validates every kwarg; only the (fake) Spark session is refused."""
    from pyspark.sql import SparkSession

    handler = build(sample_connection(connection_type))
    cls = handler.onetl_connection_class()
    cls.model_rebuild(_types_namespace={"SparkSession": SparkSession})
    with pytest.raises(ValidationError) as info:
        cls.model_validate({**handler.connection_kwargs(), "spark": object()})
    assert [error["loc"] for error in info.value.errors()] == [("spark",)]


# --- MySQL with MariaDB Connector/J --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "available", "expected"),
    [
        ("mysql", set(), "mysql"),
        ("mariadb", set(), "mariadb"),
        ("auto", {MYSQL_DRIVER_CLASS, MARIADB_DRIVER_CLASS}, "mysql"),
        ("auto", {MYSQL_DRIVER_CLASS}, "mysql"),
        ("auto", {MARIADB_DRIVER_CLASS}, "mariadb"),
        ("auto", set(), "mysql"),  # onETL then names the missing package
    ],
)
def test_choose_mysql_driver(setting, available, expected):
    assert choose_driver(setting, available.__contains__) == expected


def test_forced_driver_does_not_look_at_the_classpath():
    def fail(name: str) -> bool:
        raise AssertionError(name)

    assert choose_driver("mariadb", fail) == "mariadb"
    assert choose_driver("mysql", fail) == "mysql"
    with pytest.raises(ValueError, match="unknown MySQL driver setting"):
        choose_driver("postgres", fail)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("jdbc:mysql://h:3306/db", "jdbc:mysql://h:3306/db?permitMysqlScheme"),
        ("jdbc:mysql://h:3306", "jdbc:mysql://h:3306?permitMysqlScheme"),
        ("jdbc:mysql://h:3306/db?a=b", "jdbc:mysql://h:3306/db?a=b&permitMysqlScheme"),
        ("jdbc:mysql://h:3306/db?permitMysqlScheme", "jdbc:mysql://h:3306/db?permitMysqlScheme"),
    ],
)
def test_mariadb_jdbc_url(url, expected):
    assert mariadb_jdbc_url(url) == expected


def test_mariadb_connection_class_only_swaps_the_driver():
    from onetl.connection import MySQL

    cls = mariadb_connection_class()
    assert issubclass(cls, MySQL)
    assert cls.DRIVER == MARIADB_DRIVER_CLASS
    assert MySQL.DRIVER == MYSQL_DRIVER_CLASS
    assert mariadb_connection_class() is cls


def test_mysql_handler_picks_the_class_for_its_driver():
    from onetl.connection import MySQL

    handler = build(connection("mysql"))
    assert handler.onetl_connection_class() is MySQL
    handler.driver = "mariadb"
    assert handler.onetl_connection_class() is mariadb_connection_class()


def test_mysql_driver_setting(monkeypatch):
    monkeypatch.setenv("SYNCMASTER__DATABASE__URL", "postgresql://u:p@db:5432/syncmaster")
    assert get_settings().spark.mysql_driver == "auto"
    monkeypatch.setenv("SYNCMASTER__SPARK__MYSQL_DRIVER", "mariadb")
    get_settings.cache_clear()
    assert get_settings().spark.mysql_driver == "mariadb"
    monkeypatch.setenv("SYNCMASTER__SPARK__MYSQL_DRIVER", "jtds")
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="SYNCMASTER__SPARK__MYSQL_DRIVER"):
        get_settings()


# --- Staged writes: Postgres and MySQL targets get a staging table swapped in atomically ---------------------------


def appending(handler: Any) -> Any:
    """The handler as in an incremental run whose HWM already moved (``appends``)."""
    handler.update_context(previous_hwm=type("HWM", (), {"value": 5})())
    handler.spec = handler.spec.model_copy(update={"strategy": handler.spec.strategy.model_copy(
        update={"type": "incremental", "increment_by": "id"})})
    assert handler.appends
    return handler


def test_postgres_staging_table_sits_next_to_the_target_within_63_bytes():
    from syncmaster_ray.handlers.postgres import staging_table_for

    assert staging_table_for("sales.orders") == "sales.orders__smr_staging"
    long = "t" * 70
    staged = staging_table_for(f"s.{long}")
    assert staged.startswith("s.") and staged.endswith("__smr_staging")
    assert len(staged.split(".", 1)[1].encode()) <= 63
    assert staged != staging_table_for(f"s.{long}x")  # the hash keeps long names apart


@pytest.mark.parametrize("max_length", [63, 64])
@pytest.mark.parametrize("suffix", ["__smr_staging", "__smr_old"])
def test_staging_table_names_fit_the_limit_and_keep_long_names_apart(max_length, suffix):
    from syncmaster_ray.handlers.staging import staging_table_for

    assert staging_table_for("db.orders", max_length, suffix) == f"db.orders{suffix}"
    assert staging_table_for("orders", max_length, suffix) == f"orders{suffix}"
    exact = "t" * (max_length - len(suffix))
    assert staging_table_for(f"db.{exact}", max_length, suffix) == f"db.{exact}{suffix}"  # fits: kept as is
    for table in (exact + "t", "t" * 200, "ü" * 40):
        staged = staging_table_for(f"db.{table}", max_length, suffix)
        name = staged.split(".", 1)[1]
        assert staged.startswith("db.") and name.endswith(suffix) and len(name.encode()) <= max_length
        assert staged != staging_table_for(f"db.{table}x", max_length, suffix)
    assert staging_table_for("db." + "t" * 60, 64, suffix) != staging_table_for("db." + "t" * 60, 63, suffix)


def test_mysql_side_tables_fit_mysql_64_character_names():
    from syncmaster_ray.handlers.mysql import staging_table_for

    assert staging_table_for("shop.orders") == "shop.orders__smr_staging"
    assert staging_table_for("shop.orders", "__smr_old") == "shop.orders__smr_old"
    table = "t" * 51  # 51 + 13 = 64: still fits MySQL, one byte too many for Postgres
    assert staging_table_for(f"shop.{table}") == f"shop.{table}__smr_staging"
    handler = build(connection("mysql"), role="target", table_name=f"shop.{table}")
    assert handler.side_table() == f"`shop`.`{table}__smr_staging`"
    assert len(handler.side_parts("__smr_old")[1]) <= 64


def test_postgres_full_run_swaps_the_staging_table_for_the_target_in_one_statement():
    """``sales.Orders`` is the table ``sales.orders`` (Postgres folds the unquoted name's ASCII letters, as it does
    for SyncMaster's worker, whose writer passes the name as written); other letters keep their case."""
    handler = build(connection("postgres"), role="target", table_name="sales.Orders")
    swap = handler.swap(handler.side_table(), ["id", "name"], target_exists=None)
    assert swap.commit == ('DO $smr$ BEGIN DROP TABLE IF EXISTS "sales"."orders"; '
                           'ALTER TABLE "sales"."orders__smr_staging" RENAME TO "orders"; END $smr$')
    unicode = build(connection("postgres"), role="target", table_name="Продажи.Orders_Ü")
    assert unicode.swap(unicode.side_table(), ["id"], target_exists=None).commit == (
        'DO $smr$ BEGIN DROP TABLE IF EXISTS "Продажи"."orders_Ü"; '
        'ALTER TABLE "Продажи"."orders_Ü__smr_staging" RENAME TO "orders_Ü"; END $smr$')
    assert swap.cleanup == ()
    assert handler.leftover_suffixes == ("__smr_staging",)


def test_postgres_append_inserts_from_the_staging_table_then_drops_it():
    handler = appending(build(connection("postgres"), role="target", table_name="sales.orders"))
    swap = handler.swap(handler.side_table(), ["id", "we\"ird"], target_exists=None)
    assert swap.commit == ('DO $smr$ BEGIN INSERT INTO "sales"."orders" ("id", "we""ird") SELECT "id", "we""ird" '
                           'FROM "sales"."orders__smr_staging"; DROP TABLE "sales"."orders__smr_staging"; END $smr$')
    assert swap.cleanup == ()


def test_mysql_full_run_renames_target_and_staging_in_one_statement_then_drops_the_old_table():
    handler = build(connection("mysql"), role="target", table_name="shop.Orders")
    swap = handler.swap(handler.side_table(), ["id", "name"], target_exists=True)
    assert swap.commit == ("RENAME TABLE `shop`.`Orders` TO `shop`.`Orders__smr_old`, "
                           "`shop`.`Orders__smr_staging` TO `shop`.`Orders`")
    assert swap.cleanup == ("DROP TABLE IF EXISTS `shop`.`Orders__smr_old`",)
    # Both leftovers of a killed run are dropped before the next write.
    assert handler.leftover_suffixes == ("__smr_staging", "__smr_old")


@pytest.mark.parametrize("appends", [False, True], ids=["replace", "append"])
def test_mysql_without_a_target_renames_the_staging_table_to_it(appends):
    handler = build(connection("mysql"), role="target", table_name="shop.orders")
    if appends:
        appending(handler)
    swap = handler.swap(handler.side_table(), ["id"], target_exists=False)
    assert swap.commit == "RENAME TABLE `shop`.`orders__smr_staging` TO `shop`.`orders`"
    assert swap.cleanup == ()


def test_mysql_append_inserts_from_the_staging_table_in_one_statement_then_drops_it():
    handler = appending(build(connection("mysql"), role="target", table_name="shop.orders"))
    swap = handler.swap(handler.side_table(), ["id", "we`ird"], target_exists=True)
    assert swap.commit == ("INSERT INTO `shop`.`orders` (`id`, `we``ird`) SELECT `id`, `we``ird` "
                           "FROM `shop`.`orders__smr_staging`")
    assert swap.cleanup == ("DROP TABLE IF EXISTS `shop`.`orders__smr_staging`",)


def test_mysql_target_exists_query_escapes_the_names():
    handler = build(connection("mysql"), role="target", table_name="shop.orders")
    assert handler.target_exists_query() == ("SELECT COUNT(*) FROM information_schema.tables "
                                             "WHERE table_schema = 'shop' AND table_name = 'orders'")
    handler.table_name = "it's.a\\b"
    assert handler.target_exists_query().endswith("table_schema = 'it''s' AND table_name = 'a\\\\b'")


class FakeConnection:
    """Records ``execute`` calls; ``fail_on`` makes statements starting with it raise."""

    def __init__(self, fail_on: tuple[str, ...] = (), exists: bool = True) -> None:
        self.statements: list[str] = []
        self.fail_on = fail_on
        self.exists = exists

    def execute(self, statement: str) -> None:
        self.statements.append(statement)
        if statement.startswith(self.fail_on):
            raise RuntimeError(f"refused: {statement}")

    def fetch(self, query: str) -> Any:
        self.statements.append(query)
        return type("DF", (), {"collect": lambda _: [(int(self.exists),)]})()


class FakeDataFrame:
    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def toDF(self, *columns: str) -> FakeDataFrame:
        return FakeDataFrame(list(columns))


@pytest.fixture()
def fake_writer(monkeypatch):
    """onETL's ``DBWriter`` replaced by one that records its target and options (or fails when told)."""
    import onetl.db

    written: list[tuple[str, dict, list[str]]] = []

    class Writer:
        fail = False

        def __init__(self, *, connection, target, options):
            self.target, self.options = target, options

        def run(self, df):
            written.append((self.target, self.options, df.columns))
            if Writer.fail:
                raise RuntimeError("connection lost mid-write")

    monkeypatch.setattr(onetl.db, "DBWriter", Writer)
    Writer.written = written
    return Writer


def mysql_target(connection_: FakeConnection, *, appends: bool = False) -> Any:
    handler = build(connection("mysql"), role="target", table_name="shop.orders")
    if appends:
        appending(handler)
    handler.connection = connection_
    return handler


def test_mysql_write_drops_leftovers_then_writes_staging_then_swaps(fake_writer):
    conn = FakeConnection(exists=True)
    mysql_target(conn).write(FakeDataFrame(["Id", "Name"]))

    assert fake_writer.written == [("`shop`.`orders__smr_staging`", {"if_exists": "replace_entire_table"},
                                    ["id", "name"])]
    assert conn.statements == [
        "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'shop'",
        "DROP TABLE IF EXISTS `shop`.`orders__smr_staging`",
        "DROP TABLE IF EXISTS `shop`.`orders__smr_old`",
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'shop' AND table_name = 'orders'",
        "RENAME TABLE `shop`.`orders` TO `shop`.`orders__smr_old`, `shop`.`orders__smr_staging` TO `shop`.`orders`",
        "DROP TABLE IF EXISTS `shop`.`orders__smr_old`",
    ]


def test_staged_write_that_fails_mid_write_drops_the_staging_table_and_never_touches_the_target(fake_writer):
    fake_writer.fail = True
    conn = FakeConnection()
    with pytest.raises(RuntimeError, match="mid-write"):
        mysql_target(conn).write(FakeDataFrame(["id"]))
    assert conn.statements[-1] == "DROP TABLE IF EXISTS `shop`.`orders__smr_staging`"
    assert not any(s.startswith(("RENAME", "INSERT")) or "`orders`" in s for s in conn.statements)


@pytest.mark.parametrize("appends", [False, True], ids=["replace", "append"])
def test_staged_write_whose_swap_fails_drops_the_staging_table_and_raises(fake_writer, appends):
    conn = FakeConnection(fail_on=("RENAME", "INSERT"))
    with pytest.raises(RuntimeError, match="refused"):
        mysql_target(conn, appends=appends).write(FakeDataFrame(["id"]))
    assert conn.statements[-1] == "DROP TABLE IF EXISTS `shop`.`orders__smr_staging`"


def test_staged_write_whose_cleanup_fails_still_succeeds(fake_writer, caplog):
    conn = FakeConnection(fail_on=("DROP TABLE IF EXISTS `shop`.`orders__smr_staging`",))
    handler = mysql_target(conn, appends=True)
    handler.leftover_suffixes = ()  # only the cleanup drop may fail here
    handler.write(FakeDataFrame(["id"]))  # the rows are in: a leftover staging table is the next run's to drop
    assert conn.statements[-2].startswith("INSERT INTO `shop`.`orders` (`id`) SELECT `id`")
    assert "Could not clean up after the write" in caplog.text


def test_postgres_write_uses_the_same_staged_write(fake_writer, monkeypatch):
    from syncmaster_ray.handlers.postgres import PostgresHandler

    monkeypatch.setattr(PostgresHandler, "copy_conninfo", lambda self, df: None)  # JDBC inserts
    conn = FakeConnection()
    handler = build(connection("postgres"), role="target", table_name="sales.orders")
    handler.connection = conn
    handler.write(FakeDataFrame(["ID"]))
    assert fake_writer.written == [('"sales"."orders__smr_staging"', {"if_exists": "replace_entire_table"}, ["id"])]
    assert conn.statements[0] == "SELECT COUNT(*) FROM pg_namespace WHERE nspname = 'sales'"
    assert conn.statements[1] == 'DROP TABLE IF EXISTS "sales"."orders__smr_staging"'
    assert conn.statements[2].startswith('DO $smr$ BEGIN DROP TABLE IF EXISTS "sales"."orders"')
    assert len(conn.statements) == 3  # Postgres needs no target existence check and no cleanup
    assert handler.metrics["write_path"] == "jdbc"


def test_postgres_copy_path_creates_the_staging_table_empty_then_copies_into_it(fake_writer, monkeypatch):
    from syncmaster_ray.handlers import pg_copy
    from syncmaster_ray.handlers.postgres import PostgresHandler

    copied: list[tuple[dict, str]] = []
    monkeypatch.setattr(PostgresHandler, "copy_conninfo", lambda self, df: {"host": "db"})
    monkeypatch.setattr(pg_copy, "copy_rows", lambda df, conninfo, table: copied.append((conninfo, table)) or 7)

    class Frame(FakeDataFrame):
        def limit(self, n):
            return FakeDataFrame([f"{name}[:{n}]" for name in self.columns])

        def toDF(self, *columns):
            return Frame(list(columns))

    handler = build(connection("postgres"), role="target", table_name="sales.orders")
    handler.connection = FakeConnection()
    handler.write(Frame(["ID"]))
    assert fake_writer.written == [('"sales"."orders__smr_staging"', {"if_exists": "replace_entire_table"},
                                    ["id[:0]"])]
    assert copied == [({"host": "db"}, '"sales"."orders__smr_staging"')]
    assert handler.metrics == {"write_path": "copy", "rows_written": 7}


@pytest.mark.parametrize(
    ("statement", "call"),
    [("{call p(?)}", True), ("{ ? = call f(?)}", True), ("  CALL p()", True), ("call`p`()", True),
     ("RENAME TABLE a TO b", False), ("INSERT INTO callers SELECT 1", False), ("callback_table", False),
     ("DROP TABLE IF EXISTS `call`", False)],
)
def test_mariadb_execute_keeps_prepare_call_only_for_calls(statement, call):
    from onetl.connection.db_connection.jdbc_mixin import JDBCStatementType

    from syncmaster_ray.handlers.mysql import is_call

    assert is_call(statement) is call

    class JDBCConnection:
        def prepareCall(self, *args):
            return "prepareCall"

        def prepareStatement(self, *args):
            return "prepareStatement"

        def createStatement(self, *args):
            return "createStatement"

    build_statement = mariadb_connection_class()._build_statement
    made = build_statement(statement, JDBCStatementType.CALL, JDBCConnection(), (1, 2))
    assert made == ("prepareCall" if call else "createStatement")  # execute(): a plain Statement for DDL/DML
    assert build_statement(statement, JDBCStatementType.PREPARED, JDBCConnection(), (1, 2)) == "prepareStatement"


@pytest.mark.parametrize(("connection_type", "param"), [
    ("mysql", "queryInterceptors"), ("mysql", "AllowLoadLocalInfileInPath"), ("mysql", "socketFactory"),
    ("postgres", "sslfactory"), ("postgres", "loggerFile"), ("postgres", "socketFactory"),
])
def test_jdbc_params_that_load_a_class_or_read_a_file_are_refused(connection_type, param):
    data = {**DATA[connection_type], "additional_params": {param: "x", "connectTimeout": "5"}}
    with pytest.raises(InvalidParamsError) as refused:
        build(connection(connection_type, data=data)).connection_kwargs()
    assert param in refused.value.reason and "additional_params may not set" in refused.value.reason


def test_mysql_local_infile_and_deserialization_stay_off_whatever_the_params_say():
    data = {**DATA["mysql"], "additional_params": {"allowlocalinfile": "true", "ALLOWLOADLOCALINFILE": "true",
                                                   "autoDeserialize": "true", "useSSL": "false"}}
    extra = build(connection("mysql", data=data)).connection_kwargs()["extra"]
    assert extra == {"useSSL": "false", "allowLocalInfile": "false", "allowLoadLocalInfile": "false",
                     "allowUrlInLocalInfile": "false", "autoDeserialize": "false"}


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_a_target_schema_that_does_not_exist_fails_naming_it_before_anything_is_written(fake_writer, kind):
    from syncmaster_ray.errors import TargetError

    conn = FakeConnection(exists=False)
    handler = build(connection(kind), role="target", table_name="nope.orders")
    handler.connection = conn
    with pytest.raises(TargetError) as refused:
        handler.write(FakeDataFrame(["id"]))
    assert "the target schema 'nope' does not exist" in refused.value.reason
    assert fake_writer.written == [] and len(conn.statements) == 1  # only the check


@pytest.mark.parametrize(("name", "parts"), [
    ("public.Acc_Mixed_Case", ("public", "acc_mixed_case")),
    ('"public"."Acc_Mixed_Case"', ("public", "Acc_Mixed_Case")),
    ("public.Таблица_U", ("public", "Таблица_u")),  # only ASCII letters fold, as in Postgres
    ('public."a.b""c"', ("public", 'a.b"c')),
    ("Orders", ("orders",)),
])
def test_postgres_names_resolve_as_postgres_stores_them(name, parts):

    assert POSTGRES.resolve_name(name) == parts


@pytest.mark.parametrize("name", ['public."open', 'public."a"x', "public..t", ""])
def test_malformed_table_names_are_invalid_params(name):

    with pytest.raises(InvalidParamsError):
        POSTGRES.resolve_name(name)
