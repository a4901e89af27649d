"""Fixtures that run the real SyncMaster 0.3.7 server against local Postgres and RabbitMQ.

Override the service addresses with ``SYNCMASTER_TEST_PG_URL`` (an admin URL; the server also needs a password in it,
which trust auth ignores) and ``SYNCMASTER_TEST_BROKER_URL``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.fixtures.services import PG_ADMIN_URL
from tests.fixtures.syncmaster_server import (
    SyncMasterClient,
    SyncMasterServer,
    ensure_syncmaster_venv,
    temporary_database,
)


@pytest.fixture(scope="session")
def syncmaster_python() -> Path:
    return ensure_syncmaster_venv()


@pytest.fixture(scope="module")
def syncmaster_db_url() -> Iterator[str]:
    """libpq URL of a fresh database, dropped (WITH FORCE) after the module."""
    with temporary_database(PG_ADMIN_URL, prefix="syncmaster_interop") as url:
        yield url


@pytest.fixture(scope="module")
def fernet_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def syncmaster_server(
    syncmaster_python: Path,
    syncmaster_db_url: str,
    broker_url: str,
    fernet_key: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SyncMasterServer]:
    log_path = tmp_path_factory.mktemp("syncmaster") / "server.log"
    with SyncMasterServer(
        syncmaster_db_url, broker_url, fernet_key, log_path=log_path, python=syncmaster_python
    ) as server:
        yield server


@pytest.fixture(scope="module")
def syncmaster_client(syncmaster_server: SyncMasterServer) -> SyncMasterClient:
    client = SyncMasterClient(syncmaster_server.base_url)
    client.login(username="admin")
    return client
