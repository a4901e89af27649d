"""Prometheus metrics through Ray's metrics export: the head's scrape port shows each run that ended, once."""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.job.metrics import POLL_SECONDS
from tests.fixtures.postgres_data import create_source, unique_table
from tests.fixtures.runs import wait_for, wait_for_end
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
ROWS = 2000


def scrape(head) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, its labels but Ray's own) -> value, summed over the processes that recorded it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{head.metrics_export_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    ours = ("status", "queue", "le")
    samples: dict = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("ray_syncmaster_ray_"):
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k in ours))
                samples[(sample.name, labels)] += sample.value
    return dict(samples)


def reachable(head) -> bool:
    try:
        scrape(head)
    except OSError:
        return False
    return True


def test_each_ended_run_is_counted_once_with_its_duration_wait_and_rows(
        repo, catalog, e2e_queue, pg_connections, data_db_url, ray_head, celery_worker):
    source = unique_table("metrics_src")
    create_source(data_db_url, source, rows=ROWS)
    good = make_transfer(catalog, e2e_queue, pg_connections, source, unique_table("metrics_dst"))
    bad = make_transfer(catalog, e2e_queue, pg_connections, unique_table("metrics_missing"), unique_table("m_dst"))
    wait_for(lambda: reachable(ray_head), 60, "the head's metrics export to answer")  # a few s after the head
    before = scrape(ray_head)
    runs = [repo.create_run(transfer.id).id for transfer in (good, bad)]
    for run_id in runs:
        send_run_task(run_id, e2e_queue.slug)
    assert [wait_for_end(repo, run_id).status for run_id in runs] == ["FINISHED", "FAILED"]
    queue = e2e_queue.slug

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return scrape_now.get(key, 0.0) - before.get(key, 0.0)

    def both_counted() -> bool:
        nonlocal scrape_now
        scrape_now = scrape(ray_head)
        return all(delta("ray_syncmaster_ray_runs_total", queue=queue, status=status) >= 1
                   for status in ("FINISHED", "FAILED"))

    scrape_now: dict = {}
    wait_for(both_counted, 60, "the recorder to count both runs")
    time.sleep(2 * POLL_SECONDS)  # later polls see both runs again, and must not count them again
    scrape_now = scrape(ray_head)

    assert delta("ray_syncmaster_ray_runs_total", queue=queue, status="FINISHED") == 1
    assert delta("ray_syncmaster_ray_runs_total", queue=queue, status="FAILED") == 1
    written = repo.get_record(runs[0]).rows_written
    assert written >= ROWS and delta("ray_syncmaster_ray_rows_written_total", queue=queue) == written
    assert delta("ray_syncmaster_ray_run_duration_seconds_count", queue=queue, status="FINISHED") == 1
    assert delta("ray_syncmaster_ray_run_duration_seconds_count", queue=queue, status="FAILED") == 1
    assert delta("ray_syncmaster_ray_capacity_wait_seconds_count", queue=queue) == 1  # the FINISHED run's
    # No run is active now: both gauges say so for the queue.
    assert scrape_now[("ray_syncmaster_ray_runs_waiting", (("queue", queue),))] == 0
    assert scrape_now[("ray_syncmaster_ray_runs_running", (("queue", queue),))] == 0
