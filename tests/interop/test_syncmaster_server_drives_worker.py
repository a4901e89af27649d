"""The real SyncMaster 0.3.7 server drives our worker unchanged: REST objects, POST /v1/runs, GET /v1/runs/{id}."""

from __future__ import annotations

import pytest

from tests.fixtures.postgres_data import checksum, create_source, unique_table
from tests.integration.test_transfer_postgres import connection_data

pytestmark = [pytest.mark.interop, pytest.mark.integration, pytest.mark.postgres]


def test_run_created_by_syncmaster_server_finishes_on_ray(
    syncmaster_api, interop_queue, data_db_url, ray_head, celery_worker, repo
):
    group_id, queue = interop_queue["group"]["id"], interop_queue["queue"]
    data, auth = connection_data(data_db_url)
    source_conn = syncmaster_api.create_connection(group_id, "pg_source", "postgres", data, auth)
    target_conn = syncmaster_api.create_connection(group_id, "pg_target", "postgres", data, auth)
    source, target = unique_table("interop_src"), unique_table("interop_dst")
    create_source(data_db_url, source, rows=1000)
    transfer = syncmaster_api.create_transfer(
        group_id=group_id, queue_id=queue["id"], name="interop_pg2pg",
        source_connection_id=source_conn["id"], target_connection_id=target_conn["id"],
        source_params={"type": "postgres", "table_name": source},
        target_params={"type": "postgres", "table_name": target},
    )

    created = syncmaster_api.create_run(transfer["id"])
    assert created["status"] == "CREATED"
    run = syncmaster_api.wait_run(created["id"], timeout=600)

    record = repo.get_record(run["id"])
    assert run["status"] == "FINISHED", record.reason if record else None
    assert run["started_at"] and run["ended_at"]
    assert run["log_url"].startswith(f"{ray_head.dashboard_url}/#/jobs/{record.submission_id}?")
    assert "correlation_id" in run["log_url"] and "run_id" in run["log_url"]
    assert checksum(data_db_url, target, lowercase=True) == checksum(data_db_url, source, lowercase=False)
