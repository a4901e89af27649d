"""MySQL, through onETL's ``MySQL`` connection (JDBC), with MySQL's or MariaDB's JDBC driver.

onETL hard-wires MySQL Connector/J (``com.mysql.cj.jdbc.Driver``). ``SYNCMASTER__SPARK__MYSQL_DRIVER`` lets an
operator use MariaDB Connector/J instead (``org.mariadb.jdbc.Driver``): the connection keeps onETL's
``jdbc:mysql://`` URL, which Connector/J 2.x accepts as is and 3.x with ``permitMysqlScheme``, so Spark still
picks its MySQL dialect. ``auto`` (the default) takes MySQL's driver when it is on the classpath, else MariaDB's.

Checked with Connector/J 2.7.6 against MariaDB 10.11: ``check()``, ``fetch``, ``sql``, ``DBReader`` and ``DBWriter``
work. onETL's ``execute()`` does not (it uses ``prepareCall``, which Connector/J accepts only for ``{call ...}``);
transfers never call it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import BasicAuthModel, JDBCHandler, java_class

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

MYSQL_DRIVER_CLASS = "com.mysql.cj.jdbc.Driver"
MARIADB_DRIVER_CLASS = "org.mariadb.jdbc.Driver"
# Connector/J 3.x accepts jdbc:mysql: only when the URL contains this; 2.x ignores it.
MARIADB_MYSQL_SCHEME_FLAG = "permitMysqlScheme"

Driver = Literal["mysql", "mariadb"]


class MySQLConnection(BasicAuthModel):
    host: str
    port: int = Field(default=3306, ge=1, le=65535)
    database_name: str | None = None
    additional_params: dict[str, Any] = Field(default_factory=dict)


def choose_driver(setting: str, class_available: Callable[[str], bool]) -> Driver:
    """The driver for ``SYNCMASTER__SPARK__MYSQL_DRIVER``; ``auto`` asks ``class_available`` (a JVM lookup)."""
    if setting == "mysql" or setting == "mariadb":
        return setting
    if setting != "auto":
        raise ValueError(f"unknown MySQL driver setting {setting!r}")
    if class_available(MYSQL_DRIVER_CLASS) or not class_available(MARIADB_DRIVER_CLASS):
        return "mysql"  # with neither class, onETL's own message says which package is missing
    return "mariadb"


def mariadb_jdbc_url(url: str) -> str:
    """onETL's ``jdbc:mysql://`` URL with ``permitMysqlScheme`` added (a no-op for Connector/J 2.x)."""
    if MARIADB_MYSQL_SCHEME_FLAG in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}{MARIADB_MYSQL_SCHEME_FLAG}"


@functools.cache
def mariadb_connection_class() -> type:
    """onETL's ``MySQL`` with MariaDB Connector/J as its driver; otherwise identical (name, URL, dialect)."""
    from onetl.connection import MySQL

    class MySQLWithMariaDBDriver(MySQL):
        DRIVER = MARIADB_DRIVER_CLASS

        @property
        def jdbc_url(self) -> str:
            return mariadb_jdbc_url(super().jdbc_url)

        @property
        def instance_url(self) -> str:
            return f"mysql://{self.host}:{self.port}"

        def __str__(self) -> str:
            return f"MySQL[{self.host}:{self.port}]"

    return MySQLWithMariaDBDriver


class MySQLHandler(JDBCHandler):
    connection_type = "mysql"
    connection_model = MySQLConnection
    dialect = transforms.MYSQL
    maven_packages = ("com.mysql:mysql-connector-j:9.7.0",)
    driver: Driver = "mysql"

    def onetl_connection_class(self) -> type:
        if self.driver == "mariadb":
            return mariadb_connection_class()
        from onetl.connection import MySQL

        return MySQL


    def make_connection(self, spark: SparkSession) -> Any:
        from syncmaster_ray.settings import get_settings

        setting = get_settings().spark.mysql_driver
        self.driver = choose_driver(setting, lambda name: java_class(spark, name) is not None)
        log.info("MySQL connection %r uses the %s JDBC driver", self.connection_spec.name, self.driver)
        return super().make_connection(spark)

