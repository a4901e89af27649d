"""The capacity queue's order and turn rule (pure logic; the queue over Postgres and Ray is
tests/integration/test_capacity_queue.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncmaster_ray.queue_order import QueuedRun, turn_of, with_priorities

T0 = datetime(2026, 12, 6, tzinfo=UTC)
GiB = 1024**3


def entry(run_id: int, cpus: float, slug: str = "1-q", claimed_after: float = 0) -> QueuedRun:
    return QueuedRun(run_id, slug, T0 + timedelta(seconds=claimed_after), {"CPU": cpus, "memory": GiB})


def test_the_order_is_priority_then_claim_time_then_run_id():
    entries = [entry(5, 1, "1-nightly", 0), entry(4, 1, "1-batch", 2), entry(3, 1, "1-batch", 1),
               entry(2, 1, "1-interactive", 9), entry(1, 1, "1-batch", 1)]
    ordered = with_priorities(entries, {"1-interactive": 10, "1-nightly": -1})
    assert [e.run_id for e in ordered] == [2, 1, 3, 4, 5]
    assert [e.priority for e in ordered] == [10, 0, 0, 0, -1]


def test_the_head_of_the_queue_always_goes():
    queue = [entry(1, 4), entry(2, 1)]
    assert turn_of(1, queue, {"CPU": 0, "memory": 0}) == "first"


def test_a_later_run_goes_only_when_everything_ahead_fits_too():
    queue = [entry(1, 3), entry(2, 2)]
    assert turn_of(2, queue, {"CPU": 4, "memory": 8 * GiB}) is None  # 3 + 2 CPUs > 4: it would delay run 1
    assert turn_of(2, queue, {"CPU": 5, "memory": 8 * GiB}) == "backfill"
    assert turn_of(2, queue, {"CPU": 5, "memory": 1.5 * GiB}) is None  # memory counts too


def test_a_run_whose_entry_went_stale_waits_until_it_is_back_in_the_queue():
    assert turn_of(9, [entry(1, 4)], {"CPU": 8, "memory": 8 * GiB}) is None
