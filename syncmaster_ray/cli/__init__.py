"""``syncmaster-ray``: run SyncMaster transfers on Ray without the SyncMaster server, and operate the worker.

One module per noun (``db``, ``connection``, ``transfer``, ``run``, ``node``, ``status``, ``demo``). Never imports
``job``.
"""

from __future__ import annotations

import typer

from syncmaster_ray.cli import connection, db, demo, node, run, status, transfer
from syncmaster_ray.cli.common import fail_on_errors

app = typer.Typer(
    name="syncmaster-ray",
    help="A Ray-backed execution pool for SyncMaster transfers (Celery front, Spark on RayDP, onETL).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold URLs with passwords
)
app.add_typer(db.app, name="db")
app.add_typer(connection.app, name="connection")
app.add_typer(transfer.app, name="transfer")
app.add_typer(run.app, name="run")
app.add_typer(node.app, name="node")
app.command("status")(status.status)
app.command("demo")(demo.demo)


def main() -> None:
    with fail_on_errors():
        app()
