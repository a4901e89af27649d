"""Runs that go wrong mid-way: a runaway run hitting the run timeout, the transfer actor (the Spark driver) killed
mid-write, and a run that waits for capacity longer than its limit. Each ends FAILED with its reason, the target
keeps its old rows and nothing of the run is left on the cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.handlers.postgres import staging_table_for
from syncmaster_ray.ids import actor_name_for, placement_group_name_for
from syncmaster_ray_dev.local_cluster import LocalCeleryWorker, LocalRayHead
from tests.fixtures.postgres_data import (
    checksum,
    create_slow_view,
    create_source,
    open_sessions,
    relation_bytes,
    unique_table,
)
from tests.fixtures.ray_cluster import alive_actors, live_placement_groups, spark_jvms
from tests.fixtures.runs import start_and_wait, wait_for, wait_for_end
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
RUN_TIMEOUT_SECONDS = 15


@pytest.fixture(scope="module")
def timeout_queue(catalog):
    return catalog.ensure_queue("e2e", "Timeout Queue")


@pytest.fixture(scope="module")
def slow_source(data_db_url) -> str:
    """A view streaming 300k rows in about 30 s (a pause every 5000): every run here is still copying when its
    failure is made to happen, however fast or slow the machine is that day."""
    table, view = unique_table("src"), unique_table("slow")
    create_source(data_db_url, table, rows=300_000)
    create_slow_view(data_db_url, view, table, every=5000, pause_seconds=0.5)
    return view


@pytest.fixture
def source_and_target(data_db_url, slow_source):
    """The slow source and a 50-row target whose checksum must survive a failed run."""
    target = unique_table("dst")
    create_source(data_db_url, target, rows=50)
    return slow_source, target, checksum(data_db_url, target, lowercase=False)


def assert_nothing_of_the_run_is_left(ray_head, submission_id: str, data_db_url: str) -> None:
    wait_for(lambda: spark_jvms(ray_head.session_id) == [], 60, "every Spark JVM to exit")
    wait_for(lambda: open_sessions(data_db_url) == [], 60, "the run's Postgres sessions to close")
    actors = [a for a in alive_actors(ray_head.dashboard_url) if a.get("name") == actor_name_for(submission_id)]
    groups = [g for g in live_placement_groups(ray_head.dashboard_url)
              if g.get("name") == placement_group_name_for(submission_id)]
    assert (actors, groups) == ([], [])


def test_run_timeout_stops_a_runaway_run_and_fails_it_with_the_reason(
    repo, catalog, timeout_queue, pg_connections, data_db_url, ray_head, app_env, tmp_path, source_and_target
):
    source, target, before = source_and_target
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url,
           "SYNCMASTER__WORKER__RUN_TIMEOUT_SECONDS": str(RUN_TIMEOUT_SECONDS)}
    transfer = make_transfer(catalog, timeout_queue, pg_connections, source, target)
    with LocalCeleryWorker(queues=timeout_queue.slug, env=env, log_path=tmp_path / "worker.log"):
        run = start_and_wait(repo, transfer, timeout_queue.slug, timeout=300)

    record = repo.get_record(run.id)
    assert (run.status, record.error_code) == ("FAILED", "timed_out"), record.reason
    assert f"{RUN_TIMEOUT_SECONDS} s" in record.reason and "SYNCMASTER__WORKER__RUN_TIMEOUT_SECONDS" in record.reason
    assert record.ray_job_status == "STOPPED"
    assert (run.ended_at - run.started_at).total_seconds() >= RUN_TIMEOUT_SECONDS
    assert checksum(data_db_url, target, lowercase=False) == before
    assert_nothing_of_the_run_is_left(ray_head, record.submission_id, data_db_url)


def test_transfer_actor_killed_mid_write_fails_the_run_and_leaves_the_target_as_it_was(
    repo, catalog, e2e_queue, pg_connections, data_db_url, ray_head, celery_worker, source_and_target
):
    source, target, before = source_and_target
    transfer = make_transfer(catalog, e2e_queue, pg_connections, source, target)
    run = repo.create_run(transfer.id)
    send_run_task(run.id, e2e_queue.slug)
    # Mid-write for real: the staging table holds rows that are not committed yet.
    wait_for(lambda: relation_bytes(data_db_url, staging_table_for(target)), 300, "rows in the staging table")
    submission_id = repo.get_record(run.id).submission_id
    actor = wait_for(lambda: next((a for a in alive_actors(ray_head.dashboard_url)
                                   if a.get("name") == actor_name_for(submission_id)), None), 30, "the actor")

    os.kill(int(actor["pid"]), signal.SIGKILL)  # as the OOM killer would
    ended = wait_for_end(repo, run.id, timeout=180)

    record = repo.get_record(run.id)
    assert (ended.status, record.error_code) == ("FAILED", "actor_died"), record.reason
    assert "transfer actor" in record.reason and "Traceback" not in record.reason
    assert checksum(data_db_url, target, lowercase=False) == before
    assert_nothing_of_the_run_is_left(ray_head, submission_id, data_db_url)


HOLD_THE_CLUSTER = """
import sys, ray
from ray.util.placement_group import placement_group
ray.init()
group = placement_group([{"CPU": 2}], name="held-by-the-test", lifetime="detached")
ray.get(group.ready(), timeout=60)
print(group.id.hex())
"""
RELEASE_THE_CLUSTER = """
import sys, ray
from ray._raylet import PlacementGroupID
from ray.util.placement_group import PlacementGroup, remove_placement_group
ray.init()
remove_placement_group(PlacementGroup(PlacementGroupID(bytes.fromhex(sys.argv[1]))))
"""


def test_a_run_waiting_for_capacity_longer_than_the_limit_fails_naming_what_it_waited_for(
    repo, catalog, pg_connections, data_db_url, app_env, tmp_path
):
    """A 2-CPU head whose CPUs another placement group holds: the run waits, and gives up after the placement
    timeout (a node setting: jobs read it from the node). What holds the capacity does not matter to the run, so a
    group of the test's own holds it (a run would hold it the same way, at the cost of a Spark session)."""
    queue = catalog.ensure_queue("e2e", "Capacity Queue")
    node_env = {**app_env, "SYNCMASTER__RAY__PLACEMENT_TIMEOUT_SECONDS": "10"}
    with LocalRayHead(env=node_env, num_cpus=2, memory_bytes=4 * 1024**3) as head, LocalCeleryWorker(
        queues=queue.slug, env={**app_env, "SYNCMASTER__RAY__ADDRESS": head.dashboard_url},
        log_path=tmp_path / "worker.log",
    ):
        driver_env = {**head.ray_env(), "RAY_ADDRESS": head.gcs_address}
        held = subprocess.run([sys.executable, "-c", HOLD_THE_CLUSTER], env=driver_env, capture_output=True,
                              text=True, timeout=120, check=True).stdout.split()[-1]
        run = repo.create_run(make_transfer(catalog, queue, pg_connections, unique_table("src"),
                                            unique_table("dst")).id)
        send_run_task(run.id, queue.slug)
        waited = wait_for_end(repo, run.id, timeout=300)
        record = repo.get_record(run.id)
        assert_nothing_of_the_run_is_left(head, record.submission_id, data_db_url)
        assert [g["name"] for g in live_placement_groups(head.dashboard_url)] == ["held-by-the-test"]
        subprocess.run([sys.executable, "-c", RELEASE_THE_CLUSTER, held], env=driver_env, timeout=120, check=True)

    assert (waited.status, record.error_code) == ("FAILED", "resources_unavailable"), record.reason
    assert "no capacity for 2 CPU" in record.reason and "within 10 s" in record.reason, record.reason
    assert "SYNCMASTER__RAY__PLACEMENT_TIMEOUT_SECONDS" in record.reason
    # Causal, not timed: the job waited for capacity the whole limit before it gave up.
    assert (waited.ended_at - waited.started_at).total_seconds() >= 10
