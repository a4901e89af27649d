"""Microsoft SQL Server, through onETL's ``MSSQL`` connection (JDBC)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import BasicAuthModel, DBHandler


class MSSQLConnection(BasicAuthModel):
    host: str
    port: int = Field(default=1433, ge=1, le=65535)
    database_name: str
    additional_params: dict[str, Any] = Field(default_factory=dict)


class MSSQLHandler(DBHandler):
    connection_type = "mssql"
    connection_model = MSSQLConnection
    dialect = transforms.MSSQL
    maven_packages = ("com.microsoft.sqlserver:mssql-jdbc:13.4.0.jre8",)

    def onetl_connection_class(self) -> type:
        from onetl.connection import MSSQL

        return MSSQL

    def connection_kwargs(self) -> dict[str, Any]:
        conn: MSSQLConnection = self.conn  # type: ignore[assignment]
        return {
            "host": conn.host,
            "port": conn.port,
            "user": conn.user,
            "password": conn.password,
            "database": conn.database_name,
            # As SyncMaster: trust the server certificate unless the connection's own params say otherwise.
            "extra": {"trustServerCertificate": "true", **conn.additional_params},
        }
