"""``FifoSlots``: the worker's limit of runs with a Ray job at a time, served in the order runs were taken.

(``syncmaster_ray.worker`` builds the Celery app from settings when imported, hence the import in a fixture.)
"""

from __future__ import annotations

import importlib
import threading
import time

import pytest

from syncmaster_ray.settings import get_settings


@pytest.fixture(autouse=True)
def FifoSlots(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SYNCMASTER__DATABASE__URL", "postgresql://import:only@127.0.0.1:1/import_only")
    get_settings.cache_clear()
    module = importlib.import_module("syncmaster_ray.worker.pool")
    get_settings.cache_clear()
    return module.FifoSlots


def test_waiters_are_served_in_arrival_order_as_slots_free(FifoSlots):
    slots = FifoSlots(1)
    assert slots.acquire(lambda: True, check_every=0.05)
    served: list[int] = []

    def wait(n: int) -> None:
        assert slots.acquire(lambda: True, check_every=0.05)
        served.append(n)

    threads = []
    for n in range(4):
        thread = threading.Thread(target=wait, args=(n,))
        thread.start()
        threads.append(thread)
        while slots.waiting < n + 1:  # each in the queue before the next arrives
            time.sleep(0.01)
    for _ in range(4):
        slots.release()
        deadline = time.monotonic() + 5
        while len(served) < _ + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads:
        thread.join(5)
    assert served == [0, 1, 2, 3]


def test_a_waiter_that_gives_up_leaves_the_queue_and_the_next_is_served(FifoSlots):
    slots = FifoSlots(1)
    assert slots.acquire(lambda: True, check_every=0.05)
    results: dict[str, bool] = {}
    give_up = threading.Event()
    first = threading.Thread(target=lambda: results.setdefault("first", slots.acquire(
        lambda: not give_up.is_set(), check_every=0.02)))
    first.start()
    while slots.waiting < 1:
        time.sleep(0.01)
    second = threading.Thread(target=lambda: results.setdefault("second", slots.acquire(lambda: True, 0.02)))
    second.start()
    while slots.waiting < 2:
        time.sleep(0.01)
    give_up.set()
    first.join(5)
    assert results == {"first": False} and slots.waiting == 1
    slots.release()
    second.join(5)
    assert results == {"first": False, "second": True} and slots.waiting == 0


def test_keep_waiting_is_asked_while_waiting_not_only_at_the_end(FifoSlots):
    slots = FifoSlots(1)
    assert slots.acquire(lambda: True, check_every=0.05)
    asked = []

    def keep_waiting() -> bool:
        asked.append(time.monotonic())
        return len(asked) < 3

    assert slots.acquire(keep_waiting, check_every=0.02) is False
    assert len(asked) == 3
