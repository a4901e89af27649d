"""Soak: 12 runs over two queue slugs, each with its own Celery worker, on the session head (4 CPUs), which fits
at most two of them at a time (a 1-executor run reserves 2 CPUs, a 2-executor run 3, so it runs alone). Every run
must finish with every row, none may wait forever, and nothing of any run may stay on the cluster afterwards.

The broker's consumer timeout is 5 s meanwhile (set at run time, restored after). RabbitMQ closes a channel whose
delivery stays unacknowledged longer than that, and Celery then exits ("Unrecoverable error: PreconditionFailed").
Most runs here last longer than the timeout and the broker's check (about once a minute), most of it waiting for
capacity: each must finish with one Ray job, both workers must stay up, and runs sent once the first has ended must
be taken too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray_dev.local_cluster import LocalCeleryWorker
from tests.fixtures.postgres_data import checksum, create_source, open_sessions, unique_table
from tests.fixtures.ray_cluster import live_placement_groups, run_actors, spark_jvms
from tests.fixtures.runs import ended, wait_for, wait_for_end
from tests.fixtures.services import rabbitmqctl
from tests.integration.test_recovery import transfer_actors
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.long]
RUNS, SENT_LATER = 12, 2  # the last two (one per slug) are sent once the first run has ended
TWO_EXECUTOR_RUNS = (0, 7)  # one per slug
CONSUMER_TIMEOUT_MS = 5000
BROKER_CHECK_SECONDS = 65  # the consumer timeout plus the broker's check interval: a run longer than this outlived it


def rabbitmq_eval(expression: str) -> str:
    return rabbitmqctl("eval", expression, timeout=60)


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


def overtaken(finished: list, repo) -> list[tuple[int, int]]:
    """(a, b) for each run a that was in the capacity queue before run b, claimed before it too, and got capacity
    after it, when b did not go by backfill (which it does only when a fitted as well)."""
    metrics = {run.id: repo.get_record(run.id).metrics for run in finished}
    claimed = {run.id: run.started_at for run in finished}
    return [(a, b) for a in metrics for b in metrics
            if claimed[a] < claimed[b] and "capacity_queued_at" in metrics[a] and "capacity_queued_at" in metrics[b]
            and metrics[a]["capacity_queued_at"] < metrics[b]["capacity_queued_at"]
            and metrics[b]["capacity_granted_at"] < metrics[a]["capacity_granted_at"]
            and metrics[b]["capacity_turn"] != "backfill"]


# About 4 min on this machine on a good day, up to 20 min on a day it runs 3-5x slower.
@pytest.mark.timeout(2700)
def test_a_dozen_runs_over_two_slugs_outlive_the_consumer_timeout_all_finish_and_leave_nothing_behind(
    repo, catalog, pg_connections, data_db_url, ray_head, app_env, tmp_path, short_consumer_timeout
):
    queues = [catalog.ensure_queue("e2e", f"Soak Queue {name}") for name in ("A", "B")]
    source = unique_table("soak_src")
    create_source(data_db_url, source, rows=5_000)
    earlier_actors = {actor["actor_id"] for actor in transfer_actors(ray_head)}
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url}
    workers = [LocalCeleryWorker(queues=queue.slug, env=env, concurrency=None, log_path=tmp_path / f"{i}.log")
               for i, queue in enumerate(queues)]
    runs = []

    def send(i: int) -> None:
        queue, executors = queues[i % 2], 2 if i in TWO_EXECUTOR_RUNS else 1
        target = unique_table(f"soak_{i}")
        run = repo.create_run(make_transfer(catalog, queue, pg_connections, source, target, executors).id)
        send_run_task(run.id, queue.slug)
        runs.append((run.id, target))

    try:
        for worker in workers:
            worker.start()
        for i in range(RUNS - SENT_LATER):
            send(i)
        wait_for(lambda: any(ended(repo, run_id) for run_id, _ in runs), 1800, "a first run to end")
        for i in range(RUNS - SENT_LATER, RUNS):
            send(i)
        finished = [wait_for_end(repo, run_id, timeout=1800) for run_id, _ in runs]
        alive = [worker.process.poll() is None for worker in workers]
    finally:
        for worker in workers:
            worker.stop()

    assert [run.status for run in finished] == ["FINISHED"] * RUNS, [repo.get_record(r.id).reason for r in finished]
    assert alive == [True, True]
    for worker in workers:
        log = worker.log_path.read_text(errors="replace")
        assert "PRECONDITION_FAILED" not in log and "Unrecoverable error" not in log
    longest = max((run.ended_at - run.started_at).total_seconds() for run in finished)
    assert longest > BROKER_CHECK_SECONDS, f"no run outlived the broker's check: the longest took {longest:.0f} s"
    waits = [repo.get_record(run.id).metrics.get("capacity_wait_seconds", 0) for run in finished]
    assert max(waits) > 5, f"no run had to wait for capacity: {waits}"
    print(f"longest run {longest:.0f} s, capacity waits {sorted(waits)}")
    assert overtaken(finished, repo) == [], "runs waited while runs claimed after them got capacity"
    # One Ray job per run: no message was redelivered and run a second time.
    names = [actor["name"] for actor in transfer_actors(ray_head, earlier_actors)]
    assert len(names) == RUNS and len(set(names)) == RUNS, names
    expected = checksum(data_db_url, source, lowercase=False)
    assert all(checksum(data_db_url, target, lowercase=True) == expected for _, target in runs)
    wait_for(lambda: spark_jvms(ray_head.session_id) == [], 60, "every Spark JVM to exit")
    assert run_actors(ray_head.dashboard_url) == []
    assert live_placement_groups(ray_head.dashboard_url) == []
    wait_for(lambda: open_sessions(data_db_url) == [], 60, "every run's Postgres sessions to close")
