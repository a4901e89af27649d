"""Test session wiring: fixtures live in ``tests/fixtures/<topic>.py`` and load here."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.ray_cluster",
    "tests.fixtures.worker",
    "tests.fixtures.file_servers",
    "tests.fixtures.horizon_server",
]
