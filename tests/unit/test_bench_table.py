"""The bench's goals table: computed from a result as the issue states them, and README shows the newest one."""

from __future__ import annotations

from bench.goals import goals, markdown
from bench.table import README, rendered


def _run(wall: float, cpu: float, **extra: object) -> dict:
    return {"wall": wall, "cpu": cpu, "worker_peak_mib": 150, "cluster_above_idle_mib": 900, **extra}


RESULT = {
    "date": "2026-12-06T04:00:00+00:00", "machine": {"cpus": 2}, "rows": 1_000_000, "big_rows": 10_000_000,
    "burst_size": 6, "burst_rows": 50_000, "settings": {},
    "modes": {
        "back_to_back": {"ours": [_run(10, 20), _run(12, 22), _run(30, 40)], "stock": [_run(20, 30)] * 3},
        "big": {"ours": [_run(100, 150, phases={"read_plan": 1.0, "copy": 20.0})], "stock": [_run(150, 200)],
                "copy_seconds": [15.0]},
    },
}


def test_each_goal_compares_the_medians_of_one_run():
    found = {goal.measure: goal for goal in goals(RESULT)}
    back_to_back = found["back to back, warm runs, ours / stock"]
    assert back_to_back.value == 0.6 and back_to_back.met  # median 12 s against 20 s
    assert found["CPU seconds per run, warm, back to back, ours / stock"].value == 0.73
    data = found["10,000,000 rows, data phase / COPY pipe"]
    assert data.value == 1.4 and data.met
    linear = found["10,000,000 / 1,000,000 rows, our time"]
    assert linear.limit == 11 and linear.value == 8.33 and linear.met
    assert not any(goal.measure.startswith("with idle time") for goal in goals(RESULT))  # the mode did not run


def test_a_missed_goal_is_marked():
    slow = {**RESULT, "modes": {**RESULT["modes"], "big": {
        "ours": [_run(200, 150, phases={"read_plan": 1.0, "copy": 30.0})], "stock": [_run(150, 200)],
        "copy_seconds": [15.0]}}}
    table = markdown(slow)
    assert "| big table, ours / stock | <= 0.5 | 1.33 | 200.0 s / 150.0 s | **no** |" in table


def test_readme_shows_the_newest_published_result():
    text = README.read_text()
    assert rendered(text) == text, "README.md's bench table is stale: run python -m bench.table"
