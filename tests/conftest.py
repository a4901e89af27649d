"""Test session wiring: fixtures live in ``tests/fixtures/<topic>.py`` and load here."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.ray_cluster",
    "tests.fixtures.worker",
    "tests.fixtures.file_servers",
    "tests.fixtures.horizon_server",
    "tests.fixtures.local_spark",
]


def pytest_collection_modifyitems(items: list) -> None:
    """Tests marked ``last`` go after all others (a stable sort keeps everyone else's order)."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
