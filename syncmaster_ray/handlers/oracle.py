"""Oracle, through onETL's ``Oracle`` connection (JDBC). Target column names are written in upper case."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.base import JDBCHandler
from syncmaster_ray.handlers.models import BasicAuthModel, ServerModel, port_field

DIALECT = transforms.Dialect(quote='"', regexp="REGEXP_LIKE", native_ilike=False,
                             regexp_template="REGEXP_LIKE({name}, {value})", fold_unquoted="upper")


class OracleConnection(ServerModel, BasicAuthModel):
    """Not a ``JDBCConnectionModel``: an Oracle connection names a service or a SID, not a database."""

    port: int = port_field(1521)
    service_name: str | None = None
    sid: str | None = None
    additional_params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _exactly_one_identifier(self) -> OracleConnection:
        # SyncMaster's API only rejects both; onETL also rejects neither, so we fail before Spark starts.
        if bool(self.sid) == bool(self.service_name):
            raise ValueError("exactly one of 'sid' and 'service_name' must be set")
        return self


class OracleHandler(JDBCHandler[OracleConnection]):
    connection_type = "oracle"
    onetl_class = "Oracle"
    dialect = DIALECT
    column_case = "upper"
    maven_packages = ("com.oracle.database.jdbc:ojdbc8:23.26.1.0.0",)

    def connection_kwargs(self) -> dict[str, Any]:
        conn = self.conn
        identifier = {"sid": conn.sid} if conn.sid else {"service_name": conn.service_name}
        return {
            "host": conn.host,
            "port": conn.port,
            "user": conn.user,
            "password": conn.password,
            **identifier,
            "extra": dict(conn.additional_params),
        }
