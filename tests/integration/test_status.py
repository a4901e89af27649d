"""``syncmaster-ray status`` on the live session cluster: one run executing, one waiting for capacity, a failure;
and the two runs that cannot run together queue for capacity instead of overlapping or deadlocking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from syncmaster_ray.cli.run import send_run_task
from tests.fixtures.postgres_data import checksum, create_slow_view, create_source, unique_table
from tests.fixtures.runs import start_and_wait, wait_for
from tests.integration.test_cli import cli
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration]


def status_json(env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-m", "syncmaster_ray.cli", "status", "--json", "--failures", "3"],
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


def test_status_shows_capacity_waiting_executing_and_failures_and_runs_queue_for_capacity(
    repo, catalog, engine, e2e_queue, pg_connections, data_db_url, ray_head, celery_worker, app_env
):
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url}
    # A failure to list: a definition the job refuses before it reserves anything (no Spark session spent on it).
    refused = make_transfer(catalog, e2e_queue, pg_connections, unique_table("nope"), unique_table("never"))
    with engine.begin() as connection:
        connection.execute(text("UPDATE transfer SET target_params = CAST(:params AS json) WHERE id = :id"),
                           {"params": '{"type": "postgres"}', "id": refused.id})
    failed = start_and_wait(repo, refused, e2e_queue.slug)
    # A source that streams for about 6 s whatever the machine's speed (a pause every 2000 rows), so the big run
    # is still copying while status is asked, without copying many rows.
    table, source = unique_table("st_src"), unique_table("st_slow")
    create_source(data_db_url, table, rows=40_000)
    create_slow_view(data_db_url, source, table, every=2000, pause_seconds=0.3)
    # 3 of the session head's 4 CPUs, then 2 more: the second waits for the first.
    big = make_transfer(catalog, e2e_queue, pg_connections, source, unique_table("st_big"), executors=2)
    small = make_transfer(catalog, e2e_queue, pg_connections, source, unique_table("st_small"))
    runs = [repo.create_run(big.id), repo.create_run(small.id)]
    send_run_task(runs[0].id, e2e_queue.slug)
    wait_for(lambda: getattr(repo.get_record(runs[0].id), "phase", None) == "transferring", what="the transfer phase")
    send_run_task(runs[1].id, e2e_queue.slug)

    def first_executing_second_waiting() -> dict | None:
        report = status_json(env)
        waiting = {line["run_id"] for line in report["waiting"]}
        executing = {line["run_id"]: line for line in report["executing"]}
        if runs[1].id in waiting and runs[0].id in executing:
            return report
        assert repo.get_run(runs[0].id).status == "STARTED", "never saw one run executing while the other waited"
        return None

    seen = wait_for(first_executing_second_waiting, what="one run executing while the other waited", interval=1)
    assert seen["capacity"]["nodes"] == 1 and seen["capacity"]["total"]["CPU"] == 4
    assert seen["capacity"]["reserved"]["CPU"] == 3 and seen["free"]["CPU"] == 1
    assert seen["capacity"]["groups_waiting"] == 1
    assert [(line["run_id"], line["queue_place"]) for line in seen["waiting"]] == [(runs[1].id, 1)]
    line = {line["run_id"]: line for line in seen["executing"]}[runs[0].id]
    assert line["log_url"].startswith(ray_head.dashboard_url) and line["phase"] == "transferring"
    failures = {line["run_id"]: line for line in seen["failures"]}
    assert failures[failed.id]["error_code"] == "invalid_params" and "table_name" in failures[failed.id]["reason"]
    for run in runs:
        wait_for(lambda run=run: repo.get_run(run.id).status == "FINISHED", what=f"run {run.id} to finish")
    # Transfers that cannot run together queue for capacity. Causal, not timed: the small run had started its job
    # while the big one held the capacity, and was placed only once the big one released it, so their transfers
    # never overlapped; both copied every row.
    first, second = (repo.get_record(run.id).metrics for run in runs)
    assert second["job_started_at"] < first["capacity_released_at"], (first, second)
    assert second["capacity_granted_at"] >= first["capacity_released_at"], (first, second)
    print(f"capacity wait of the run placed second: {second['capacity_wait_seconds']:.1f} s")
    for transfer in (big, small):
        assert checksum(data_db_url, transfer.target_params["table_name"], lowercase=True) == checksum(
            data_db_url, table, lowercase=False)


def test_a_slow_copy_shows_its_rows_growing_in_run_show_and_status(
    repo, catalog, e2e_queue, pg_connections, data_db_url, ray_head, celery_worker, app_env
):
    """Progress while a run copies: rows so far (here counted by the Postgres target, as the COPY pipe copies
    outside Spark) in our record, `run show` and `status`; samples every few seconds, each at least the last."""
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url}
    table, source = unique_table("pr_src"), unique_table("pr_slow")
    create_source(data_db_url, table, rows=60_000)
    create_slow_view(data_db_url, source, table, every=3000, pause_seconds=0.6)  # about 12 s of copying
    run = repo.create_run(make_transfer(catalog, e2e_queue, pg_connections, source, unique_table("pr_dst")).id)
    send_run_task(run.id, e2e_queue.slug)

    samples, shown, in_status = [], "", None
    while repo.get_run(run.id).status in ("CREATED", "STARTED"):
        progress = getattr(repo.get_record(run.id), "progress", None)
        if progress and (not samples or progress["updated_at"] != samples[-1]["updated_at"]):
            samples.append(progress)
            if not shown:
                result = cli("run", "show", str(run.id), env=env, timeout=120)
                assert result.returncode == 0, result.stderr
                shown = result.stdout
                executing = {line["run_id"]: line for line in status_json(env)["executing"]}
                in_status = executing.get(run.id, {}).get("progress")
        time.sleep(0.5)

    assert repo.get_run(run.id).status == "FINISHED", repo.get_record(run.id).reason
    rows = [sample["rows"] for sample in samples]
    print(f"progress samples (rows): {rows}")
    assert len(rows) >= 2 and rows == sorted(rows) and rows[0] < rows[-1], samples
    assert rows[-1] <= repo.get_record(run.id).rows_written
    # A sample before the first row arrived says 0 rows (a slow machine's staging table takes a while).
    assert all(sample["rows_per_second"] > 0 for sample in samples if sample["rows"] > 0), samples
    assert "progress" in shown and "rows in" in shown, shown
    assert in_status and in_status["rows"] > 0, in_status
