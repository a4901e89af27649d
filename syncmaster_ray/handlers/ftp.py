"""FTP, through onETL's ``FTP`` file client (passive mode); files are staged on the Spark driver."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from syncmaster_ray.handlers.base import BasicAuthModel
from syncmaster_ray.handlers.files import FileHandler


class FTPConnection(BasicAuthModel):
    host: str
    port: int = Field(default=21, ge=1, le=65535)


class FTPHandler(FileHandler):
    connection_type = "ftp"
    connection_model = FTPConnection

    def onetl_connection_class(self) -> type:
        from onetl.connection import FTP

        return FTP

    def connection_kwargs(self) -> dict[str, Any]:
        conn: FTPConnection = self.conn  # type: ignore[assignment]
        return {"host": conn.host, "port": conn.port, "user": conn.user, "password": conn.password}
