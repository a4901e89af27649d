"""``python -m bench``: our worker against SyncMaster's own, both driven through the real SyncMaster 0.3.7 server,
the way users run transfers: cold, back to back, spaced, in bursts and big, in one bench run, with a ``COPY`` pipe
on the same rows. Prints the goals table and writes the JSON; ``--publish`` also stores it in
``bench/published/`` and renders README's table from it."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from bench import modes, server
from bench.cpu import background_rate
from bench.goals import markdown
from bench.table import PUBLISHED, render_readme
from bench.ways import Way

BENCH_DB = "syncmaster_ray_bench"  # the source and target tables
SYNCMASTER_DB = "syncmaster_ray_bench_syncmaster"  # SyncMaster's tables, and ours beside them
RESULTS = Path(__file__).parent / "results"
ALL_MODES = ("cold", "back_to_back", "burst", "spaced", "big")
console = Console()


def main(
    mode: list[str] = typer.Option(list(ALL_MODES), help="Modes to run, in this order (repeat the option)."),
    rows: int = typer.Option(1_000_000, help="Rows of the main source table."),
    runs: int = typer.Option(3, help="Measured runs of each worker back to back (after one warm-up run)."),
    spaced_runs: int = typer.Option(2, help="Runs of each worker in the spaced mode."),
    idle: float = typer.Option(60, help="Idle seconds before each run of the spaced mode."),
    burst_size: int = typer.Option(6, help="Transfers posted at once in the burst mode."),
    burst_rows: int = typer.Option(50_000, help="Rows of each burst transfer's source."),
    big_rows: int = typer.Option(10_000_000, help="Rows of the big mode's source table."),
    standby_drivers: int | None = typer.Option(None, help="SYNCMASTER__RAY__STANDBY_DRIVERS of the bench's Ray "
                                               "head; unset: the code's default."),
    admin_url: str = typer.Option("postgresql://postgres@127.0.0.1:5432/postgres", help="Postgres that may "
                                  "CREATE DATABASE."),
    broker_url: str = typer.Option("amqp://guest:guest@127.0.0.1:5672/", help="RabbitMQ for the Celery tasks."),
    publish: bool = typer.Option(False, help="Store the result in bench/published/ and render README's table."),
) -> None:
    """Measure Postgres -> Postgres transfers through the real SyncMaster server, on our worker and on SyncMaster's
    own; print the goals table."""
    from syncmaster_ray.cli.demo import recreate_database

    unknown = set(mode) - set(ALL_MODES)
    if unknown:
        raise typer.BadParameter(f"unknown mode(s) {sorted(unknown)}; known: {', '.join(ALL_MODES)}")
    settings = {} if standby_drivers is None else {"SYNCMASTER__RAY__STANDBY_DRIVERS": str(standby_drivers)}
    shape = {"rows": rows, "big_rows": big_rows, "burst_size": burst_size, "burst_rows": burst_rows}
    data_url = prepare_database(admin_url, mode, shape)
    recreate_database(admin_url, SYNCMASTER_DB)
    env = {"SYNCMASTER__DATABASE__URL": _database(admin_url, SYNCMASTER_DB), "SYNCMASTER__BROKER__URL": broker_url,
           "SYNCMASTER__ENCRYPTION__SECRET_KEY": _fernet_key(), **settings}
    os.environ.update(env)
    measured = measure(env, data_url, mode, runs=runs, spaced_runs=spaced_runs, idle=idle, burst_size=burst_size)
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": _machine(), **shape,
              "runs": runs, "settings": settings, **measured}
    print(markdown(result))  # plain: a terminal-wide table would wrap
    write(result, publish)


def prepare_database(admin_url: str, chosen: list[str], shape: dict[str, int]) -> str:
    """A fresh database with the sources the chosen modes read; its URL."""
    import psycopg

    from syncmaster_ray.cli.demo import fill_source, recreate_database

    url = _database(admin_url, BENCH_DB)
    recreate_database(admin_url, BENCH_DB)
    tables = {"demo_source": shape["rows"], "burst_source": shape["burst_rows"],
              "big_source": shape["big_rows"] if "big" in chosen else 1}
    with psycopg.connect(url, autocommit=True) as conn:
        for table, count in tables.items():
            console.print(f"filling {table}: {count:,} rows ...")
            fill_source(conn, count, table)
        conn.execute("VACUUM ANALYZE")
    return url


def measure(env: dict[str, str], data_url: str, chosen: list[str], *, runs: int, spaced_runs: int, idle: float,
            burst_size: int) -> dict[str, Any]:
    from syncmaster_ray.db.engine import get_engine
    from syncmaster_ray.db.repository import RunRepository
    from syncmaster_ray.settings import get_settings

    results: dict[str, Any] = {}
    with server.installation(env["SYNCMASTER__DATABASE__URL"], data_url, env["SYNCMASTER__BROKER__URL"],
                             env["SYNCMASTER__ENCRYPTION__SECRET_KEY"], modes.sources(burst_size), env) as setup:
        repo = RunRepository(get_engine(get_settings().database.sync_url))
        ours = Way("ours", setup.client, setup.transfers["ours"], repo=repo,
                   processes={"cluster": setup.head.process.pid, "worker": setup.ours_worker.process.pid})
        stock = Way("stock", setup.client, setup.transfers["stock"],
                    processes={"worker": setup.stock_worker.process.pid})
        bench = modes.Bench(ours, stock, data_url)
        for name in chosen:
            if name != "cold" and "background" not in results:
                results["background"] = _background(bench)
            results[name] = _run_mode(bench, name, runs=runs, spaced_runs=spaced_runs, idle=idle,
                                      burst_size=burst_size)
    background = results.pop("background", 0.0)
    return {"background_cpu_per_second": background, "modes": results}


def _run_mode(bench: modes.Bench, name: str, *, runs: int, spaced_runs: int, idle: float,
              burst_size: int) -> dict[str, Any]:
    if name == "back_to_back":
        return modes.back_to_back(bench, runs)
    if name == "spaced":
        return modes.spaced(bench, spaced_runs, idle)
    if name == "burst":
        return modes.burst(bench, burst_size)
    return getattr(modes, name)(bench)


def _background(bench: modes.Bench) -> float:
    """The idle machine's busy CPU per second (the head, the servers, the services), taken out of every span."""
    rate = background_rate()
    console.print(f"background: {rate:.3f} busy CPU seconds per second")
    bench.ours.background = bench.stock.background = rate
    return round(rate, 4)


def write(result: dict[str, Any], publish: bool) -> None:
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    for folder in [RESULTS, PUBLISHED] if publish else [RESULTS]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stamp}.json").write_text(json.dumps(result, indent=1) + "\n")
        console.print(f"written {folder / f'{stamp}.json'}")
    if publish:
        render_readme()
        console.print("README.md's bench table rendered")


def _database(admin_url: str, name: str) -> str:
    """``admin_url`` on database ``name``; with a password, which SyncMaster's settings require (trust auth, as on
    this machine, ignores it)."""
    from sqlalchemy.engine import make_url

    url = make_url(admin_url).set(database=name)
    return url.set(password=url.password or "unused").render_as_string(hide_password=False)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1)}


if __name__ == "__main__":
    typer.run(main)
