"""Our pipeline, measured from outside: run sent -> run ended, split with the job's own phase metrics."""

from __future__ import annotations

from typing import Any


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
