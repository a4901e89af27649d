"""Postgres -> Postgres through the whole pipeline: Celery task -> Ray job -> RayDP actor -> onETL."""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
import urllib.request

import pytest

from syncmaster_ray.ids import placement_group_name_for
from syncmaster_ray.job.app_master import NAMESPACE_PREFIX
from syncmaster_ray.ray_client import dashboard_auth_headers
from tests.fixtures.postgres_data import (  # noqa: F401  (re-exported for the other e2e modules)
    CONNECTION_PASSWORD,
    checksum,
    connection_data,
    create_slow_view,
    create_source,
    relation_bytes,
    stored,
    table_exists,
    unique_table,
)
from tests.fixtures.ray_cluster import (
    all_actors,
    placement_groups,
    raw_job_traces,
    session_environments,
    spark_jvms,
)
from tests.fixtures.runs import (  # noqa: F401  (RUN_TIMEOUT re-exported for modules that import it here)
    RUN_TIMEOUT,
    ended,
    start_and_wait,
    wait_for,
    wait_for_end,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def run_secrets(app_env: dict[str, str]) -> dict[str, str]:
    """Every secret a run touches, each unique to this session (the database password is random too: trust auth
    ignores it, but it travels like a real one)."""
    database_url = urllib.parse.urlsplit(app_env["SYNCMASTER__DATABASE__URL"])
    return {
        "connection password": CONNECTION_PASSWORD,
        "Fernet key": app_env["SYNCMASTER__ENCRYPTION__SECRET_KEY"],
        "database URL": app_env["SYNCMASTER__DATABASE__URL"].split("://", 1)[1],
        "database password": database_url.password or "",
    }


def node_secrets(app_env: dict[str, str]) -> dict[str, str]:
    """What the operator put on the nodes: never in the environment of a process there."""
    return {name: value for name, value in run_secrets(app_env).items() if name != "connection password"} | {
        "Ray token": app_env["RAY_AUTH_TOKEN"], "broker URL": app_env["SYNCMASTER__BROKER__URL"]}


def assert_no_secrets(text: str, app_env: dict[str, str]) -> None:
    found = [name for name, secret in run_secrets(app_env).items() if secret and secret in text]
    assert found == [], f"secrets found: {found}"


def assert_run_shows_no_secret(dashboard_url: str, record, app_env: dict[str, str]) -> None:
    """Look where a user looks, unscrubbed: the job's dashboard record and whole Ray log, plus our saved reason
    and log tail."""
    traces = raw_job_traces(dashboard_url, record.submission_id)
    assert "syncmaster_ray" in traces  # the raw log really is the job's
    assert_no_secrets(traces + (record.log_tail or "") + (record.job_message or "") + (record.reason or ""), app_env)


def make_transfer(catalog, e2e_queue, pg_connections, source_table: str, target_table: str, executors: int = 1):
    return catalog.create_transfer(
        group_id=e2e_queue.group_id, name=f"t_{target_table.split('.')[1]}_{secrets.token_hex(3)}", description="",
        queue_id=e2e_queue.id,
        source_connection_id=pg_connections["source"].id, target_connection_id=pg_connections["target"].id,
        source_params={"type": "postgres", "table_name": source_table},
        target_params={"type": "postgres", "table_name": target_table},
        strategy_params={"type": "full"}, transformations=[],
        resources={"max_parallel_tasks": executors, "cpu_cores_per_task": 1, "ram_bytes_per_task": 1024**3},
        is_scheduled=False, schedule="",
    )


def job_info(dashboard_url: str, submission_id: str) -> dict:
    request = urllib.request.Request(f"{dashboard_url}/api/jobs/{submission_id}", headers=dashboard_auth_headers())
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.load(response)


@pytest.mark.parametrize("executors", [1, 2], ids=["one-executor", "two-executors-partitioned"])
def test_transfer_copies_every_row_and_reports_finished(
    executors, repo, catalog, e2e_queue, pg_connections, data_db_url, ray_head, celery_worker, app_env
):
    # A mixed-case, non-ASCII target name, as SyncMaster accepts it: the table is the one Postgres makes of it.
    source, target_name = unique_table("src"), unique_table("Dst_Ünï")
    target = stored(target_name)
    create_source(data_db_url, source, rows=5000)
    transfer = make_transfer(catalog, e2e_queue, pg_connections, source, target_name, executors=executors)

    run = start_and_wait(repo, transfer, e2e_queue.slug)

    record = repo.get_record(run.id)
    assert run.status == "FINISHED", record.reason if record else None
    assert run.started_at is not None and run.ended_at is not None and run.started_at <= run.ended_at
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
    # The log URL is the dashboard job page and carries what SyncMaster's own tests look for.
    assert run.log_url.startswith(f"{ray_head.dashboard_url}/#/jobs/{record.submission_id}?")
    assert "correlation_id=" in run.log_url and f"run_id={run.id}" in run.log_url
    # The supervisor pruned after settling the run; a job younger than the retention (7 days here) is kept.
    info = job_info(ray_head.dashboard_url, record.submission_id)
    assert info["status"] == "SUCCEEDED"
    assert info["entrypoint"].endswith(f"-m syncmaster_ray.job --run-id {run.id}")
    assert_run_shows_no_secret(ray_head.dashboard_url, record, app_env)
    assert record.ray_job_status == "SUCCEEDED" and record.metrics["copy_seconds"] > 0
    assert record.metrics["source_partitions"] == executors  # hash-partitioned JDBC read, one per executor
    rows = 5000 + 3  # create_source adds three rows of NULLs
    assert record.metrics["rows_written"] == rows
    # Every column type of the source is piped with COPY from one database to the other; Postgres counts the rows.
    assert record.metrics["write_path"] == "copy_pipe"
    assert record.metrics["rows_read"] == rows and record.metrics["copy_pipe_reader"] == "psql"
    assert record.metrics["driver_class_archive"] in ("dumped", "mapped")
    # Each side's connection is checked once, by connect(); onETL's reader and writer do not check it again.
    assert record.log_tail.count("Checking connection availability") == 2, record.log_tail
    assert spark_jvms(ray_head.session_id) == []
    # The driver JVM created RayDP's app master in a Ray namespace of its own; no RayDPSparkMaster actor and its
    # gateway JVM were started for it (job/app_master.py).
    actors = all_actors(ray_head.dashboard_url)
    assert not [a for a in actors if "RayDPSparkMaster" in (a.get("class_name") or "")]
    app_masters = [a for a in actors if (a.get("class_name") or "").endswith("RayAppMaster")]
    assert app_masters and all(a["ray_namespace"].startswith(NAMESPACE_PREFIX) for a in app_masters), app_masters


def target_changed(db_url: str, table: str, before: tuple) -> bool:
    """Whether ``table`` is gone, has other columns or differs from its checksum ``before``."""
    import psycopg

    try:
        return not table_exists(db_url, table) or checksum(db_url, table, lowercase=False) != before
    except psycopg.errors.UndefinedColumn:  # replaced by a table of the transfer's (lowercased) columns
        return True


def stop_and_wait(repo, run_id: int) -> tuple:
    """Request a stop as the server does; the ended run and the seconds it took (reported, never asserted: the
    hang guard is generous because this machine's speed varies 3-5x)."""
    requested = time.monotonic()
    repo.request_stop(run_id)
    final = wait_for(lambda: ended(repo, run_id), 180, "the run to end after the stop request")
    return final, time.monotonic() - requested


# A source that streams 200k rows in about 20 s (Spark fetches 100k at a time, so the first rows land after about
# 10 s): the stop lands while rows are being copied.
SLOW_ROWS, SLOW_EVERY, SLOW_PAUSE = 200_000, 5000, 0.5


def test_stop_during_the_write_leaves_the_target_as_it_was_and_the_next_run_replaces_it(
    repo, catalog, e2e_queue, pg_connections, data_db_url, ray_head, celery_worker, app_env
):
    """Rows go to a staging table swapped in at the end: stopped mid-write, the old target is untouched."""
    from syncmaster_ray.cli.run import send_run_task
    from syncmaster_ray.handlers.postgres import staging_table_for

    # The target named in mixed case (the table Postgres keeps is lowercase): the staging table, the swap and
    # the cleanup must all find the tables the writer made.
    table, source, target_name = unique_table("src"), unique_table("slow"), unique_table("Dst_Mixed")
    target = stored(target_name)
    create_source(data_db_url, table, rows=SLOW_ROWS)
    create_slow_view(data_db_url, source, table, every=SLOW_EVERY, pause_seconds=SLOW_PAUSE)
    create_source(data_db_url, target, rows=50)
    before = checksum(data_db_url, target, lowercase=False)
    transfer = make_transfer(catalog, e2e_queue, pg_connections, source, target_name)
    run = repo.create_run(transfer.id)
    send_run_task(run.id, e2e_queue.slug)
    staging = staging_table_for(target_name)
    # Mid-write for real: the staging table holds rows (written, not committed yet), and the source is not done.
    # (A target touched before that fails at once below: the write did not go through the staging table.)
    written = wait_for(lambda: relation_bytes(data_db_url, staging) or target_changed(data_db_url, target, before),
                       300, "rows to land in the staging table")
    assert not target_changed(data_db_url, target, before), "the target changed while the run was writing"
    # Mid-run, the processes that run what the transfer's author wrote (the driver JVM, the executor and its Python
    # worker) carry no secret of the node: it keeps its settings and the Ray token in files.
    environments = session_environments(ray_head.session_id)
    assert sum("java" in line for line, _ in environments) >= 2, [line[:80] for line, _ in environments]
    leaked = [(name, line[:100]) for line, env in environments for name, secret in node_secrets(app_env).items()
              if secret in env]
    assert leaked == []

    final, latency = stop_and_wait(repo, run.id)

    # Causal: the job ended STOPPED because of our request (a job that ran to its end would be SUCCEEDED).
    assert final.status == "STOPPED" and final.ended_at is not None, repo.get_record(run.id).reason
    assert repo.get_record(run.id).ray_job_status == "STOPPED"
    assert repo.get_record(run.id).reason == "stopped on request"
    assert checksum(data_db_url, target, lowercase=False) == before
    print(f"stopped with {written} bytes in the staging table; stop request -> STOPPED: {latency:.1f} s")
    wait_for(lambda: spark_jvms(ray_head.session_id) == [], 60, "every Spark JVM to exit")
    # The next run into the target (from a small table: the rows it copies are not the point) clears what the
    # stopped one left and replaces the target in one step.
    small = unique_table("small")
    create_source(data_db_url, small, rows=1000)
    again = start_and_wait(repo, make_transfer(catalog, e2e_queue, pg_connections, small, target_name),
                           e2e_queue.slug)
    assert again.status == "FINISHED", repo.get_record(again.id).reason
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, small, lowercase=False)
    assert not table_exists(data_db_url, staging)


