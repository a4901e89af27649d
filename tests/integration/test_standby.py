"""Standby transfer actors (``SYNCMASTER__RAY__STANDBY_DRIVERS``): Spark started ahead of the next run.

On a head of its own with one standby: ``--standbys start`` starts it; the next run of the default shape claims
it (its rows and log lines are the run's own) and the job starts a fresh one; a run of another shape that finds no
room evicts it; stopping the standbys leaves no JVM, actor or placement group.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from syncmaster_ray.job.priority import BACKGROUND_NICENESS
from syncmaster_ray.job.standby import PREFIX
from syncmaster_ray_dev.local_cluster import LocalCeleryWorker, LocalRayHead
from tests.fixtures.postgres_data import checksum, create_source, unique_table
from tests.fixtures.ray_cluster import alive_actors, live_placement_groups, spark_jvms, standby_jvm_niceness
from tests.fixtures.runs import start_and_wait, wait_for
from tests.integration.test_transfer_postgres import make_transfer

# Standbys are an opt-in setting (off by default) with unit twins (tests/unit/test_standby.py): the long tier.
pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.long, pytest.mark.timeout(1500)]


def standby_actors(head: LocalRayHead) -> list[str]:
    """Actor ids of the live standbys."""
    return [a["actor_id"] for a in alive_actors(head.dashboard_url) if str(a.get("name", "")).startswith(PREFIX)]


def standby_groups(head: LocalRayHead) -> list[dict]:
    return [g for g in live_placement_groups(head.dashboard_url) if f"/{PREFIX}" in str(g.get("name", ""))]


ORPHAN_GROUP = """
import ray
from ray.util.placement_group import placement_group
from syncmaster_ray.job.standby import ray_namespace
from syncmaster_ray.settings import get_settings
namespace = ray_namespace(get_settings())
ray.init(namespace=namespace)
group = placement_group([{"CPU": 0.1}], name=f"{namespace}/standby-9-orphan", lifetime="detached")
ray.get(group.ready(), timeout=60)
"""


def test_runs_of_the_default_shape_use_a_standby_and_others_evict_it(
    repo, catalog, pg_connections, data_db_url, app_env, tmp_path
):
    queue = catalog.ensure_queue("e2e", "Standby Queue")
    source = unique_table("src")
    create_source(data_db_url, source, rows=20_000)
    node_env = {**app_env, "SYNCMASTER__RAY__STANDBY_DRIVERS": "1"}
    with LocalRayHead(env=node_env, num_cpus=4, memory_bytes=8 * 1024**3) as head, LocalCeleryWorker(
        queues=queue.slug, env={**app_env, "SYNCMASTER__RAY__ADDRESS": head.dashboard_url},
        log_path=tmp_path / "worker.log",
    ):
        warm_target, wide_target = unique_table("dst"), unique_table("dst")
        driver_env = {**head.ray_env(), **node_env, "RAY_ADDRESS": head.gcs_address}
        started = subprocess.run([sys.executable, "-m", "syncmaster_ray.job", "--standbys", "start"], env=driver_env,
                                 capture_output=True, text=True, timeout=120)
        assert started.returncode == 0 and "started 1 standby" in started.stdout, started.stderr
        first_standby = wait_for(lambda: standby_actors(head) or None, 120, "a standby to start")
        wait_for(lambda: len(spark_jvms(head.session_id)) >= 1, 180, "the standby's Spark to start")
        # Its start-up runs at background priority: the session's three JVMs (driver, app master, executor), found
        # by their marker.
        lowered = wait_for(lambda: (found := standby_jvm_niceness(head.session_id)) and len(found) >= 3
                           and all(n == {BACKGROUND_NICENESS} for n in found.values()) and found, 120,
                           "the standby's JVMs at background priority")
        assert len(lowered) >= 3, lowered

        warm = start_and_wait(repo, make_transfer(catalog, queue, pg_connections, source, warm_target), queue.slug)

        record = repo.get_record(warm.id)
        assert warm.status == "FINISHED", record.reason
        assert record.metrics["driver"] == "standby" and record.metrics["write_path"] == "copy_pipe"
        assert record.metrics["copy_pipe_reader"] == "psql"  # the node has psql: the pipe reads with it
        assert record.metrics["standby_priority"] == "restored"  # the run did not copy at background priority
        assert checksum(data_db_url, warm_target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
        assert "Transfer done" in (record.log_tail or "")  # the standby's log lines are in this run's job log
        # The claimed standby died with its run; the job started a fresh one, with a group of its own.
        second_standby = wait_for(lambda: standby_actors(head) or None, 120, "a fresh standby")
        assert set(second_standby).isdisjoint(first_standby) and len(second_standby) == 1
        assert len(standby_groups(head)) == 1

        # 2 executors + the driver = 3 CPUs; the idle standby holds 2 of the 4: the run evicts it.
        wide = make_transfer(catalog, queue, pg_connections, source, wide_target, executors=2)
        wide_run = start_and_wait(repo, wide, queue.slug)
        assert wide_run.status == "FINISHED", repo.get_record(wide_run.id).reason
        assert repo.get_record(wide_run.id).metrics["driver"] == "cold"
        assert checksum(data_db_url, wide_target, lowercase=True) == checksum(data_db_url, source, lowercase=False)

        # Its job started a standby again; stopping the standbys leaves nothing behind.
        wait_for(lambda: standby_actors(head) or None, 120, "the standby after the wide run")
        wait_for(lambda: len(spark_jvms(head.session_id)) >= 1, 180, "its Spark to start")
        # A group left by a job stopped mid-claim (no standby holds it) is removed too.
        subprocess.run([sys.executable, "-c", ORPHAN_GROUP], env=driver_env, check=True, timeout=120)
        assert len(standby_groups(head)) == 2
        stopped = subprocess.run([sys.executable, "-m", "syncmaster_ray.job", "--standbys", "stop"], env=driver_env,
                                 capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0 and "stopped 1 idle standby" in stopped.stdout, stopped.stderr
        wait_for(lambda: spark_jvms(head.session_id) == [], 60, "every Spark JVM to exit")
        assert standby_actors(head) == [] and standby_groups(head) == []
