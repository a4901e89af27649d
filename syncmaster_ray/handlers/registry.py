"""Maps a SyncMaster connection type to its handler class, importing the module on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from syncmaster_ray.errors import UnsupportedConnectionTypeError

if TYPE_CHECKING:
    from syncmaster_ray.handlers.base import Handler

# type -> "module:Class"; adding a type means one new module and one line here.
HANDLERS: dict[str, str] = {
    "postgres": "syncmaster_ray.handlers.postgres:PostgresHandler",
    "mysql": "syncmaster_ray.handlers.mysql:MySQLHandler",
    "oracle": "syncmaster_ray.handlers.oracle:OracleHandler",
    "mssql": "syncmaster_ray.handlers.mssql:MSSQLHandler",
    "clickhouse": "syncmaster_ray.handlers.clickhouse:ClickhouseHandler",
    "hive": "syncmaster_ray.handlers.hive:HiveHandler",
    "iceberg": "syncmaster_ray.handlers.iceberg:IcebergHandler",
    "s3": "syncmaster_ray.handlers.s3:S3Handler",
    "hdfs": "syncmaster_ray.handlers.hdfs:HDFSHandler",
    "sftp": "syncmaster_ray.handlers.sftp:SFTPHandler",
    "ftp": "syncmaster_ray.handlers.ftp:FTPHandler",
    "ftps": "syncmaster_ray.handlers.ftps:FTPSHandler",
    "webdav": "syncmaster_ray.handlers.webdav:WebDAVHandler",
    "samba": "syncmaster_ray.handlers.samba:SambaHandler",
}
# Every type SyncMaster 0.3.7 defines (a type listed here but not above would be "not supported yet").
KNOWN_TYPES = (
    "postgres", "hive", "iceberg", "oracle", "clickhouse", "mssql", "mysql",
    "s3", "hdfs", "sftp", "ftp", "ftps", "webdav", "samba",
)


def handler_class_for(connection_type: str) -> type[Handler]:
    target = HANDLERS.get(connection_type)
    if target is None:
        if connection_type in KNOWN_TYPES:
            raise UnsupportedConnectionTypeError(
                f"connection type {connection_type!r} is not supported by this syncmaster-ray version yet "
                f"(supported: {', '.join(sorted(HANDLERS))})"
            )
        raise UnsupportedConnectionTypeError(
            f"unknown connection type {connection_type!r}; SyncMaster's types are: {', '.join(KNOWN_TYPES)}"
        )
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
