"""FTPS (explicit TLS), through onETL's ``FTPS`` file client; files are staged on the Spark driver."""

from __future__ import annotations

from syncmaster_ray.handlers.ftp import FTPHandler


class FTPSHandler(FTPHandler):
    """FTP's connection model (host, port 21, basic auth)."""

    connection_type = "ftps"
    onetl_class = "FTPS"
