"""PostgreSQL, through onETL's ``Postgres`` connection (JDBC)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import BasicAuthModel, JDBCHandler


class PostgresConnection(BasicAuthModel):
    host: str
    port: int = Field(default=5432, ge=1, le=65535)
    database_name: str
    additional_params: dict[str, Any] = Field(default_factory=dict)


class PostgresHandler(JDBCHandler):
    connection_type = "postgres"
    connection_model = PostgresConnection
    dialect = transforms.POSTGRES
    maven_packages = ("org.postgresql:postgresql:42.7.11",)

    def onetl_connection_class(self) -> type:
        from onetl.connection import Postgres

        return Postgres