def test_run_stopped_before_pickup_ends_stopped_without_a_job(repo, catalog, e2e_queue, pg_connections, ray_head,
                                                               celery_worker):
    from syncmaster_ray.cli.run import send_run_task

    run = repo.create_run(make_transfer(catalog, e2e_queue, pg_connections, unique_table("s"), unique_table("t")).id)
    repo.request_stop(run.id)
    send_run_task(run.id, e2e_queue.slug)

    final = wait_for(lambda: (r := repo.get_run(run.id)).status == "STOPPED" and r, 60, "STOPPED")
    assert final.started_at is None and final.ended_at is not None
    assert repo.get_record(run.id).submission_id is None


def test_transfer_bigger_than_the_cluster_fails_at_once_naming_what_it_asked(
    repo, catalog, e2e_queue, pg_connections, data_db_url, ray_head, celery_worker
):
    source = unique_table("src")
    create_source(data_db_url, source, rows=10)
    transfer = make_transfer(catalog, e2e_queue, pg_connections, source, unique_table("dst"), executors=10)

    run = start_and_wait(repo, transfer, e2e_queue.slug, timeout=180)  # a hang guard: it fails before Spark starts

    record = repo.get_record(run.id)
    assert run.status == "FAILED"
    assert record.error_code == "resources_unavailable"
    assert "11 CPU" in record.reason and "4 CPU" in record.reason
    # At once: it never reserved anything nor waited for capacity.
    assert "Waiting for cluster capacity" not in (record.log_tail or ""), record.log_tail
    group_name = placement_group_name_for(record.submission_id)
    assert [g for g in placement_groups(ray_head.dashboard_url) if g.get("name") == group_name] == []
