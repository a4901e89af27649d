"""Our pipeline, measured from outside: Celery task sent -> run ended, split with the job's own phase metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.memory import PeakSampler, rss, tree

PHASES = ("queue", "dispatch", "capacity_wait", "ray_setup", "spark_start", "connect", "read_plan", "copy",
          "teardown", "fixed_overhead", "total")


@dataclass
class RunResult:
    run_id: int
    status: str
    phases: dict[str, float]
    worker_peak_rss: int
    cluster_peak_rss_above_idle: int
    driver: str  # "cold" (Spark started for the run) or "standby"


def phases_of(sent_at: float, run: Any, metrics: dict[str, Any]) -> dict[str, float]:
    """Wall-clock phases in seconds from the run's timestamps and the job's metrics (epoch seconds)."""
    claimed, ended = run.started_at.timestamp(), run.ended_at.timestamp()
    job_started = metrics["job_started_at"]
    wait = metrics.get("capacity_wait_seconds", 0.0)
    copy_started = metrics["copy_started_at"]
    return {
        "queue": claimed - sent_at,  # task sent -> a worker claimed the run
        "dispatch": job_started - claimed,  # claimed -> the Ray job's entrypoint runs
        "capacity_wait": wait,
        "ray_setup": metrics["spark_started_at"] - job_started - wait,  # spec, ray.init, transfer actor
        "spark_start": metrics["spark_start_seconds"],
        "connect": metrics["connect_seconds"],
        "read_plan": metrics["read_plan_seconds"],
        "copy": metrics["copy_seconds"],  # read and write stream together in Spark
        "teardown": ended - (copy_started + metrics["copy_seconds"]),
        "fixed_overhead": copy_started - sent_at,  # task sent -> first row read
        "total": ended - sent_at,
    }


def run_once(repo: Any, transfer_id: int, slug: str, worker_pid: int, head_pid: int,
             timeout: float = 1800) -> RunResult:
    from syncmaster_ray.cli.run import send_run_task

    idle = rss(tree(head_pid))
    with PeakSampler(lambda: rss(tree(worker_pid))) as worker, \
            PeakSampler(lambda: rss(tree(head_pid)) - idle) as cluster:
        run = repo.create_run(transfer_id)
        sent_at = time.time()
        send_run_task(run.id, slug)
        run = wait_for_end(repo, run.id, timeout)
    record = repo.get_record(run.id)
    phases = phases_of(sent_at, run, record.metrics) if run.status == "FINISHED" else {}
    driver = (record.metrics or {}).get("driver", "?") if record else "?"
    return RunResult(run.id, run.status, phases, worker.peak, cluster.peak, driver)


def wait_for_end(repo: Any, run_id: int, timeout: float) -> Any:
    from syncmaster_ray.db.models import Status

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = repo.get_run(run_id)
        if Status(run.status).is_terminal():
            return run
        time.sleep(0.1)
    raise TimeoutError(f"run {run_id} did not end within {timeout:.0f} s")
