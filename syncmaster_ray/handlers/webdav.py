"""WebDAV, through onETL's ``WebDAV`` file client; files are staged on the Spark driver."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from syncmaster_ray.handlers.base import BasicAuthModel
from syncmaster_ray.handlers.files import FileHandler


class WebDAVConnection(BasicAuthModel):
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["http", "https"] = "https"


class WebDAVHandler(FileHandler):
    connection_type = "webdav"
    connection_model = WebDAVConnection

    def onetl_connection_class(self) -> type:
        from onetl.connection import WebDAV

        return WebDAV

    def connection_kwargs(self) -> dict[str, Any]:
        conn: WebDAVConnection = self.conn  # type: ignore[assignment]
        return {
            "host": conn.host,
            "port": conn.port or (443 if conn.protocol == "https" else 80),
            "protocol": conn.protocol,
            "user": conn.user,
            "password": conn.password,
            # SyncMaster does not verify certificates (no CA bundle goes through its API).
            "extra": {"ssl_verify": False},
        }
