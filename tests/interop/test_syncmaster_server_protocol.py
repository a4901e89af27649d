"""Smoke test against the real SyncMaster 0.3.7 server: REST flow, Celery wire format, stored rows.

Nothing consumes the queue except this test (no Celery worker), so runs stay CREATED and the AMQP message the server
published can be inspected byte for byte. Expectations come from syncmaster-compat.md sections 1, 2 and 9.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from kombu import Connection, Exchange, Queue
from kombu.message import Message

from tests.fixtures.syncmaster_server import SyncMasterApiError, SyncMasterClient

pytestmark = [pytest.mark.interop]

SOURCE_AUTH = {"type": "basic", "user": "src_user", "password": "src-Pa55"}
TARGET_AUTH = {"type": "basic", "user": "dst_user", "password": "dst-Pa55"}


@pytest.fixture(scope="module")
def objects(syncmaster_client: SyncMasterClient) -> dict[str, dict[str, Any]]:
    """Group, queue, two postgres connections and a transfer, created through the REST API."""
    client = syncmaster_client
    group = client.create_group(f"interop_{uuid.uuid4().hex[:8]}")
    queue = client.create_queue(group["id"], "Ray Queue")
    pg_data = {"host": "pg.invalid", "port": 5432, "database_name": "db"}
    source = client.create_connection(group["id"], "pg_src", "postgres", pg_data, SOURCE_AUTH)
    target = client.create_connection(group["id"], "pg_dst", "postgres", pg_data, TARGET_AUTH)
    transfer = client.create_transfer(
        group_id=group["id"],
        queue_id=queue["id"],
        name="pg2pg",
        source_connection_id=source["id"],
        target_connection_id=target["id"],
        source_params={"type": "postgres", "table_name": "public.src"},
        target_params={"type": "postgres", "table_name": "public.dst"},
        strategy_params={"type": "full"},
        is_scheduled=False,
    )
    return {"group": group, "queue": queue, "source": source, "target": target, "transfer": transfer}


@pytest.fixture(scope="module")
def amqp_queue(broker_url: str, objects: dict[str, dict[str, Any]]) -> Iterator[Any]:
    """The slug queue declared up front the way Celery declares it, so the server's publish is not dropped.

    Slugs repeat across fresh databases (``1-ray_queue``), so the queue is purged first in case an aborted earlier
    session left messages in it.
    """
    slug = objects["queue"]["slug"]
    exchange = Exchange(slug, type="direct", durable=True)
    queue = Queue(slug, exchange, routing_key=slug, durable=True)
    with Connection(broker_url) as connection:
        bound = queue(connection.default_channel)
        bound.declare()
        bound.purge()
        try:
            yield bound
        finally:
            bound.delete()
            exchange(connection.default_channel).delete()


@pytest.fixture(scope="module")
def published(
    syncmaster_client: SyncMasterClient, objects: dict[str, dict[str, Any]], amqp_queue: Any
) -> tuple[dict[str, Any], Message]:
    run = syncmaster_client.create_run(objects["transfer"]["id"])
    return run, _get_message(amqp_queue)


def _get_message(queue: Any, timeout: float = 10.0) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = queue.get(no_ack=True)
        if message is not None:
            return message
        time.sleep(0.1)
    raise AssertionError(f"no message on queue {queue.name!r} within {timeout}s")


@pytest.fixture(scope="module")
def db(syncmaster_db_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(syncmaster_db_url, autocommit=True) as conn:
        yield conn


def test_queue_slug(objects: dict[str, dict[str, Any]]) -> None:
    group_id = objects["group"]["id"]
    assert objects["queue"]["slug"] == f"{group_id}-ray_queue"


def test_run_response(published: tuple[dict[str, Any], Message], objects: dict[str, dict[str, Any]]) -> None:
    run, _ = published
    assert run["transfer_id"] == objects["transfer"]["id"]
    assert run["status"] == "CREATED"
    assert run["type"] == "MANUAL"
    assert run["started_at"] is None and run["ended_at"] is None and run["log_url"] is None
    dump = run["transfer_dump"]
    assert dump["source_params"] == {"type": "postgres", "table_name": "public.src"}
    assert "password" not in json.dumps(dump)


def test_celery_wire_format(published: tuple[dict[str, Any], Message], objects: dict[str, dict[str, Any]]) -> None:
    run, message = published
    slug = objects["queue"]["slug"]
    assert message.content_type == "application/json"
    assert message.content_encoding == "utf-8"
    assert json.loads(message.body) == [
        [],
        {"run_id": run["id"]},
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    ]
    headers = message.headers
    assert headers["task"] == "run_transfer_task"
    assert headers["root_id"] == headers["id"]
    assert headers["argsrepr"] == "()"
    assert headers["kwargsrepr"] == f"{{'run_id': {run['id']}}}"
    assert headers["retries"] == 0
    assert headers["eta"] is None and headers["expires"] is None
    assert list(headers["timelimit"]) == [None, None]
    assert headers["ignore_result"] is False
    assert "CORRELATION_ID" not in headers
    props = message.properties
    assert props["correlation_id"] == headers["id"]
    assert props["delivery_mode"] == 2
    assert props["priority"] == 0
    assert props["reply_to"]
    assert message.delivery_info["exchange"] == ""
    assert message.delivery_info["routing_key"] == slug


def test_run_row_created(published: tuple[dict[str, Any], Message], db: psycopg.Connection[Any]) -> None:
    run, _ = published
    row = db.execute("SELECT status, type, started_at, log_url FROM run WHERE id = %s", (run["id"],)).fetchone()
    assert row == ("CREATED", "MANUAL", None, None)


def test_auth_data_is_fernet_token(
    objects: dict[str, dict[str, Any]], db: psycopg.Connection[Any], fernet_key: str
) -> None:
    fernet = Fernet(fernet_key.encode())
    for name, auth in (("source", SOURCE_AUTH), ("target", TARGET_AUTH)):
        conn_id = objects[name]["id"]
        (value,) = db.execute("SELECT value FROM auth_data WHERE connection_id = %s", (conn_id,)).fetchone()
        plaintext = fernet.decrypt(value.encode())
        assert json.loads(plaintext) == auth
        assert plaintext.decode() == json.dumps(auth, ensure_ascii=False, sort_keys=True)
        assert list(json.loads(plaintext)) == ["password", "type", "user"]


def test_connection_data_has_no_type(objects: dict[str, dict[str, Any]], db: psycopg.Connection[Any]) -> None:
    (data,) = db.execute("SELECT data FROM connection WHERE id = %s", (objects["source"]["id"],)).fetchone()
    assert data == {"host": "pg.invalid", "port": 5432, "database_name": "db", "additional_params": {}}
    assert "password" not in json.dumps(objects["source"]["auth_data"])


def test_stop_run(syncmaster_client: SyncMasterClient, objects: dict[str, dict[str, Any]], amqp_queue: Any) -> None:
    run = syncmaster_client.create_run(objects["transfer"]["id"])
    _get_message(amqp_queue)
    stopped = syncmaster_client.stop_run(run["id"])
    assert stopped["status"] == "SEND_STOP_SIGNAL"
    assert syncmaster_client.wait_run(run["id"], until={"SEND_STOP_SIGNAL"}, timeout=5)["status"] == "SEND_STOP_SIGNAL"
    with pytest.raises(SyncMasterApiError) as error:
        syncmaster_client.stop_run(run["id"])
    assert error.value.status >= 400
