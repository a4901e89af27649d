"""A two-node Ray cluster on this machine (a head and a second raylet, each with its own CPUs).

On one machine the nodes share a filesystem, so these tests check *where* each actor ran (Ray's state API)
rather than relying on files being invisible across nodes.
"""

from __future__ import annotations

import json
import time

import pytest

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.ids import placement_group_name_for
from syncmaster_ray_dev.local_cluster import LocalCeleryWorker, LocalRayHead, LocalRayNode
from tests.fixtures.postgres_data import checksum, create_source, unique_table
from tests.fixtures.ray_cluster import all_actors, placement_groups
from tests.fixtures.runs import start_and_wait, wait_for_end
from tests.integration.test_transfer_databases import ensure_connection, make_transfer
from tests.integration.test_transfer_files import CSV, DF_SCHEMA, Files, assert_same_rows, read_leg, write_leg
from tests.integration.test_transfer_postgres import connection_data

pytestmark = [pytest.mark.integration, pytest.mark.long]  # a second cluster: the long tier
GiB = 1024**3


@pytest.fixture(scope="module")
def two_nodes(app_env):
    """Head: 3 CPUs; second node: 2 CPUs (logical). Two 2-core executors cannot share a node."""
    with LocalRayHead(env=app_env, num_cpus=3, memory_bytes=4 * GiB) as head, \
            LocalRayNode(head=head, num_cpus=2, memory_bytes=4 * GiB) as node:
        yield head, node


@pytest.fixture(scope="module")
def multinode_queue(catalog, app_env):
    return catalog.ensure_queue("e2e", "Multinode Queue")


@pytest.fixture(scope="module")
def multinode_worker(app_env, two_nodes, multinode_queue, tmp_path_factory):
    head, _ = two_nodes
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": head.dashboard_url}
    log_path = tmp_path_factory.mktemp("celery-multinode") / "worker.log"
    with LocalCeleryWorker(queues=multinode_queue.slug, env=env, log_path=log_path) as worker:
        yield worker


def actors_since(dashboard_url: str, before: set[str]) -> list[dict]:
    """Actors created since ``before`` (ids), except Ray's job supervisors: the run's driver actor, RayDP's master
    and executors. (RayDP's JVM side joins Ray as a driver of its own, so executors carry another job id.)"""
    return [a for a in all_actors(dashboard_url)
            if a["actor_id"] not in before and a.get("class_name") != "JobSupervisor"]


def actor_ids(dashboard_url: str) -> set[str]:
    return {a["actor_id"] for a in all_actors(dashboard_url)}


def executor_nodes(actors: list[dict]) -> list[str]:
    return [a["node_id"] for a in actors if "Executor" in (a.get("class_name") or "")]


def test_executors_of_a_two_executor_transfer_run_on_both_nodes(
    repo, catalog, multinode_queue, data_db_url, two_nodes, multinode_worker, app_env
):
    head, _ = two_nodes
    data, auth = connection_data(data_db_url)
    pg = ensure_connection(catalog, app_env, "pg_multinode", "postgres", data, auth)
    source, target = unique_table("mn_src"), unique_table("mn_dst")
    create_source(data_db_url, source, rows=3000)
    transfer = make_transfer(catalog, multinode_queue, pg, pg, {"type": "postgres", "table_name": source},
                             {"type": "postgres", "table_name": target})
    with_two = {"max_parallel_tasks": 2, "cpu_cores_per_task": 2, "ram_bytes_per_task": GiB}
    _set_resources(transfer.id, with_two)

    before = actor_ids(head.dashboard_url)

    run = start_and_wait(repo, transfer, multinode_queue.slug)

    record = repo.get_record(run.id)
    assert run.status == "FINISHED", record.reason
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
    nodes = executor_nodes(actors_since(head.dashboard_url, before))
    assert len(nodes) == 2 and len(set(nodes)) == 2, _describe(head.dashboard_url)
    # The job's own record of where its executors ran agrees with Ray's state API.
    assert "executor_nodes" in record.metrics, record.log_tail
    assert sorted(record.metrics["executor_nodes"]) == sorted(nodes)
    assert record.metrics["driver_node"] in nodes


@pytest.fixture(scope="module")
def multinode_files(repo, catalog, multinode_queue, data_db_url, file_servers, app_env, two_nodes,
                    multinode_worker) -> Files:
    return Files(repo, catalog, multinode_queue, data_db_url, file_servers, app_env, two_nodes[0].dashboard_url)


