"""Test session wiring: fixtures live in ``tests/fixtures/<topic>.py`` and load here."""

from __future__ import annotations

import os

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.ray_cluster",
    "tests.fixtures.worker",
    "tests.fixtures.file_servers",
    "tests.fixtures.horizon_server",
    "tests.fixtures.local_spark",
    "tests.fixtures.secret_scan",
]


def pytest_configure(config) -> None:
    """Under pytest-xdist every worker is a session of its own (its database, vhost, Ray heads and Celery worker);
    the Ray heads of different workers take their ports from disjoint bands."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if worker and count:
        from syncmaster_ray_dev.local_cluster import PortAllocator

        whole, index = PortAllocator.band, int(worker.removeprefix("gw"))
        width = len(whole) // int(count)
        PortAllocator.band = range(whole.start + index * width, whole.start + (index + 1) * width)


# The slowest modules first, measured (`--durations`) on 2 cores: pytest-xdist (`-n 2 --dist loadfile`) hands whole
# modules out in collection order, so the long ones start early and the unit tests fill the end of both workers.
# test_worker_footprint.py first: its worker keeps no job records (retention 0) and deletes every settled job of
# the session head, so the modules after it on the same xdist worker leave the jobs the session-end secret scan
# needs to look at (run near the end, it left a session with none: "too little to look at").
SLOWEST_FIRST = (
    "test_worker_footprint.py", "test_transfer_databases.py", "test_transfer_files.py", "test_bad_input.py",
    "test_recovery.py", "test_transfer_postgres.py", "test_mid_run_failures.py", "test_status.py",
)


def pytest_collection_modifyitems(items: list) -> None:
    """Integration modules by their duration, slowest first; everything else after, in its usual order."""
    rank = {name: index for index, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
