"""WebDAV, through onETL's ``WebDAV`` file client; files are staged on the Spark driver."""

from __future__ import annotations

from typing import Literal

from syncmaster_ray.handlers.files.handler import FileHandler
from syncmaster_ray.handlers.models import HTTP_PORTS, FileServerModel


class WebDAVConnection(FileServerModel):
    protocol: Literal["http", "https"] = "https"
    well_known_ports = HTTP_PORTS


class WebDAVHandler(FileHandler[WebDAVConnection]):
    connection_type = "webdav"
    onetl_class = "WebDAV"
    # SyncMaster does not verify certificates (no CA bundle goes through its API).
    fixed_kwargs = {"extra": {"ssl_verify": False}}
