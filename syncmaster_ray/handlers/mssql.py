"""Microsoft SQL Server, through onETL's ``MSSQL`` connection (JDBC)."""

from __future__ import annotations

from typing import Any

from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import JDBCHandler
from syncmaster_ray.handlers.models import JDBCConnectionModel, port_field

# SQL Server has no regexp operator: SyncMaster maps ``regexp`` to LIKE (the value is a LIKE pattern there).
DIALECT = transforms.Dialect(quote='"', regexp="LIKE", native_ilike=False)


class MSSQLConnection(JDBCConnectionModel):
    port: int = port_field(1433)
    database_name: str


class MSSQLHandler(JDBCHandler[MSSQLConnection]):
    connection_type = "mssql"
    onetl_class = "MSSQL"
    dialect = DIALECT
    maven_packages = ("com.microsoft.sqlserver:mssql-jdbc:13.4.0.jre8",)

    def extra_params(self, additional_params: dict[str, Any]) -> dict[str, Any]:
        # As SyncMaster: trust the server certificate unless the connection's own params say otherwise.
        return super().extra_params({"trustServerCertificate": "true", **additional_params})
