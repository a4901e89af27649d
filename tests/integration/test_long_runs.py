"""A run longer than the broker's consumer timeout (long tier: it must outlast the broker's check, about a minute).

RabbitMQ closes a channel whose delivery stays unacknowledged longer than ``consumer_timeout``, and Celery then
exits ("Unrecoverable error: PreconditionFailed"). Here the timeout is 5 s for the test (set on the broker at run
time, restored after): a 90-second run finishes with one Ray job, the worker stays up, a short run sent meanwhile
finishes unharmed and a run sent afterwards is taken too.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.local_cluster import LocalCeleryWorker
from tests.fixtures.postgres_data import checksum, create_slow_view, create_source, unique_table
from tests.fixtures.runs import start_and_wait, wait_for, wait_for_end
from tests.integration.test_recovery import transfer_actors
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(1200)]
CONSUMER_TIMEOUT_MS = 5000


def rabbitmq_eval(expression: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", "eval", expression], capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()


@pytest.fixture
def short_consumer_timeout() -> Iterator[int]:
    """The broker's consumer timeout at 5 s for channels opened from now on; the old value restored after."""
    previous = rabbitmq_eval("application:get_env(rabbit, consumer_timeout).")
    rabbitmq_eval(f"application:set_env(rabbit, consumer_timeout, {CONSUMER_TIMEOUT_MS}).")
    try:
        yield CONSUMER_TIMEOUT_MS
    finally:
        value = re.fullmatch(r"\{ok,\s*(\d+)\}", previous)
        rabbitmq_eval(f"application:set_env(rabbit, consumer_timeout, {value.group(1)})." if value
                      else "application:unset_env(rabbit, consumer_timeout).")


def test_a_run_longer_than_the_consumer_timeout_finishes_and_the_worker_keeps_consuming(
    repo, catalog, pg_connections, data_db_url, ray_head, app_env, tmp_path, short_consumer_timeout
):
    queue = catalog.ensure_queue("e2e", "Long Run Queue")
    table, slow, short_source = unique_table("long_src"), unique_table("long_slow"), unique_table("short_src")
    create_source(data_db_url, table, rows=150_000)
    create_slow_view(data_db_url, slow, table, every=5000, pause_seconds=2.5)  # about 75 s of rows
    create_source(data_db_url, short_source, rows=1000)
    long_target, short_target, after_target = (unique_table("dst") for _ in range(3))
    earlier_actors = {a["actor_id"] for a in transfer_actors(ray_head)}
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url}
    with LocalCeleryWorker(queues=queue.slug, env=env, log_path=tmp_path / "worker.log") as worker:
        long_run = repo.create_run(make_transfer(catalog, queue, pg_connections, slow, long_target).id)
        send_run_task(long_run.id, queue.slug)
        wait_for(lambda: getattr(repo.get_record(long_run.id), "phase", None) == "transferring", 300,
                 "the long run to copy")
        short = start_and_wait(repo, make_transfer(catalog, queue, pg_connections, short_source, short_target),
                               queue.slug)
        assert short.status == "FINISHED" and repo.get_run(long_run.id).status == "STARTED"
        long_ended = wait_for_end(repo, long_run.id, timeout=900)
        assert (long_ended.ended_at - long_ended.started_at).total_seconds() > 65  # past the broker's check
        after = start_and_wait(repo, make_transfer(catalog, queue, pg_connections, short_source, after_target),
                               queue.slug)
        alive = worker.process.poll() is None
        log = worker.log_path.read_text(errors="replace")

    assert long_ended.status == "FINISHED", repo.get_record(long_run.id).reason
    assert after.status == "FINISHED" and alive
    assert "PRECONDITION_FAILED" not in log and "Unrecoverable error" not in log
    assert checksum(data_db_url, long_target, lowercase=True) == checksum(data_db_url, table, lowercase=False)
    # One Ray job per run: the long run was never redelivered and run a second time.
    names = [a["name"] for a in transfer_actors(ray_head, earlier_actors)]
    assert len(names) == 3 and len(set(names)) == 3, names
