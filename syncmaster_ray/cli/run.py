"""``syncmaster-ray run``: start (as the server does: a run row plus the Celery task), show, watch and stop."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from syncmaster_ray.cli.common import console, engine, err_console

app = typer.Typer(help="Runs: start, watch, show and stop.", no_args_is_help=True)


def send_run_task(run_id: int, queue_slug: str) -> None:
    """Publish ``run_transfer_task(run_id=N)`` to the queue slug exactly as SyncMaster's server does."""
    from syncmaster_ray.worker.app import app as celery_app

    celery_app.send_task("run_transfer_task", kwargs={"run_id": run_id}, queue=queue_slug)


def start_run(transfer: str) -> int:
    from syncmaster_ray.db.repository import CatalogRepository, RunRepository

    catalog = CatalogRepository(engine())
    found = catalog.find_transfer(transfer)
    if found is None:
        raise typer.BadParameter(f"no transfer {transfer!r}")
    run = RunRepository(engine()).create_run(found.id)
    send_run_task(run.id, catalog.queue_of(found.id).slug)
    return run.id


def watch_run(run_id: int, timeout: float) -> str:
    """Print each status change, and a progress bar while the run copies, until the run ends; returns the final
    status."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    from syncmaster_ray.db.models import Status
    from syncmaster_ray.db.repository import RunRepository
    from syncmaster_ray.status import progress_text

    repo = RunRepository(engine())
    deadline = time.monotonic() + timeout
    last = None
    columns = (TextColumn(f"run {run_id}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=True) as bar:
        copying = None
        while time.monotonic() < deadline:
            run = repo.get_run(run_id)
            if run is None:
                raise typer.BadParameter(f"no run {run_id}")
            if run.status != last:
                last = run.status
                bar.console.print(f"run {run_id}: [bold]{run.status}[/bold]"
                                  + (f"  {run.log_url}" if run.log_url else ""))
            if Status(run.status).is_terminal():
                return run.status
            record = repo.get_record(run_id)
            if record is not None and record.progress:
                sample = record.progress
                if copying is None:
                    copying = bar.add_task("", total=sample.get("total_estimate"))
                bar.update(copying, completed=sample.get("rows", 0), description=progress_text(sample))
            time.sleep(1)
    err_console.print(f"run {run_id} did not end within {timeout:.0f} s (still {last})")
    return last or "UNKNOWN"


@app.command()
def start(
    transfer: str = typer.Argument(..., help="Transfer id or name."),
    watch: bool = typer.Option(True, help="Wait for the run to end and exit 1 unless it FINISHED."),
    timeout: float = typer.Option(3600, help="Seconds to watch before giving up (the run goes on)."),
) -> None:
    """Create a run and send it to the transfer's queue, as the server's POST /v1/runs does."""
    run_id = start_run(transfer)
    console.print(f"run {run_id} created and sent")
    if watch:
        status = watch_run(run_id, timeout)
        show(run_id)
        raise typer.Exit(0 if status == "FINISHED" else 1)


@app.command()
def show(run_id: int = typer.Argument(..., help="Run id.")) -> None:
    """Show a run: status, times, log URL, Ray job, the copy's progress while it runs and, for failures, the
    reason."""
    from syncmaster_ray.attempts import FailedAttempt, listed
    from syncmaster_ray.db.repository import ACTIVE_STATUSES, RunRepository
    from syncmaster_ray.status import progress_text

    repo = RunRepository(engine())
    run = repo.get_run(run_id)
    if run is None:
        raise typer.BadParameter(f"no run {run_id}")
    record = repo.get_record(run_id)
    table = Table(show_header=False, box=None)
    rows = [
        ("run", str(run.id)), ("transfer", f"{run.transfer_id} {run.transfer.name!r}"), ("status", run.status),
        ("type", run.type), ("created_at", str(run.created_at)), ("started_at", str(run.started_at)),
        ("ended_at", str(run.ended_at)), ("log_url", run.log_url or ""),
    ]
    if record is not None:
        rows += [("ray job", f"{record.submission_id} ({record.ray_job_status})")]
        if record.attempts:
            earlier = listed([FailedAttempt(**item) for item in record.attempts])
            rows += [("attempt", f"{record.attempt or 1}; earlier: {earlier}")]
        if record.progress and run.status in ACTIVE_STATUSES:
            rows += [("progress", progress_text(record.progress))]
        if record.reason:
            rows += [("reason", f"[{record.error_code}] {record.reason}")]
        if record.metrics:
            rows += [("metrics", ", ".join(f"{k}={v}" for k, v in record.metrics.items()))]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/bold]", escape(value))
    console.print(table)


@app.command()
def logs(run_id: int = typer.Argument(..., help="Run id.")) -> None:
    """Print the persisted tail of the run's Ray job log, then the last lines of each Spark executor's log (kept
    after the Ray head forgets the job)."""
    from syncmaster_ray.db.repository import RunRepository

    record = RunRepository(engine()).get_record(run_id)
    parts = [part for part in (record.log_tail, record.executor_log_tail) if part] if record else []
    console.print("\n".join(parts) if parts else f"no logs persisted for run {run_id}", markup=False, highlight=False)


@app.command()
def stop(run_id: int = typer.Argument(..., help="Run id.")) -> None:
    """Ask a CREATED or STARTED run to stop (SEND_STOP_SIGNAL, as the server's POST /v1/runs/{id}/stop)."""
    from syncmaster_ray.db.repository import RunRepository

    status = RunRepository(engine()).request_stop(run_id)
    console.print(f"run {run_id}: {status}; the worker stops its Ray job within seconds")


@app.command()
def watch(
    run_id: int = typer.Argument(..., help="Run id."),
    timeout: float = typer.Option(3600, help="Seconds to watch."),
) -> None:
    """Follow a run until it ends; exit 1 unless it FINISHED."""
    raise typer.Exit(0 if watch_run(run_id, timeout) == "FINISHED" else 1)


@app.command("reconcile")
def reconcile(
    stale_seconds: float = typer.Option(None, min=1, help="Settle active runs whose worker has not renewed their "
                                        "lease for this long (default SYNCMASTER__WORKER__STALE_SECONDS)."),
    queue: Annotated[list[str] | None, typer.Option(
        "--queue", "-q", help="Only runs of this queue slug (repeatable); default: every queue. Give the queues "
        "whose runs go to this Ray cluster.")] = None,
) -> None:
    """Settle runs whose supervising worker is gone: end them by their Ray job's outcome (FAILED with a reason
    when the job is gone), or hand them back to a worker (which submits a job never submitted, or re-attaches to
    a running one). Workers do this by themselves every SYNCMASTER__WORKER__RECONCILE_INTERVAL_SECONDS; this
    command is for a one-off pass."""
    from syncmaster_ray.worker.supervisor import RunSupervisor

    outcomes = RunSupervisor.from_settings().reconcile(stale_seconds, queue or None)
    for run_id, outcome in outcomes:
        console.print(f"run {run_id}: {outcome}")
    if not outcomes:
        console.print("nothing to reconcile")
