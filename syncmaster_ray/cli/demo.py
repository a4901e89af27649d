"""``syncmaster-ray demo``: the main job end to end on local defaults.

Creates a demo database on the local Postgres, fills a source table, starts a local Ray head and a Celery worker,
creates two connections and a transfer, starts a run as the server would, watches it and checks the target.
"""

from __future__ import annotations

import os
import time

import typer

from syncmaster_ray.cli.common import console

DEMO_DB = "syncmaster_ray_demo"


def demo(
    rows: int = typer.Option(1_000_000, help="Rows in the demo source table."),
    admin_url: str = typer.Option(
        "postgresql://postgres@127.0.0.1:5432/postgres", help="A Postgres URL allowed to CREATE DATABASE."
    ),
    broker_url: str = typer.Option("amqp://guest:guest@127.0.0.1:5672/", help="RabbitMQ for the Celery task."),
    executors: int = typer.Option(1, help="max_parallel_tasks of the demo transfer."),
    keep_cluster: bool = typer.Option(False, help="Leave the Ray head running (Ctrl-C to stop) for the dashboard."),
) -> None:
    """Run a real Postgres -> Postgres transfer through Celery, a Ray job and Spark on RayDP."""
    import psycopg
    from cryptography.fernet import Fernet
    from sqlalchemy.engine import make_url

    from syncmaster_ray_dev.local_cluster import LocalCeleryWorker, LocalRayHead

    database_url = make_url(admin_url).set(database=DEMO_DB)
    recreate_database(admin_url, DEMO_DB)
    with psycopg.connect(database_url.render_as_string(hide_password=False), autocommit=True) as conn:
        fill_source(conn, rows)
    env = {
        "SYNCMASTER__DATABASE__URL": database_url.render_as_string(hide_password=False),
        "SYNCMASTER__BROKER__URL": broker_url,
        "SYNCMASTER__ENCRYPTION__SECRET_KEY": Fernet.generate_key().decode(),
    }
    os.environ.update(env)
    from syncmaster_ray.settings import get_settings

    get_settings.cache_clear()
    from syncmaster_ray.cli.common import engine
    from syncmaster_ray.db.migrations import upgrade

    upgrade(get_settings().database.sync_url)
    slug = create_transfer(database_url, executors)
    console.print(f"starting a local Ray head and a Celery worker on queue slug [bold]{slug}[/bold] ...")
    with LocalRayHead(env=env) as head:
        os.environ["SYNCMASTER__RAY__ADDRESS"] = head.dashboard_url
        get_settings.cache_clear()
        os.environ.update(head.client_env())  # this process's `run show` asks the dashboard too
        worker_env = {**env, **head.client_env(), "SYNCMASTER__RAY__ADDRESS": head.dashboard_url}
        token_path = head.client_env().get("RAY_AUTH_TOKEN_PATH")
        console.print(f"Ray dashboard: {head.dashboard_url}" + (f" (token authentication: the token is in "
                                                               f"{token_path})" if token_path else ""))
        with LocalCeleryWorker(queues=slug, env=worker_env):
            status = _run_and_watch(engine())
            with psycopg.connect(database_url.render_as_string(hide_password=False)) as conn:
                copied = conn.execute("SELECT count(*) FROM public.demo_target").fetchone()[0]
            console.print(f"target rows: {copied} of {rows}")
        if keep_cluster:
            console.print("Ray head kept running; press Ctrl-C to stop it")
            _sleep_forever()
    raise typer.Exit(0 if status == "FINISHED" and copied == rows else 1)


def recreate_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def fill_source(conn, rows: int, table: str = "demo_source") -> None:
    """``public.<table>`` with ``rows`` rows of five common column types."""
    from psycopg import sql

    conn.execute(sql.SQL(
        """CREATE TABLE public.{} (
            id bigint PRIMARY KEY, "Name" text, amount numeric(12, 2), active boolean, created_at timestamptz)"""
    ).format(sql.Identifier(table)))
    conn.execute(sql.SQL(
        """INSERT INTO public.{}
           SELECT g, 'row ' || g || ' — ünïcödé', (g %% 100000) / 100.0, g %% 2 = 0,
                  timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second'
           FROM generate_series(1, %s) AS g"""
    ).format(sql.Identifier(table)), (rows,),
    )
    # Statistics, as autovacuum would gather later: the run's progress shows percent and time to go against them.
    conn.execute(sql.SQL("ANALYZE public.{}").format(sql.Identifier(table)))


def create_transfer(database_url, executors: int, name: str = "demo_pg_to_pg", source: str = "public.demo_source",
                    target: str = "public.demo_target") -> str:
    """Two connections to ``database_url``'s database (made once), a queue and the transfer ``name`` from
    ``source`` to ``target``; the queue slug."""
    from syncmaster_ray.cli.common import engine, settings
    from syncmaster_ray.db.repository import CatalogRepository

    catalog = CatalogRepository(engine())
    data = {"host": database_url.host, "port": database_url.port or 5432, "database_name": database_url.database,
            "additional_params": {}}
    auth = {"type": "basic", "user": database_url.username or "postgres", "password": database_url.password or ""}
    for connection in ("demo_source", "demo_target"):
        if catalog.find_connection("demo", connection) is None:
            catalog.create_connection(group_name="demo", name=connection, type_="postgres", data=data, auth=auth,
                                      secret_key=settings().secret_key)
    queue = catalog.ensure_queue("demo", "Ray Queue")
    catalog.create_transfer(
        group_id=queue.group_id, name=name, description="", queue_id=queue.id,
        source_connection_id=catalog.find_connection("demo", "demo_source").id,
        target_connection_id=catalog.find_connection("demo", "demo_target").id,
        source_params={"type": "postgres", "table_name": source},
        target_params={"type": "postgres", "table_name": target},
        strategy_params={"type": "full"}, transformations=[],
        resources={"max_parallel_tasks": executors, "cpu_cores_per_task": 1, "ram_bytes_per_task": 1024**3},
        is_scheduled=False, schedule="",
    )
    return queue.slug


def _run_and_watch(engine) -> str:
    from syncmaster_ray.cli.run import show, start_run, watch_run

    started = time.monotonic()
    run_id = start_run("demo_pg_to_pg")
    status = watch_run(run_id, timeout=1800)
    console.print(f"run {run_id} ended [bold]{status}[/bold] in {time.monotonic() - started:.1f} s (task sent -> end)")
    show(run_id)
    return status


def _sleep_forever() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
