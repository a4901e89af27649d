"""Samba (SMB), through onETL's ``Samba`` file client; files are staged on the Spark driver."""

from __future__ import annotations

from typing import Literal

from syncmaster_ray.handlers.files.handler import FileHandler
from syncmaster_ray.handlers.models import FileServerModel


class SambaConnection(FileServerModel):
    share: str
    protocol: Literal["SMB", "NetBIOS"] = "SMB"
    domain: str = ""
    auth_type: Literal["NTLMv1", "NTLMv2"] = "NTLMv2"
    # SyncMaster's port is optional: the protocol's well-known port then.
    well_known_ports = {"SMB": 445, "NetBIOS": 139}


class SambaHandler(FileHandler[SambaConnection]):
    connection_type = "samba"
    onetl_class = "Samba"
