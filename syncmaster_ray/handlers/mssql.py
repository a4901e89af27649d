"""Microsoft SQL Server, through onETL's ``MSSQL`` connection (JDBC)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import BasicAuthModel, JDBCHandler


class MSSQLConnection(BasicAuthModel):
    host: str
    port: int = Field(default=1433, ge=1, le=65535)
    database_name: str
    additional_params: dict[str, Any] = Field(default_factory=dict)


class MSSQLHandler(JDBCHandler):
    connection_type = "mssql"
    connection_model = MSSQLConnection
    dialect = transforms.MSSQL
    maven_packages = ("com.microsoft.sqlserver:mssql-jdbc:13.4.0.jre8",)

    def onetl_connection_class(self) -> type:
        from onetl.connection import MSSQL

        return MSSQL

    def extra_params(self, additional_params: dict[str, Any]) -> dict[str, Any]:
        # As SyncMaster: trust the server certificate unless the connection's own params say otherwise.
        return super().extra_params({"trustServerCertificate": "true", **additional_params})
