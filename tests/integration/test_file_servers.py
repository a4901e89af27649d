"""Smoke test of the session file servers: each one round-trips a small tree through onETL's file connection."""

from __future__ import annotations

import os
import posixpath
import secrets
from pathlib import Path

import pytest

from tests.fixtures.file_servers import PROTOCOLS, FileServers

pytestmark = [pytest.mark.integration]

TREE = {
    "a.txt": b"hello from syncmaster-ray\n",
    "nested/b.bin": os.urandom(256 * 1024),
    "nested/deeper/c.csv": b"id,name\n1,one\n2,two\n",
}


def _write_tree(root: Path) -> None:
    for relative, content in TREE.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _read_tree(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_file_server_round_trip(protocol: str, file_servers: FileServers, tmp_path: Path) -> None:
    from onetl.file import FileDownloader, FileUploader

    connection = file_servers.onetl_connection(protocol)
    remote = posixpath.join(file_servers.base_path(protocol), f"smoke_{protocol}_{secrets.token_hex(4)}")
    source, target = tmp_path / "source", tmp_path / "target"
    _write_tree(source)
    try:
        connection.check()

        uploaded = FileUploader(connection=connection, local_path=source, target_path=remote).run()
        uploaded.raise_if_failed()
        assert uploaded.successful_count == len(TREE)

        assert {item.name for item in connection.list_dir(remote)} == {"a.txt", "nested"}
        remote_files = {
            posixpath.relpath(os.fspath(root / file), remote)
            for root, _dirs, files in connection.walk(remote)
            for file in files
        }
        assert remote_files == set(TREE)

        downloader = FileDownloader(connection=connection, source_path=remote, local_path=target)
        assert len(downloader.view_files()) == len(TREE)
        downloaded = downloader.run()
        downloaded.raise_if_failed()
        assert downloaded.successful_count == len(TREE)
        assert _read_tree(target) == TREE

        connection.remove_dir(remote, recursive=True)
        assert not connection.path_exists(remote)
    finally:
        connection.close()
