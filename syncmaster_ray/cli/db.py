"""``syncmaster-ray db``: migrations."""

from __future__ import annotations

import typer

from syncmaster_ray.cli.common import console, settings

app = typer.Typer(help="Database migrations (our own alembic history; SyncMaster's tables are never altered).",
                  no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Alembic revision to upgrade to.")) -> None:
    """Create SyncMaster's tables when absent (standalone use) and our own table; idempotent."""
    from syncmaster_ray.db.migrations import upgrade as run_upgrade

    run_upgrade(settings().database.sync_url, revision)
    console.print(f"database upgraded to {revision}")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Alembic revision to go back to, e.g. base.")) -> None:
    """Drop what our migrations created (SyncMaster's tables only if we created them)."""
    from syncmaster_ray.db.migrations import downgrade as run_downgrade

    run_downgrade(settings().database.sync_url, revision)
    console.print(f"database downgraded to {revision}")
