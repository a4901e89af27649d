"""``python -m bench``: ours vs the stock worker's way vs ``COPY``, same rows, one run, medians and ratios.

Every repetition runs the three ways back to back (ours, stock, COPY) so that machine noise hits them alike.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from bench.copy_floor import copy_pipe
from bench.memory import MiB, PeakSampler, rss, tree
from bench.pipeline import PHASES, run_once

BENCH_DB = "syncmaster_ray_bench"
RESULTS = Path(__file__).parent / "results"
console = Console()


def main(
    rows: int = typer.Option(1_000_000, help="Rows in the source table (10_000_000 for the big run)."),
    repeat: int = typer.Option(3, help="Repetitions of each way; medians are reported."),
    executors: int = typer.Option(1, help="max_parallel_tasks of our transfer."),
    stock_threads: int = typer.Option(2, help="N of the stock way's local[N] Spark session."),
    standby_drivers: int = typer.Option(1, help="SYNCMASTER__RAY__STANDBY_DRIVERS of the bench's Ray head (0: every "
                                        "run starts its own Spark); with standbys, one cold run comes first."),
    admin_url: str = typer.Option("postgresql://postgres@127.0.0.1:5432/postgres", help="Postgres that may "
                                  "CREATE DATABASE."),
    broker_url: str = typer.Option("amqp://guest:guest@127.0.0.1:5672/", help="RabbitMQ for the Celery task."),
    out: Path | None = typer.Option(None, help="Result file (JSON); default bench/results/<UTC time>.json."),
) -> None:
    """Measure a Postgres -> Postgres transfer three ways and print medians and ratios."""
    from cryptography.fernet import Fernet
    from sqlalchemy.engine import make_url

    from syncmaster_ray.cli.demo import create_transfer, fill_source, recreate_database

    db_url = make_url(admin_url).set(database=BENCH_DB).render_as_string(hide_password=False)
    console.print(f"filling {rows:,} rows ...")
    recreate_database(admin_url, BENCH_DB)
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        fill_source(conn, rows)
    env = {"SYNCMASTER__DATABASE__URL": db_url, "SYNCMASTER__BROKER__URL": broker_url,
           "SYNCMASTER__ENCRYPTION__SECRET_KEY": Fernet.generate_key().decode(),
           "SYNCMASTER__RAY__STANDBY_DRIVERS": str(standby_drivers)}
    os.environ.update(env)
    results = measure(env, db_url, rows, repeat, executors, stock_threads, create_transfer, standby_drivers)
    report(results)
    out = out or RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    console.print(f"written {out}")


def measure(env: dict[str, str], db_url: str, rows: int, repeat: int, executors: int, stock_threads: int,
            create_transfer: Any, standby_drivers: int) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    from syncmaster_ray.db.engine import get_engine
    from syncmaster_ray.db.migrations import upgrade
    from syncmaster_ray.db.repository import CatalogRepository, RunRepository
    from syncmaster_ray.settings import get_settings
    from syncmaster_ray_dev.local_cluster import LocalCeleryWorker, LocalRayHead

    get_settings.cache_clear()
    upgrade(get_settings().database.sync_url)
    slug = create_transfer(make_url(db_url), executors)
    engine = get_engine(get_settings().database.sync_url)
    transfer_id = CatalogRepository(engine).find_transfer("demo_pg_to_pg").id
    repo = RunRepository(engine)
    ours, stock, copy_text, copy_binary, cold = [], [], [], [], []
    with LocalRayHead(env=env) as head:
        os.environ["SYNCMASTER__RAY__ADDRESS"] = head.dashboard_url
        get_settings.cache_clear()
        with LocalCeleryWorker(queues=slug, env={**env, "SYNCMASTER__RAY__ADDRESS": head.dashboard_url}) as worker:
            def ours_once() -> dict[str, Any]:
                result = run_once(repo, transfer_id, slug, worker.process.pid, head.process.pid)
                if result.status != "FINISHED":
                    raise SystemExit(f"run {result.run_id} ended {result.status}: {repo.get_record(result.run_id)}")
                console.print(f"  settled after {settle():.1f} s")  # e.g. the next standby's Spark start-up
                return {**result.phases, "driver": result.driver, "worker_peak_mib": result.worker_peak_rss / MiB,
                        "run_peak_mib": result.cluster_peak_rss_above_idle / MiB}

            if standby_drivers:
                console.print("cold run (starts the first standby; not in the medians) ...")
                cold.append(ours_once())
            for index in range(repeat):
                console.print(f"repetition {index + 1}/{repeat}: ours ...")
                ours.append(ours_once())
                console.print("  stock way ...")
                stock.append(run_stock(db_url, stock_threads))
                console.print("  COPY ...")
                copy_text.append(copy_pipe(db_url, "public.demo_source", "public.copy_target"))
                copy_binary.append(copy_pipe(db_url, "public.demo_source", "public.copy_target", binary=True))
    results = summarize(rows, executors, stock_threads, ours, stock, copy_text, copy_binary)
    return {**results, "standby_drivers": standby_drivers, "cold_runs": cold}


def settle(quiet_share: float = 0.2, limit: float = 60) -> float:
    """Wait until the machine's CPUs are busy less than ``quiet_share`` of one second (at most ``limit`` s), so
    background start-ups (the next standby's Spark) do not land in the next measurement; returns the wait."""
    import psutil

    started = time.monotonic()
    # psutil counts idle and iowait time as not busy, over the whole machine.
    while time.monotonic() - started < limit and psutil.cpu_percent(interval=1) / 100 >= quiet_share:
        pass
    return time.monotonic() - started


def run_stock(db_url: str, threads: int) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.stock", "public.demo_source", "public.stock_target", str(threads)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env={**os.environ, "BENCH_DB_URL": db_url},
                               cwd=Path(__file__).parent.parent)
    with PeakSampler(lambda: rss(tree(process.pid))) as sampler:
        stdout, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the stock way failed with exit code {process.returncode}")
    timings = json.loads(stdout.decode().strip().splitlines()[-1])
    return {**timings, "peak_mib": sampler.peak / MiB}


