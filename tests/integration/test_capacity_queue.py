"""The capacity queue on the session head (4 CPUs) and the session database: runs get capacity first come, first
served within their slug's priority, across slugs. Each "run" is a real SyncMaster run claimed in order and a
process doing the entrypoint's own reservation (``tests/fixtures/capacity_job.py``: the queue, then a real
placement group), without Spark, so the order is checked in seconds. The same order with real transfers and
Celery workers is the last test here and ``test_soak.py`` (long tier).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from syncmaster_ray.cli.run import send_run_task
from syncmaster_ray.db.models import Status
from syncmaster_ray.db.repository import utcnow
from syncmaster_ray.errors import Phase
from syncmaster_ray.queue_order import STALE_SECONDS
from syncmaster_ray.status import gather
from syncmaster_ray_dev.local_cluster import LocalCeleryWorker
from tests.fixtures.postgres_data import checksum, create_slow_view, create_source, unique_table
from tests.fixtures.runs import wait_for, wait_for_end
from tests.integration.test_transfer_postgres import make_transfer

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Holder:
    """One run and its stand-in job."""

    run_id: int
    release_file: Path
    process: subprocess.Popen | None = None

    def release(self) -> None:
        self.release_file.touch()


@pytest.fixture
def claim(repo, catalog, pg_connections, tmp_path) -> Iterator:
    """``claim(queue) -> Holder``: a run of a transfer on ``queue``, claimed now (its place in the order)."""
    holders: list[Holder] = []

    def claim_one(queue) -> Holder:
        transfer = make_transfer(catalog, queue, pg_connections, unique_table("cq_src"), unique_table("cq_dst"))
        run = repo.create_run(transfer.id)
        assert repo.claim_run(run.id, started_at=utcnow(), log_url="-", submission_id=f"capacity-test-{run.id}")
        holders.append(Holder(run.id, tmp_path / f"release-{run.id}"))
        return holders[-1]

    yield claim_one
    for holder in holders:
        holder.release()
    for holder in holders:
        if holder.process is not None:
            try:
                holder.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                holder.process.kill()
        repo.finish_run(holder.run_id, Status.FINISHED)


@pytest.fixture
def start(ray_head, app_env) -> Iterator:
    """``start(holder, cpus, priorities=None)``: its stand-in job, asking for ``cpus`` of the head."""

    def start_one(holder: Holder, cpus: float, priorities: dict[str, int] | None = None) -> Holder:
        env = {**os.environ, **app_env, **ray_head.ray_env(), "RAY_ADDRESS": ray_head.gcs_address,
               "SYNCMASTER__RAY__QUEUE_PRIORITIES": json.dumps(priorities or {})}
        holder.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.capacity_job", str(holder.run_id), str(cpus),
             str(holder.release_file)], cwd=ROOT, env=env)
        return holder

    return start_one


def phase(repo, holder: Holder) -> str | None:
    record = repo.get_record(holder.run_id)
    assert holder.process is None or holder.process.poll() in (None, 0), f"run {holder.run_id}'s stand-in failed"
    return record.phase if record else None


def queued(repo, holder: Holder) -> bool:
    return phase(repo, holder) == Phase.WAITING_FOR_CAPACITY


def granted_at(repo, holder: Holder) -> float:
    return wait_for(lambda: (repo.get_record(holder.run_id).metrics or {}).get("capacity_granted_at"), 120,
                    f"run {holder.run_id} to get capacity")


def released_at(repo, holder: Holder) -> float:
    holder.release()
    return wait_for(lambda: (repo.get_record(holder.run_id).metrics or {}).get("capacity_released_at"), 60,
                    f"run {holder.run_id} to release its capacity")


def waiting_order(repo, ray_head, priorities: dict[str, int] | None = None) -> list[tuple[int, int]]:
    """(run id, place) of the runs ``syncmaster-ray status`` lists as waiting for capacity, as it lists them."""
    report = gather(repo, ray_head.dashboard_url, 0, priorities)
    return [(line.run_id, line.queue_place) for line in report.waiting]


def test_a_big_run_gets_capacity_before_small_runs_claimed_after_it_across_two_slugs(repo, catalog, claim, start,
                                                                                      ray_head):
    slug_a, slug_b = catalog.ensure_queue("e2e", "Capacity A"), catalog.ensure_queue("e2e", "Capacity B")
    small_1, small_2, big, small_3, small_4 = (claim(queue) for queue in (slug_a, slug_b, slug_b, slug_a, slug_b))
    for holder in (small_1, small_2):
        start(holder, 2)
    first_two = [granted_at(repo, holder) for holder in (small_1, small_2)]
    start(big, 4)
    wait_for(lambda: queued(repo, big), 120, "the big run to queue")
    for holder in (small_3, small_4):
        start(holder, 2)
    wait_for(lambda: queued(repo, small_3) and queued(repo, small_4), 120, "the later small runs to queue")
    assert waiting_order(repo, ray_head) == [(big.run_id, 1), (small_3.run_id, 2), (small_4.run_id, 3)]
    # Two CPUs are free once the first small run ends: enough for a later small run, not for the big one.
    first_released = released_at(repo, small_1)
    time.sleep(3)  # two CPUs stay free a while: Ray would place a pending small group within it, and each
    # queued job looks at the queue every second
    second_released = released_at(repo, small_2)
    big_granted = granted_at(repo, big)
    big_released = released_at(repo, big)
    later = [granted_at(repo, holder) for holder in (small_3, small_4)]

    assert max(first_two) < first_released
    assert big_granted >= second_released, "the big run got capacity before both earlier runs had released theirs"
    assert all(granted >= second_released for granted in later), "a later small run took the freed CPUs first"
    assert all(granted >= big_released for granted in later), "a later small run went before the big one"
    record = repo.get_record(big.run_id)
    assert record.metrics["capacity_turn"] == "first" and record.metrics["capacity_runs_ahead"] == 0


def test_priorities_put_a_later_run_of_a_higher_slug_first(repo, catalog, claim, start, ray_head):
    low, high = catalog.ensure_queue("e2e", "Capacity Nightly"), catalog.ensure_queue("e2e", "Capacity Interactive")
    priorities = {low.slug: -5, high.slug: 10}
    holding, low_run, high_run = claim(low), claim(low), claim(high)
    start(holding, 4, priorities)
    granted_at(repo, holding)
    start(low_run, 2, priorities)
    wait_for(lambda: queued(repo, low_run), 120, "the low-priority run to queue")
    start(high_run, 4, priorities)
    wait_for(lambda: queued(repo, high_run), 120, "the high-priority run to queue")
    assert waiting_order(repo, ray_head, priorities) == [(high_run.run_id, 1), (low_run.run_id, 2)]
    time.sleep(3)  # the low-priority run, whose group waits in Ray already, looks at the queue every second: it
    # sees the high one ahead and gives way (within that second, either pending group could be placed first)
    released = released_at(repo, holding)
    high_granted = granted_at(repo, high_run)
    high_released = released_at(repo, high_run)
    low_granted = granted_at(repo, low_run)

    assert released <= high_granted < high_released <= low_granted
    # It went first (nothing was ahead), its group waiting for the CPUs; the later high-priority run took its place.
    assert repo.get_record(low_run.run_id).metrics["capacity_yields"] >= 1


def test_runs_that_fit_together_go_together_and_dead_entries_hold_nobody(repo, catalog, claim, start):
    queue = catalog.ensure_queue("e2e", "Capacity Backfill")
    dead, first, second = claim(queue), claim(queue), claim(queue)
    holding = start(claim(queue), 4)
    granted_at(repo, holding)
    start(first, 2)
    start(second, 2)
    wait_for(lambda: queued(repo, first) and queued(repo, second), 120, "both runs to queue")
    cluster = repo.get_record(first.run_id).capacity_cluster
    assert sorted(entry.run_id for entry in repo.capacity_queue(STALE_SECONDS, cluster)) == [first.run_id,
                                                                                            second.run_id]
    assert repo.capacity_queue(STALE_SECONDS, "another-cluster:6379") == []
    # A job that died in the queue, claimed before both and asking for the whole head: its heartbeat stopped, and
    # it must not hold the runs behind it.
    repo.join_capacity_queue(dead.run_id, cluster, {"CPU": 4.0, "memory": 0.0})
    repo.record(dead.run_id, capacity_heartbeat_at=utcnow() - timedelta(seconds=STALE_SECONDS + 1))
    released_at(repo, holding)
    granted_at(repo, first)
    granted_at(repo, second)

    turns = [repo.get_record(holder.run_id).metrics["capacity_turn"] for holder in (first, second)]
    assert turns[0] == "first" and turns[1] in ("first", "backfill")
    assert repo.get_record(dead.run_id).phase == Phase.WAITING_FOR_CAPACITY  # still there, and ignored


@pytest.mark.long
@pytest.mark.postgres
@pytest.mark.timeout(1800)
def test_real_transfers_on_two_slugs_and_workers_give_the_big_run_capacity_before_later_small_ones(
    repo, catalog, pg_connections, data_db_url, ray_head, app_env, tmp_path
):
    """The issue's case with real transfers, two Celery workers on two slugs: two 1-executor runs (2 CPUs each)
    fill the head, then a 3-executor run (4 CPUs) waits, then two more 1-executor runs: the big run gets capacity
    before both later small ones, and every run copies every row."""
    slugs = [catalog.ensure_queue("e2e", f"Capacity E2E {name}") for name in ("A", "B")]
    table, source = unique_table("cqe_src"), unique_table("cqe_slow")
    create_source(data_db_url, table, rows=40_000)
    create_slow_view(data_db_url, source, table, every=2000, pause_seconds=0.5)  # about 10 s of copying
    env = {**app_env, "SYNCMASTER__RAY__ADDRESS": ray_head.dashboard_url}
    workers = [LocalCeleryWorker(queues=queue.slug, env=env, concurrency=None, log_path=tmp_path / f"{i}.log")
               for i, queue in enumerate(slugs)]
    runs = []

    def send(queue, executors: int) -> int:
        transfer = make_transfer(catalog, queue, pg_connections, source, unique_table("cqe_dst"), executors)
        run = repo.create_run(transfer.id)
        send_run_task(run.id, queue.slug)
        runs.append((run.id, transfer.target_params["table_name"]))
        return run.id

    def phase_of(run_id: int) -> str | None:
        return getattr(repo.get_record(run_id), "phase", None)

    try:
        for worker in workers:
            worker.start()
        first_two = [send(slugs[0], 1), send(slugs[1], 1)]
        wait_for(lambda: all(phase_of(run_id) == "transferring" for run_id in first_two), 600, "two small runs")
        big = send(slugs[1], 3)
        wait_for(lambda: phase_of(big) == "waiting_for_capacity", 300, "the big run to queue")
        later = [send(slugs[0], 1), send(slugs[1], 1)]
        finished = [wait_for_end(repo, run_id, timeout=1200) for run_id, _ in runs]
    finally:
        for worker in workers:
            worker.stop()

    assert [run.status for run in finished] == ["FINISHED"] * 5, [repo.get_record(r.id).reason for r in finished]
    granted = {run_id: repo.get_record(run_id).metrics["capacity_granted_at"] for run_id, _ in runs}
    assert all(granted[big] < granted[run_id] for run_id in later), granted
    expected = checksum(data_db_url, table, lowercase=False)
    assert all(checksum(data_db_url, target, lowercase=True) == expected for _, target in runs)
