"""FTPS (explicit TLS), through onETL's ``FTPS`` file client; files are staged on the Spark driver."""

from __future__ import annotations

from syncmaster_ray.handlers.ftp import FTPConnection, FTPHandler


class FTPSConnection(FTPConnection):
    pass


class FTPSHandler(FTPHandler):
    connection_type = "ftps"
    connection_model = FTPSConnection

    def onetl_connection_class(self) -> type:
        from onetl.connection import FTPS

        return FTPS
