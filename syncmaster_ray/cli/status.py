"""``syncmaster-ray status``: cluster capacity, runs waiting for it, runs executing, recent failures."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.markup import escape
from rich.table import Table

from syncmaster_ray.cli.common import console, engine, settings
from syncmaster_ray.status import Capacity, RunLine, StatusReport, progress_text

GiB = 1024**3


def status(
    failures: int = typer.Option(5, min=0, help="How many recent failures to list."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Show the cluster's capacity, the runs waiting for it (in the order they get it) and executing (with their
    links), recent failures."""
    from syncmaster_ray.db.repository import RunRepository
    from syncmaster_ray.status import gather

    report = gather(RunRepository(engine()), settings().ray.address, failures, settings().ray.queue_priorities)
    if as_json:
        console.print_json(report.as_json())
        return
    render(report)


def render(report: StatusReport) -> None:
    console.print(_capacity_line(report.capacity))
    for title, lines in (("Waiting for capacity, in queue order", report.waiting), ("Executing", report.executing)):
        console.print(_runs_table(f"{title} ({len(lines)})", lines, link=True))
    console.print(_runs_table(f"Recent failures ({len(report.failures)})", report.failures, link=False))


def _capacity_line(capacity: Capacity) -> str:
    if capacity.error:
        return f"[red]cluster[/red] {escape(capacity.error)}"
    free, total = capacity.free, capacity.total
    return (f"cluster: {capacity.nodes} node(s); CPU {free.get('CPU', 0):g} free of {total.get('CPU', 0):g}; "
            f"memory {free.get('memory', 0) / GiB:.1f} GiB free of {total.get('memory', 0) / GiB:.1f} GiB; "
            f"{capacity.groups_waiting} placement group(s) waiting; {capacity.standbys} standby transfer actor(s) "
            "placed (their CPUs and memory count as reserved)")


def _runs_table(title: str, lines: list[RunLine], *, link: bool) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("run", "transfer", "status", "since", "link" if link else "reason"):
        table.add_column(column, overflow="fold")
    for line in lines:
        since = line.started_at if link else line.ended_at
        detail = line.log_url if link else f"[{line.error_code}] {line.reason}"
        if link and line.progress:
            detail = f"{progress_text(line.progress)}\n{detail}"
        state = f"{line.status} {line.phase or ''}".strip()
        if line.queue_place is not None:
            state += f"\n#{line.queue_place} in the queue" + (f", priority {line.priority}" if line.priority else "")
        table.add_row(str(line.run_id), escape(line.transfer), state, _ago(since), escape(detail or ""))
    return table


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return ""
    seconds = (datetime.now(UTC) - moment).total_seconds()
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"
