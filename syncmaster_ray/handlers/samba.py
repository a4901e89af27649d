"""Samba (SMB), through onETL's ``Samba`` file client; files are staged on the Spark driver."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from syncmaster_ray.handlers.base import ConnectionModel
from syncmaster_ray.handlers.files import FileHandler


class SambaConnection(ConnectionModel):
    host: str
    share: str
    port: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["SMB", "NetBIOS"] = "SMB"
    domain: str = ""
    user: str
    password: SecretStr
    auth_type: Literal["NTLMv1", "NTLMv2"] = "NTLMv2"


class SambaHandler(FileHandler):
    connection_type = "samba"
    connection_model = SambaConnection

    def onetl_connection_class(self) -> type:
        from onetl.connection import Samba

        return Samba

    def connection_kwargs(self) -> dict[str, Any]:
        conn: SambaConnection = self.conn  # type: ignore[assignment]
        return {
            "host": conn.host,
            # SyncMaster's port is optional: the protocol's well-known port then.
            "port": conn.port or (445 if conn.protocol == "SMB" else 139),
            "share": conn.share,
            "protocol": conn.protocol,
            "domain": conn.domain,
            "user": conn.user,
            "password": conn.password,
            "auth_type": conn.auth_type,
        }
