"""SFTP, through onETL's ``SFTP`` file client; files are staged on the Spark driver."""

from __future__ import annotations

from syncmaster_ray.handlers.files.handler import FileHandler
from syncmaster_ray.handlers.models import FileServerModel, port_field


class SFTPConnection(FileServerModel):
    port: int = port_field(22)


class SFTPHandler(FileHandler[SFTPConnection]):
    connection_type = "sftp"
    onetl_class = "SFTP"
    # No SSH-level compression on top of compressed files; no host key pinning (SyncMaster stores none).
    fixed_kwargs = {"extra": {"compress": False, "host_key_check": False}}
