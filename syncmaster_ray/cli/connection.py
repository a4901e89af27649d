"""``syncmaster-ray connection``: connections with Fernet-encrypted credentials, as SyncMaster stores them."""

from __future__ import annotations

import typer

from syncmaster_ray.cli.common import console, engine, json_option, settings

app = typer.Typer(help="Connections (what the server's POST /v1/connections creates).", no_args_is_help=True)


@app.command()
def create(
    name: str = typer.Option(..., help="Connection name, unique in its group."),
    type_: str = typer.Option(..., "--type", help="SyncMaster connection type, e.g. postgres."),
    data: str = typer.Option(..., help='connection_data JSON, e.g. \'{"host":"h","port":5432,"database_name":"db"}\''),
    user: str = typer.Option(None, help="User for basic auth."),
    password: str = typer.Option(
        None, envvar="SYNCMASTER_RAY_CONNECTION_PASSWORD", help="Password for basic auth (prompted when omitted)."
    ),
    auth: str = typer.Option(None, help="Full auth_data JSON for non-basic auth types (overrides --user/--password)."),
    group: str = typer.Option("default", help="Group name; created when missing."),
) -> None:
    """Create a connection and its encrypted auth_data row."""
    from syncmaster_ray.db.repository import CatalogRepository
    from syncmaster_ray.handlers.registry import handler_class_for

    handler_class_for(type_)  # unknown or unsupported type: a clear error now, not at run time
    auth_data = json_option(auth, "--auth", None)
    if auth_data is None:
        if user is None:
            raise typer.BadParameter("give --user (and --password) or --auth")
        if password is None:
            password = typer.prompt("password", hide_input=True)
        auth_data = {"type": "basic", "user": user, "password": password}
    connection = CatalogRepository(engine()).create_connection(
        group_name=group, name=name, type_=type_, data=json_option(data, "--data", {}), auth=auth_data,
        secret_key=settings().secret_key,
    )
    console.print(f"connection {connection.id} {name!r} created in group {group!r}")
