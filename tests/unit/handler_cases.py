"""The unit-test expectations of every connection type, in one table keyed by type.

Connections are built as the Ray job builds them: a ``RunSpec`` whose ``ConnectionSpec`` holds SyncMaster 0.3.7's
``connection.data`` and decrypted ``auth_data`` as its API stores them (model_dump: every default present). A
type's case holds those, the params of one side, the onETL class the handler uses and the keyword arguments it
passes; a database type adds its dialect, its rows-filter SQL and its Maven packages. ``test_registry`` checks
that every registered type has a case here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from syncmaster_ray.handlers import clickhouse, hive, mssql, mysql, oracle, postgres
from syncmaster_ray.handlers.transforms import Dialect
from syncmaster_ray.spec import ConnectionSpec, Resources, RunSpec, Strategy

PASSWORD = "Handler-Pa55w0rd-never-shown"
TOKEN = "Rest-T0ken-never-shown"
S3_SECRET = "S3-S3cret-never-shown"
BASIC_AUTH = {"type": "basic", "user": "etl", "password": PASSWORD}
CSV = {"type": "csv", "delimiter": ";", "encoding": "utf-8", "quote": '"', "escape": "\\", "include_header": False,
       "line_sep": "\n", "compression": "gzip"}
# Rows-filter operators, in the order of each case's ``clauses`` (field "Name", value "a%").
OPERATORS = ["is_null", "is_not_null", "equal", "not_equal", "greater_than", "greater_or_equal", "less_than",
             "less_or_equal", "like", "ilike", "not_like", "not_ilike", "regexp"]


@dataclass(frozen=True)
class DBExpectations:
    dialect: Dialect
    clauses: tuple[str, ...]  # one per OPERATORS
    quoted: str  # quote_name('we"ird')
    maven: tuple[str, ...]


@dataclass(frozen=True)
class Case:
    data: dict[str, Any]
    auth: dict[str, Any]
    params: dict[str, Any]  # one side's params but ``type``
    onetl_class: str  # its name in onetl.connection
    kwargs: dict[str, Any] | None  # connection_kwargs(); None: onETL objects, checked by the type's own tests
    db: DBExpectations | None = None


def _clauses(quote: str, *, ilike: bool, regexp: str) -> tuple[str, ...]:
    name = f"{quote}Name{quote}"
    like = (f"{name} ILIKE 'a%'", f"{name} NOT ILIKE 'a%'") if ilike else (
        f"LOWER({name}) LIKE LOWER('a%')", f"LOWER({name}) NOT LIKE LOWER('a%')")
    return (f"{name} IS NULL", f"{name} IS NOT NULL", f"{name} = 'a%'", f"{name} != 'a%'", f"{name} > 'a%'",
            f"{name} >= 'a%'", f"{name} < 'a%'", f"{name} <= 'a%'", f"{name} LIKE 'a%'", like[0],
            f"{name} NOT LIKE 'a%'", like[1], regexp)


TABLE = {"table_name": "sales.orders"}
DIRECTORY = {"directory_path": "/data/in", "file_format": CSV, "options": {}}
SECRET = SecretStr(PASSWORD)
MYSQL_FORCED = {"allowLocalInfile": "false", "allowLoadLocalInfile": "false", "allowUrlInLocalInfile": "false",
                "autoDeserialize": "false"}
HIVE_DB = DBExpectations(hive.DIALECT, _clauses("`", ilike=False, regexp="`Name` RLIKE 'a%'"), '`we"ird`', ())

CASES: dict[str, Case] = {
    "postgres": Case(
        {"host": "pg.example", "port": 5432, "database_name": "src", "additional_params": {}}, BASIC_AUTH, TABLE,
        "Postgres", {"host": "pg.example", "port": 5432, "user": "etl", "password": SECRET, "database": "src",
                     "extra": {}},
        DBExpectations(postgres.DIALECT, _clauses('"', ilike=True, regexp="\"Name\" ~ 'a%'"), '"we""ird"',
                       ("org.postgresql:postgresql:42.7.11",)),
    ),
    "mysql": Case(
        {"host": "mysql.example", "port": 3306, "database_name": "shop", "additional_params": {"useSSL": "false"}},
        BASIC_AUTH, TABLE, "MySQL",
        {"host": "mysql.example", "port": 3306, "user": "etl", "password": SECRET, "database": "shop",
         "extra": {"useSSL": "false", **MYSQL_FORCED}},
        DBExpectations(mysql.DIALECT, _clauses("`", ilike=False, regexp="`Name` RLIKE 'a%'"), '`we"ird`',
                       ("com.mysql:mysql-connector-j:9.7.0",)),
    ),
    "oracle": Case(
        {"host": "oracle.example", "port": 1522, "service_name": "XEPDB1", "sid": None,
         "additional_params": {"defaultRowPrefetch": "1000"}}, BASIC_AUTH, TABLE, "Oracle",
        {"host": "oracle.example", "port": 1522, "user": "etl", "password": SECRET, "service_name": "XEPDB1",
         "extra": {"defaultRowPrefetch": "1000"}},
        DBExpectations(oracle.DIALECT, _clauses('"', ilike=False, regexp="REGEXP_LIKE(\"Name\", 'a%')"),
                       '"we""ird"', ("com.oracle.database.jdbc:ojdbc8:23.26.1.0.0",)),
    ),
    "mssql": Case(
        {"host": "mssql.example", "port": 1433, "database_name": "sales", "additional_params": {}}, BASIC_AUTH,
        TABLE, "MSSQL",
        {"host": "mssql.example", "port": 1433, "user": "etl", "password": SECRET, "database": "sales",
         "extra": {"trustServerCertificate": "true"}},
        DBExpectations(mssql.DIALECT, _clauses('"', ilike=False, regexp="\"Name\" LIKE 'a%'"), '"we""ird"',
                       ("com.microsoft.sqlserver:mssql-jdbc:13.4.0.jre8",)),
    ),
    "clickhouse": Case(
        {"host": "ch.example", "port": 8123, "database_name": None, "additional_params": {}}, BASIC_AUTH, TABLE,
        "Clickhouse",
        {"host": "ch.example", "port": 8123, "user": "etl", "password": SECRET, "database": None, "extra": {}},
        DBExpectations(clickhouse.DIALECT, _clauses('"', ilike=True, regexp="\"Name\" REGEXP 'a%'"), '"we""ird"',
                       ("io.github.mtsongithub.doetl:spark-dialect-extension_2.12:0.0.4",
                        "com.clickhouse:clickhouse-jdbc:0.7.2", "com.clickhouse:clickhouse-http-client:0.7.2")),
    ),
    "hive": Case({"cluster": "test-hive"}, BASIC_AUTH, TABLE, "Hive", {"cluster": "test-hive"}, HIVE_DB),
    "iceberg": Case(
        {"type": "iceberg_rest_s3_direct", "rest_catalog_url": "http://rest.example:8181", "s3_warehouse_path": "/data",
         "s3_host": "minio.example", "s3_port": 9010, "s3_protocol": "http", "s3_bucket": "warehouse",
         "s3_region": "us-east-1", "s3_bucket_style": "path", "s3_additional_params": {}},
        {"type": "iceberg_rest_bearer_s3_basic", "rest_catalog_token": TOKEN, "s3_access_key": "AKIA1",
         "s3_secret_key": S3_SECRET},
        TABLE, "Iceberg", None,
        DBExpectations(hive.DIALECT, HIVE_DB.clauses, HIVE_DB.quoted,
                       ("org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.0",
                        "org.apache.iceberg:iceberg-aws-bundle:1.10.0")),
    ),
    "sftp": Case({"host": "sftp.example", "port": 2222}, BASIC_AUTH, DIRECTORY, "SFTP",
                 {"host": "sftp.example", "port": 2222, "user": "etl", "password": SECRET,
                  "extra": {"compress": False, "host_key_check": False}}),
    "ftp": Case({"host": "ftp.example", "port": 21}, BASIC_AUTH, DIRECTORY, "FTP",
                {"host": "ftp.example", "port": 21, "user": "etl", "password": SECRET}),
    "ftps": Case({"host": "ftps.example", "port": 990}, BASIC_AUTH, DIRECTORY, "FTPS",
                 {"host": "ftps.example", "port": 990, "user": "etl", "password": SECRET}),
    "webdav": Case({"host": "dav.example", "port": None, "protocol": "https"}, BASIC_AUTH, DIRECTORY, "WebDAV",
                   {"host": "dav.example", "port": 443, "protocol": "https", "user": "etl", "password": SECRET,
                    "extra": {"ssl_verify": False}}),
    "samba": Case({"host": "smb.example", "share": "data", "port": None, "protocol": "SMB", "domain": "CORP"},
                  {"type": "samba", "user": "etl", "password": PASSWORD, "auth_type": "NTLMv1"}, DIRECTORY, "Samba",
                  {"host": "smb.example", "port": 445, "share": "data", "protocol": "SMB", "domain": "CORP",
                   "user": "etl", "password": SECRET, "auth_type": "NTLMv1"}),
    "s3": Case({"host": "s3.example", "port": 9010, "bucket": "lake", "region": "ru-1", "protocol": "http",
                "bucket_style": "path", "additional_params": {"fast.upload.buffer": "bytebuffer"}},
               {"type": "s3", "access_key": "AKIA-unit", "secret_key": S3_SECRET}, DIRECTORY, "S3",
               {"host": "s3.example", "port": 9010, "bucket": "lake", "protocol": "http", "region": "ru-1",
                "access_key": "AKIA-unit", "secret_key": SecretStr(S3_SECRET)}),
    # Kerberos (user and password) unless SYNCMASTER__SPARK__HDFS_CLUSTERS lists the cluster without it.
    "hdfs": Case({"cluster": "rnd-dwh"}, BASIC_AUTH, DIRECTORY, "HDFS",
                 {"cluster": "rnd-dwh", "user": "etl", "password": SECRET}),
}
DB_TYPES = sorted(kind for kind, case in CASES.items() if case.db is not None)
FILE_TYPES = sorted(kind for kind, case in CASES.items() if case.db is None)


def case_connection(kind: str, *, conn_id: int = 11) -> ConnectionSpec:
    case = CASES[kind]
    return ConnectionSpec(id=conn_id, type=kind, name=f"{kind}_conn", data=case.data, auth=case.auth)


def case_spec(kind: str, role: str = "source") -> RunSpec:
    """A run with ``kind`` on ``role``'s side and Postgres on the other."""
    other = ConnectionSpec(id=2, type="postgres", name="pg", data=CASES["postgres"].data, auth=BASIC_AUTH)
    params = {"type": kind, **CASES[kind].params}
    if role == "target" and kind in FILE_TYPES:
        params["file_name_template"] = "{run_id}-{index}.{extension}"
    other_params = {"type": "postgres", "table_name": "public.other"}
    return RunSpec(
        run_id=5, run_created_at=datetime(2025, 1, 2, tzinfo=UTC), transfer_id=3, transfer_name="t", group_name="g",
        source=case_connection(kind) if role == "source" else other,
        target=case_connection(kind) if role == "target" else other,
        source_params=params if role == "source" else other_params,
        target_params=params if role == "target" else other_params,
        strategy=Strategy(), transformations=(), resources=Resources(),
    )
