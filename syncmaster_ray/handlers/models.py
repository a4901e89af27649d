"""Bases of the connection models: SyncMaster's ``data | auth`` of one connection, validated before Spark starts.

A type's model names only what differs from its base: a JDBC database its default port (and whether
``database_name`` is required), a file server its port or the well-known port of each protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr


def port_field(default: int | None = None) -> Any:
    """A TCP port, ``default`` when SyncMaster's connection has none."""
    return Field(default=default, ge=1, le=65535)


class ConnectionModel(BaseModel):
    """Base of each type's connection DTO (``data | auth``): unknown keys are ignored, as in SyncMaster."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class BasicAuthModel(ConnectionModel):
    user: str
    password: SecretStr


class ServerModel(ConnectionModel):
    """A server at ``host:port``; without a port, the well-known port of the connection's ``protocol``."""

    host: str
    port: int | None = port_field()
    well_known_ports: ClassVar[Mapping[str, int]] = {}

    @property
    def effective_port(self) -> int | None:
        return self.port or self.well_known_ports.get(getattr(self, "protocol", ""))


HTTP_PORTS: Mapping[str, int] = {"https": 443, "http": 80}


class JDBCConnectionModel(ServerModel, BasicAuthModel):
    """SyncMaster's JDBC databases: ``host``, ``port`` (each type sets its default), ``database_name``,
    ``additional_params`` (JDBC URL parameters) and basic auth."""

    port: int = Field(ge=1, le=65535)
    database_name: str | None = None
    additional_params: dict[str, Any] = Field(default_factory=dict)


class FileServerModel(ServerModel, BasicAuthModel):
    """A file server with basic auth (sftp, ftp, ftps, webdav, samba)."""