def median_of(samples: list[dict[str, Any]]) -> dict[str, float]:
    numbers = [key for key, value in samples[0].items() if isinstance(value, int | float)]
    return {key: round(statistics.median(s[key] for s in samples), 3) for key in numbers}


def summarize(rows, executors, stock_threads, ours, stock, copy_text, copy_binary) -> dict[str, Any]:
    ours_median, stock_median = median_of(ours), median_of(stock)
    copy_median = round(statistics.median(copy_text), 3)
    data_phase = ours_median["read_plan"] + ours_median["copy"]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)},
        "rows": rows, "repeat": len(ours), "executors": executors, "stock_threads": stock_threads,
        "ours": {"median": ours_median, "samples": ours},
        "stock": {"median": stock_median, "samples": stock},
        "copy_text_seconds": {"median": copy_median, "samples": copy_text},
        "copy_binary_seconds": {"median": round(statistics.median(copy_binary), 3), "samples": copy_binary},
        "ratios": {
            "ours_total_over_stock_total": round(ours_median["total"] / stock_median["total_seconds"], 3),
            "ours_data_phase_over_copy": round(data_phase / copy_median, 3),
            "stock_copy_over_copy": round(stock_median["copy_seconds"] / copy_median, 3),
        },
        "fixed_overhead_seconds": ours_median["fixed_overhead"],
    }


def report(results: dict[str, Any]) -> None:
    table = Table(title=f"{results['rows']:,} rows Postgres -> Postgres, medians of {results['repeat']} (seconds)")
    table.add_column("phase")
    table.add_column("ours", justify="right")
    ours = results["ours"]["median"]
    for phase in PHASES:
        table.add_row(phase, f"{ours[phase]:.2f}")
    table.add_row("Celery worker peak RSS (MiB)", f"{ours['worker_peak_mib']:.0f}")
    table.add_row("run's processes peak RSS above idle cluster (MiB)", f"{ours['run_peak_mib']:.0f}")
    console.print(table)
    drivers = [sample["driver"] for sample in results["ours"]["samples"]]
    console.print(f"our runs' Spark: {', '.join(drivers)} (standbys: {results['standby_drivers']})")
    for run in results["cold_runs"]:
        console.print(f"cold run before the measured ones: total {run['total']:.2f} s, "
                      f"task sent -> first row read {run['fixed_overhead']:.2f} s")
    stock = results["stock"]["median"]
    console.print(f"stock way (local[{results['stock_threads']}] in one process): "
                  + ", ".join(f"{k.removesuffix('_seconds')} {v:.2f}" for k, v in stock.items()))
    console.print(f"COPY pipe: text {results['copy_text_seconds']['median']:.2f} s, "
                  f"binary {results['copy_binary_seconds']['median']:.2f} s")
    console.print("ratios: " + ", ".join(f"{k} = {v}" for k, v in results["ratios"].items()))


if __name__ == "__main__":
    started = time.monotonic()
    typer.run(main)
