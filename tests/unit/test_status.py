from datetime import UTC, datetime

from syncmaster_ray.status import Capacity, RunLine, StatusReport, capacity_from

GiB = 1024**3


def node(state="ALIVE", cpu=4.0, memory=8 * GiB):
    return {"state": state, "resources_total": {"CPU": cpu, "memory": memory, "object_store_memory": 1.0}}


def group(state, *bundles, name=""):
    return {"state": state, "name": name,
            "bundles": [{"unit_resources": {"CPU": c, "memory": m}} for c, m in bundles]}


def test_capacity_counts_live_nodes_and_groups_that_hold_resources():
    capacity = capacity_from(
        [node(), node(cpu=2, memory=4 * GiB), node(state="DEAD")],
        [group("CREATED", (1, GiB), (1, GiB)), group("PENDING", (3, GiB)), group("REMOVED", (1, GiB))],
    )
    assert capacity.nodes == 2
    assert capacity.total == {"CPU": 6, "memory": 12 * GiB}
    assert capacity.reserved == {"CPU": 2, "memory": 2 * GiB}
    assert capacity.free == {"CPU": 4, "memory": 10 * GiB}
    assert capacity.groups_waiting == 1
    assert capacity.standbys == 0


def test_capacity_counts_placed_standbys_as_reserved():
    capacity = capacity_from(
        [node()],
        [group("CREATED", (1, GiB), (1, GiB), name="syncmaster-db/standby-0-ab12cd34"),
         group("PENDING", (1, GiB), (1, GiB), name="syncmaster-db/standby-1-ef56ab78"),
         group("CREATED", (1, GiB), name="syncmaster-db-run-7-pg")],
    )
    assert capacity.standbys == 1
    assert capacity.reserved == {"CPU": 3, "memory": 3 * GiB}


def test_report_renders_without_a_cluster(monkeypatch):
    from rich.console import Console

    from syncmaster_ray.cli import status as status_cli

    line = RunLine(7, "t", "FAILED", "ended", datetime.now(UTC), datetime.now(UTC), None, "source", "boom [x]")
    report = StatusReport(Capacity(error="the Ray cluster at http://h:8265 did not answer: URLError"), [], [], [line])
    console = Console(record=True, width=200)
    monkeypatch.setattr(status_cli, "console", console)
    status_cli.render(report)
    text = console.export_text()
    assert "did not answer" in text and "[source] boom [x]" in text and "Recent failures (1)" in text
    assert '"run_id": 7' in report.as_json()
