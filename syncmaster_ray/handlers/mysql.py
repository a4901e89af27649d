"""MySQL, through onETL's ``MySQL`` connection (JDBC), with MySQL's or MariaDB's JDBC driver.

onETL hard-wires MySQL Connector/J (``com.mysql.cj.jdbc.Driver``). ``SYNCMASTER__SPARK__MYSQL_DRIVER`` lets an
operator use MariaDB Connector/J instead (``org.mariadb.jdbc.Driver``): the connection keeps onETL's
``jdbc:mysql://`` URL, which Connector/J 2.x accepts as is and 3.x with ``permitMysqlScheme``, so Spark still
picks its MySQL dialect. ``auto`` (the default) takes MySQL's driver when it is on the classpath, else MariaDB's.

Checked with Connector/J 2.7.6 against MariaDB 10.11: ``check()``, ``fetch``, ``sql``, ``DBReader``, ``DBWriter``
and ``execute()`` work. onETL's ``execute()`` runs every statement through ``prepareCall``, which MariaDB's
Connector/J accepts only for ``{call ...}``/``CALL ...``; ``MySQLWithMariaDBDriver`` runs the others as a plain
``java.sql.Statement`` (onETL's own ``GENERIC`` statement type, as its ClickHouse connection does).

Writes never leave a half-written target (``staging``): rows go to ``<table>__smr_staging``, then

- replace: ``RENAME TABLE target TO target__smr_old, staging TO target`` (one atomic statement), then
  ``DROP TABLE target__smr_old``; with no target yet, ``RENAME TABLE staging TO target``;
- append (``appends``): ``INSERT INTO target (cols) SELECT cols FROM staging`` (one statement, so atomic with
  InnoDB under autocommit), then ``DROP TABLE staging``; with no target yet, the rename as for replace.

A run killed before that statement leaves the target as it was (and maybe the staging table); after it, the
target is complete (and maybe ``__smr_old`` or the staging table is left). The next run drops both leftovers
before writing. MySQL DDL is not transactional, hence one statement per step rather than a transaction.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from syncmaster_ray.handlers import staging as staged_writes
from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import JDBCHandler, java_class
from syncmaster_ray.handlers.models import JDBCConnectionModel, port_field
from syncmaster_ray.handlers.staging import OLD_SUFFIX, STAGING_SUFFIX, StagedWriteMixin, Swap

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

MYSQL_DRIVER_CLASS = "com.mysql.cj.jdbc.Driver"
MARIADB_DRIVER_CLASS = "org.mariadb.jdbc.Driver"
# Connector/J 3.x accepts jdbc:mysql: only when the URL contains this; 2.x ignores it.
MARIADB_MYSQL_SCHEME_FLAG = "permitMysqlScheme"
# What MariaDB's Connector/J accepts in ``prepareCall``: ``{call p(?)}``, ``{? = call f(?)}``, ``CALL p()``.
CALL_STATEMENT = re.compile(r"^\s*(\{\s*)?(\?\s*=\s*)?call\b", re.IGNORECASE)
# MySQL keeps 64 characters of a name (side names count bytes, which is stricter).
DIALECT = transforms.Dialect(quote="`", regexp="RLIKE", native_ilike=False, backslash_escapes_in_literals=True,
                             max_identifier_length=64)

Driver = Literal["mysql", "mariadb"]


class MySQLConnection(JDBCConnectionModel):
    port: int = port_field(3306)


def choose_driver(setting: str, class_available: Callable[[str], bool]) -> Driver:
    """The driver for ``SYNCMASTER__SPARK__MYSQL_DRIVER``; ``auto`` asks ``class_available`` (a JVM lookup)."""
    if setting == "mysql" or setting == "mariadb":
        return setting
    if setting != "auto":
        raise ValueError(f"unknown MySQL driver setting {setting!r}")
    if class_available(MYSQL_DRIVER_CLASS) or not class_available(MARIADB_DRIVER_CLASS):
        return "mysql"  # with neither class, onETL's own message says which package is missing
    return "mariadb"


def is_call(statement: str) -> bool:
    return CALL_STATEMENT.match(statement) is not None


def mariadb_jdbc_url(url: str) -> str:
    """onETL's ``jdbc:mysql://`` URL with ``permitMysqlScheme`` added (a no-op for Connector/J 2.x)."""
    if MARIADB_MYSQL_SCHEME_FLAG in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}{MARIADB_MYSQL_SCHEME_FLAG}"


