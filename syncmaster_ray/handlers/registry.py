"""Maps a SyncMaster connection type to its handler class: the handler classes of this package's modules.

Adding a type is adding its module: every module of ``syncmaster_ray.handlers`` is imported on the first lookup
and each class there that names a ``connection_type`` of its own is the handler of that type.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType

from syncmaster_ray.errors import UnsupportedConnectionTypeError
from syncmaster_ray.handlers.base import Handler, JDBCHandler

# Every type SyncMaster 0.3.7 defines (a type listed here without a handler is "not supported yet").
KNOWN_TYPES = (
    "postgres", "hive", "iceberg", "oracle", "clickhouse", "mssql", "mysql",
    "s3", "hdfs", "sftp", "ftp", "ftps", "webdav", "samba",
)


def _package_modules() -> list[ModuleType]:
    package = importlib.import_module("syncmaster_ray.handlers")
    return [importlib.import_module(info.name)
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
            if not info.name.rpartition(".")[2].startswith("_")]


def _handlers_of(module: ModuleType) -> list[type[Handler]]:
    """The classes defined in ``module`` that are the handler of a type (they set ``connection_type``)."""
    return [value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, Handler) and value.__module__ == module.__name__
            and "connection_type" in vars(value)]


@functools.cache
def handler_classes() -> dict[str, type[Handler]]:
    """Connection type -> handler class, for every handler module of the package."""
    found: dict[str, type[Handler]] = {}
    for module in _package_modules():
        for cls in _handlers_of(module):
            if cls.connection_type in found:
                raise RuntimeError(f"two handlers of connection type {cls.connection_type!r}: "
                                   f"{found[cls.connection_type].__qualname__} and {cls.__qualname__}")
            found[cls.connection_type] = cls
    return found


def jdbc_handler_classes() -> list[type[JDBCHandler]]:
    """The handlers of the types reached over JDBC (whose drivers a standby session started with Maven packages
    carries), ordered by type."""
    return [cls for _, cls in sorted(handler_classes().items()) if issubclass(cls, JDBCHandler)]


def handler_class_for(connection_type: str) -> type[Handler]:
    handlers = handler_classes()
    handler_class = handlers.get(connection_type)
    if handler_class is not None:
        return handler_class
    if connection_type in KNOWN_TYPES:
        raise UnsupportedConnectionTypeError(
            f"connection type {connection_type!r} is not supported by this syncmaster-ray version yet "
            f"(supported: {', '.join(sorted(handlers))})"
        )
    raise UnsupportedConnectionTypeError(
        f"unknown connection type {connection_type!r}; SyncMaster's types are: {', '.join(KNOWN_TYPES)}"
    )

