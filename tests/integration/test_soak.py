"""Soak: 12 runs over two queue slugs, each with its own Celery worker, on the session head (4 CPUs), which fits
at most two of them at a time (a 1-executor run reserves 2 CPUs, a 2-executor run 3, so it runs alone). Every run
must finish with every row, none may wait forever, and nothing of any run may stay on the cluster afterwards."""

from __future__ import annotations

import pytest

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.local_cluster import LocalCeleryWorker
from tests.fixtures.postgres_data import checksum, create_source, open_sessions, unique_table
from tests.fixtures.ray_cluster import alive_actors, live_placement_groups, spark_jvms
from tests.fixtures.runs import wait_for, wait_for_end
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.long]
RUNS = 12


# 12 runs, two at a time: about 4 min on this machine on a good day, up to 20 min on a day it runs 3-5x slower
# (every 2-executor run then also waits until the 1-executor ones are gone: Ray places whatever group fits first).
@pytest.mark.timeout(2700)
def test_a_dozen_runs_over_two_slugs_all_finish_and_leave_nothing_behind(
    repo, catalog, pg_connections, data_db_url, ray_head, app_env, tmp_path
):
    queues = [catalog.ensure_queue("e2e", f"Soak Queue {name}") for name in ("A", "B")]
    source = unique_table("soak_src")
    create_source(data_db_url, source, rows=5_000)
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url}
    workers = [LocalCeleryWorker(queues=queue.slug, env=env, concurrency=None, log_path=tmp_path / f"{i}.log")
               for i, queue in enumerate(queues)]
    runs = []
    try:
        for worker in workers:
            worker.start()
        for i in range(RUNS):
            queue, executors = queues[i % 2], 2 if i in (0, 7) else 1  # one 2-executor run per slug
            target = unique_table(f"soak_{i}")
            run = repo.create_run(make_transfer(catalog, queue, pg_connections, source, target, executors).id)
            send_run_task(run.id, queue.slug)
            runs.append((run.id, target))
        ended = [wait_for_end(repo, run_id, timeout=1800) for run_id, _ in runs]
        assert all(worker.process.poll() is None for worker in workers)
    finally:
        for worker in workers:
            worker.stop()

    assert [run.status for run in ended] == ["FINISHED"] * RUNS, [repo.get_record(r.id).reason for r in ended]
    waits = [repo.get_record(run.id).metrics.get("capacity_wait_seconds", 0) for run in ended]
    assert max(waits) > 5, f"no run had to wait for capacity: {waits}"
    expected = checksum(data_db_url, source, lowercase=False)
    assert all(checksum(data_db_url, target, lowercase=True) == expected for _, target in runs)
    wait_for(lambda: spark_jvms(ray_head.session_id) == [], 60, "every Spark JVM to exit")
    assert alive_actors(ray_head.dashboard_url) == []
    assert live_placement_groups(ray_head.dashboard_url) == []
    wait_for(lambda: open_sessions(data_db_url) == [], 60, "every run's Postgres sessions to close")
