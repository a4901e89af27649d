"""The metrics recorder's bookkeeping (``job/metrics.py``): each ended run counted once, gauges per queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncmaster_ray.db.repository import EndedRun
from syncmaster_ray.job.metrics import OVERLAP, CountedRuns, active_counts

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def ended(run_id: int, seconds: float) -> EndedRun:
    return EndedRun(run_id, "1-q", "FINISHED", T0, T0 + timedelta(seconds=seconds), {}, 10)


def test_a_run_seen_again_by_an_overlapping_poll_is_counted_once():
    counted = CountedRuns(since=T0)

    assert [run.run_id for run in counted.new([ended(1, 10), ended(2, 20)])] == [1, 2]
    assert counted.since == T0  # never earlier than where it started
    assert [run.run_id for run in counted.new([ended(1, 10), ended(2, 20), ended(3, 30)])] == [3]
    assert counted.new([ended(2, 20), ended(3, 30)]) == []


def test_runs_older_than_the_window_are_forgotten_but_never_counted_again():
    counted = CountedRuns(since=T0)
    counted.new([ended(1, 10)])
    later = OVERLAP.total_seconds() + 600

    assert [run.run_id for run in counted.new([ended(2, later)])] == [2]
    assert 1 not in counted._counted  # the query from `since` can no longer return it
    assert counted.since > T0 + timedelta(seconds=10)


def test_active_runs_by_queue_and_phase_with_zero_for_queues_now_idle():
    phases = [("1-a", "waiting_for_capacity"), ("1-a", "transferring"), ("1-a", None), ("1-b", "transferring")]

    assert active_counts(phases, {"1-c"}) == {"1-a": (1, 2), "1-b": (0, 1), "1-c": (0, 0)}


def test_the_grafana_dashboard_asks_only_for_metrics_the_recorder_records():
    import json
    import re
    from pathlib import Path

    import syncmaster_ray.job.metrics as metrics

    recorded = set(re.findall(r'"(syncmaster_ray_\w+)"', Path(metrics.__file__).read_text()))
    dashboard = json.loads((Path(__file__).parents[2] / "cluster" / "grafana-dashboard.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries.append(next(v["query"] for v in dashboard["templating"]["list"] if v["name"] == "queue"))
    asked = {re.sub(r"_(bucket|count|sum)$", "", name)
             for query in queries for name in re.findall(r"ray_(syncmaster_ray_\w+)", query)}

    assert len(recorded) == 6 and asked == recorded
