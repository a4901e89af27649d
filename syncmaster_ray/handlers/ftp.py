"""FTP, through onETL's ``FTP`` file client (passive mode); files are staged on the Spark driver."""

from __future__ import annotations

from syncmaster_ray.handlers.files.handler import FileHandler
from syncmaster_ray.handlers.models import FileServerModel, port_field


class FTPConnection(FileServerModel):
    port: int = port_field(21)


class FTPHandler(FileHandler[FTPConnection]):
    connection_type = "ftp"
    onetl_class = "FTP"
