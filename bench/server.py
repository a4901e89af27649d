"""The bench's installation: the real SyncMaster 0.3.7 server, its database, our worker on one queue and
SyncMaster's own worker on another, and the same transfers on both, created over the server's REST API.

Both workers see runs exactly as users make them: ``POST /v1/runs``, then the server's Celery message.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from syncmaster_ray_dev.local_cluster import LocalCeleryWorker, LocalRayHead
from tests.fixtures.syncmaster_server import (
    STOCK_WORKER_REQUIREMENT,
    STOCK_WORKER_VENV_DIR,
    SyncMasterClient,
    SyncMasterServer,
    ensure_syncmaster_venv,
    to_asyncpg_url,
)

ROOT = Path(__file__).parent.parent
WAYS = ("ours", "stock")


@dataclass
class StockCeleryWorker(LocalCeleryWorker):
    """``celery -A syncmaster.worker.celery worker --max-tasks-per-child=1`` (its image's command), two prefork
    children, in SyncMaster's worker venv; Spark in ``local`` mode, as its documentation configures it."""

    python: Path | None = None

    def command(self) -> list[str]:
        return [str(self.python), "-m", "celery", "-A", "syncmaster.worker.celery", "worker", "--max-tasks-per-child=1",
                "-Q", self.queues, f"--concurrency={self.concurrency}", "--loglevel=INFO"]

    def process_env(self) -> dict[str, str]:
        inherited = {key: value for key, value in os.environ.items() if not key.startswith(("SYNCMASTER", "RAY_"))}
        return {**inherited, **self.env, "PYTHONPATH": str(ROOT),
                "SYNCMASTER_CONFIG_FILE": str(Path(tempfile.gettempdir()) / "no-syncmaster-config.yml"),
                "SYNCMASTER__WORKER__CREATE_SPARK_SESSION_FUNCTION": "bench.stock_session.get_worker_spark_session",
                "SYNCMASTER__WORKER__SPARK_SESSION_DEFAULT_CONFIG": json.dumps(
                    {"spark.master": "local", "spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1"})}


@dataclass
class Installation:
    """What the bench drives: the REST client, each way's transfer ids by name, and the processes to sample."""

    client: SyncMasterClient
    transfers: dict[str, dict[str, int]]
    head: LocalRayHead
    ours_worker: LocalCeleryWorker
    stock_worker: StockCeleryWorker


@contextmanager
def installation(syncmaster_url: str, data_url: str, broker_url: str, fernet_key: str, sources: dict[str, str],
                 our_env: dict[str, str]) -> Iterator[Installation]:
    """Server, workers and transfers; ``sources``: transfer name -> source table (one transfer per way each)."""
    from syncmaster_ray.db.migrations import upgrade
    from syncmaster_ray.settings import get_settings

    with ExitStack() as stack:
        server = stack.enter_context(SyncMasterServer(syncmaster_url, broker_url, fernet_key))
        get_settings.cache_clear()
        upgrade(get_settings().database.sync_url)  # our tables beside SyncMaster's, as an operator installs them
        client = SyncMasterClient(server.base_url, timeout=120)
        client.login(username="bench")
        slugs, transfers = _create_transfers(client, data_url, sources)
        head = stack.enter_context(LocalRayHead(env=our_env))
        os.environ["SYNCMASTER__RAY__ADDRESS"] = head.dashboard_url
        get_settings.cache_clear()
        ours = stack.enter_context(LocalCeleryWorker(queues=slugs["ours"], env={
            **our_env, **head.client_env(), "SYNCMASTER__RAY__ADDRESS": head.dashboard_url}))
        stock_env = {"SYNCMASTER__DATABASE__URL": to_asyncpg_url(syncmaster_url),
                     "SYNCMASTER__BROKER__URL": broker_url, "SYNCMASTER__ENCRYPTION__SECRET_KEY": fernet_key}
        stock = stack.enter_context(StockCeleryWorker(
            queues=slugs["stock"], env=stock_env,
            python=ensure_syncmaster_venv(STOCK_WORKER_VENV_DIR, STOCK_WORKER_REQUIREMENT)))
        yield Installation(client, transfers, head, ours, stock)


def _create_transfers(client: SyncMasterClient, data_url: str, sources: dict[str, str]
                      ) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    from sqlalchemy.engine import make_url

    url = make_url(data_url)
    group = client.create_group("bench")
    data = {"host": url.host, "port": url.port or 5432, "database_name": url.database, "additional_params": {}}
    auth = {"type": "basic", "user": url.username or "postgres", "password": url.password or "unused"}
    source = client.create_connection(group["id"], "bench_source", "postgres", data, auth)
    target = client.create_connection(group["id"], "bench_target", "postgres", data, auth)
    slugs, transfers = {}, {}
    for way in WAYS:
        queue = client.create_queue(group["id"], f"bench {way}")
        slugs[way], transfers[way] = queue["slug"], {}
        for name, table in sources.items():
            transfers[way][name] = client.create_transfer(
                group_id=group["id"], queue_id=queue["id"], name=f"{way}_{name}",
                source_connection_id=source["id"], target_connection_id=target["id"],
                source_params={"type": "postgres", "table_name": table},
                target_params={"type": "postgres", "table_name": f"public.{way}_{name}_target"},
                resources={"max_parallel_tasks": 1, "cpu_cores_per_task": 1, "ram_bytes_per_task": 1024**3},
            )["id"]
    return slugs, transfers