@functools.cache
def mariadb_connection_class() -> type:
    """onETL's ``MySQL`` with MariaDB Connector/J as its driver; otherwise identical (name, URL, dialect)."""
    from onetl.connection import MySQL
    from onetl.connection.db_connection.jdbc_mixin import JDBCStatementType

    class MySQLWithMariaDBDriver(MySQL):
        DRIVER = MARIADB_DRIVER_CLASS

        @staticmethod
        def _build_statement(statement: str, statement_type: Any, jdbc_connection: Any, statement_args: Any) -> Any:
            # execute() asks for prepareCall, which this driver refuses but for calls: DDL and DML then go through
            # a plain Statement (onETL's executeUpdate path). fetch() keeps its PreparedStatement.
            if statement_type == JDBCStatementType.CALL and not is_call(statement):
                statement_type = JDBCStatementType.GENERIC
            return MySQL._build_statement(statement, statement_type, jdbc_connection, statement_args)

        @property
        def jdbc_url(self) -> str:
            return mariadb_jdbc_url(super().jdbc_url)

        @property
        def instance_url(self) -> str:
            return f"mysql://{self.host}:{self.port}"

        def __str__(self) -> str:
            return f"MySQL[{self.host}:{self.port}]"

    return MySQLWithMariaDBDriver


class MySQLHandler(StagedWriteMixin, JDBCHandler[MySQLConnection]):
    connection_type = "mysql"
    onetl_class = "MySQL"
    dialect = DIALECT
    maven_packages = ("com.mysql:mysql-connector-j:9.7.0",)
    leftover_suffixes = (STAGING_SUFFIX, OLD_SUFFIX)
    driver: Driver = "mysql"
    # A hostile server can ask the client for any file (LOAD DATA LOCAL) or send it objects to deserialize: both
    # drivers' switches are forced off (MariaDB Connector/J 2.x allows local infile by default).
    forced_params = {"allowLocalInfile": "false", "allowLoadLocalInfile": "false", "allowUrlInLocalInfile": "false",
                     "autoDeserialize": "false"}
    refused_params = frozenset({
        "allowloadlocalinfileinpath", "queryinterceptors", "statementinterceptors", "exceptioninterceptors",
        "connectionlifecycleinterceptors", "socketfactory", "propertiestransform", "clientinfoprovider",
        "authenticationplugins", "defaultauthenticationplugin", "serverrsapublickeyfile", "credentialtype",
        "localsocket", "pipe", "truststore", "keystore", "trustcertificatekeystoreurl", "clientcertificatekeystoreurl",
        "servercertificatepath", "serversslcert",
    })

    def onetl_connection_class(self) -> type:
        if self.driver == "mariadb":
            return mariadb_connection_class()
        return super().onetl_connection_class()

    def make_connection(self, spark: SparkSession) -> Any:
        setting = self.context.spark.mysql_driver
        self.driver = choose_driver(setting, lambda name: java_class(spark, name) is not None)
        log.info("MySQL connection %r uses the %s JDBC driver", self.connection_spec.name, self.driver)
        return super().make_connection(spark)

    def target_exists(self) -> bool:
        return bool(self.connection.fetch(self.target_exists_query()).collect()[0][0])

    def target_exists_query(self) -> str:
        *schema, table = self.target_parts
        in_schema = self.dialect.literal(schema[-1]) if schema else "DATABASE()"
        return (f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {in_schema} "
                f"AND table_name = {self.dialect.literal(table)}")

    def schema_exists(self) -> bool | None:
        if len(self.target_parts) < 2:
            return None
        query = ("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = "
                 f"{self.dialect.literal(self.target_parts[-2])}")
        return bool(self.connection.fetch(query).collect()[0][0])

    def swap(self, staging: str, columns: Sequence[str], *, target_exists: bool | None) -> Swap:
        """One atomic statement each (MySQL DDL commits on its own, so no transaction could span two)."""
        target = self.target_sql
        if not target_exists:
            return Swap(commit=f"RENAME TABLE {staging} TO {target}")
        if self.appends:
            names = self.quoted_columns(columns)
            return Swap(commit=f"INSERT INTO {target} ({names}) SELECT {names} FROM {staging}",
                        cleanup=(self.drop_statement(staging),))
        old = self.side_table(OLD_SUFFIX)
        return Swap(commit=f"RENAME TABLE {target} TO {old}, {staging} TO {target}",
                    cleanup=(self.drop_statement(old),))


def staging_table_for(table_name: str, suffix: str = STAGING_SUFFIX) -> str:
    """The staging (or another side) table of a run writing ``table_name``, as MySQL stores it."""
    return staged_writes.side_table_for(DIALECT, table_name, suffix)