def test_driver_local_files_keep_every_executor_on_the_driver_node(multinode_files, data_db_url):
    """sftp files are staged on the driver's disk: both legs (write and read) with two executors run on one node,
    as the job's placement record shows, and the rows survive the round trip."""
    source = unique_table("mn_sftp_src")
    create_source(data_db_url, source, rows=2000)
    directory, write_run, _ = write_leg(multinode_files, "sftp", source, CSV, "csv.gz", executors=2, name="mn")
    target = unique_table("mn_sftp_dst")

    _, _, read_record = read_leg(multinode_files, "sftp", directory, CSV, target, executors=2,
                                 source_extra={"df_schema": DF_SCHEMA})

    assert_same_rows(multinode_files, source, target)
    for record in (multinode_files.repo.get_record(write_run.id), read_record):
        assert len(record.metrics["executor_nodes"]) == 2
        assert set(record.metrics["executor_nodes"]) == {record.metrics["driver_node"]}


def test_driver_local_files_too_big_for_any_one_node_fail_fast(multinode_files, data_db_url, two_nodes):
    """Two 2-core executors plus the driver fit the cluster (5 CPUs) but no single node, which staged files need:
    the run fails at once, saying so, instead of waiting for capacity that can never come."""
    source = unique_table("mn_sftp_big")
    create_source(data_db_url, source, rows=10)
    transfer = multinode_files.transfer(
        {"type": "postgres", "table_name": source},
        {"type": "sftp", "directory_path": multinode_files.directory("sftp", "big"), "file_format": CSV,
         "options": {}, "file_name_template": "{run_created_at}-{index}.{extension}"},
        executors=2,
    )
    _set_resources(transfer.id, {"max_parallel_tasks": 2, "cpu_cores_per_task": 2, "ram_bytes_per_task": GiB})
    started = time.monotonic()

    run = start_and_wait(multinode_files.repo, transfer, multinode_files.queue.slug)

    record = multinode_files.repo.get_record(run.id)
    assert run.status == "FAILED"
    assert record.error_code == "resources_unavailable"
    assert "on one node" in record.reason and "5 CPU" in record.reason, record.reason
    # At once: it never reserved anything nor waited for capacity (reported, not asserted: the time).
    assert "Waiting for cluster capacity" not in (record.log_tail or ""), record.log_tail
    group_name = placement_group_name_for(record.submission_id)
    assert [g for g in placement_groups(two_nodes[0].dashboard_url) if g.get("name") == group_name] == []
    print(f"task sent -> FAILED: {time.monotonic() - started:.1f} s")


def test_two_transfers_run_at_once_when_capacity_allows(repo, catalog, multinode_queue, data_db_url, two_nodes,
                                                        multinode_worker, app_env):
    """Each asks for 2 CPUs (one executor, the driver); the cluster has 5: the Ray jobs overlap in time."""
    data, auth = connection_data(data_db_url)
    pg = ensure_connection(catalog, app_env, "pg_multinode", "postgres", data, auth)
    pairs = [(unique_table("mn_par_src"), unique_table("mn_par_dst")) for _ in range(2)]
    runs = []
    for source, target in pairs:
        create_source(data_db_url, source, rows=200_000)
        transfer = make_transfer(catalog, multinode_queue, pg, pg, {"type": "postgres", "table_name": source},
                                 {"type": "postgres", "table_name": target})
        runs.append(repo.create_run(transfer.id))
    for run in runs:
        send_run_task(run.id, multinode_queue.slug)

    ended = [wait_for_end(repo, run.id) for run in runs]

    assert [run.status for run in ended] == ["FINISHED", "FINISHED"], [repo.get_record(r.id).reason for r in runs]
    for source, target in pairs:
        assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
    # The Spark sessions (not merely the queued jobs) lived at the same time.
    first, second = ((m["spark_started_at"], m["spark_stopped_at"]) for m in (repo.get_record(r.id).metrics
                                                                                for r in runs))
    assert first[0] < second[1] and second[0] < first[1], (first, second)


def _set_resources(transfer_id: int, resources: dict) -> None:
    import psycopg

    from syncmaster_ray.settings import get_settings

    with psycopg.connect(get_settings().database.sync_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("UPDATE transfer SET resources = %s WHERE id = %s", (json.dumps(resources), transfer_id))


def _describe(dashboard_url: str) -> list[tuple]:
    return [(a.get("class_name"), a.get("name"), a.get("job_id"), a.get("node_id", "")[:8], a.get("state"))
            for a in all_actors(dashboard_url)]
