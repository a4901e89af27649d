"""SFTP, through onETL's ``SFTP`` file client; files are staged on the Spark driver."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from syncmaster_ray.handlers.base import BasicAuthModel
from syncmaster_ray.handlers.files import FileHandler


class SFTPConnection(BasicAuthModel):
    host: str
    port: int = Field(default=22, ge=1, le=65535)


class SFTPHandler(FileHandler):
    connection_type = "sftp"
    connection_model = SFTPConnection

    def onetl_connection_class(self) -> type:
        from onetl.connection import SFTP

        return SFTP

    def connection_kwargs(self) -> dict[str, Any]:
        conn: SFTPConnection = self.conn  # type: ignore[assignment]
        return {
            "host": conn.host,
            "port": conn.port,
            "user": conn.user,
            "password": conn.password,
            # No SSH-level compression on top of compressed files; no host key pinning (SyncMaster stores none).
            "extra": {"compress": False, "host_key_check": False},
        }
