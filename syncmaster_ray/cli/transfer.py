"""``syncmaster-ray transfer``: transfers, with SyncMaster's JSON shapes."""

from __future__ import annotations

import typer

from syncmaster_ray.cli.common import console, engine, json_option

app = typer.Typer(help="Transfers (what the server's POST /v1/transfers creates).", no_args_is_help=True)


@app.command()
def create(
    name: str = typer.Option(..., help="Transfer name, unique in its group."),
    source: str = typer.Option(..., help="Source connection name."),
    target: str = typer.Option(..., help="Target connection name."),
    source_params: str = typer.Option(..., help='e.g. \'{"type":"postgres","table_name":"public.src"}\''),
    target_params: str = typer.Option(..., help='e.g. \'{"type":"postgres","table_name":"public.dst"}\''),
    strategy: str = typer.Option('{"type":"full"}', help="strategy_params JSON."),
    resources: str = typer.Option(
        None,
        help='resources JSON, e.g. \'{"max_parallel_tasks":2,"cpu_cores_per_task":1,"ram_bytes_per_task":1073741824}\'',
    ),
    transformations: str = typer.Option("[]", help="transformations JSON list."),
    queue: str = typer.Option("default", help="Queue name; created when missing. Workers consume its slug."),
    group: str = typer.Option("default", help="Group of the transfer, its queue and its connections."),
) -> None:
    """Create a transfer (params are validated the way the worker will read them)."""
    from syncmaster_ray.db.repository import CatalogRepository
    from syncmaster_ray.spec import Resources, parse_model

    catalog = CatalogRepository(engine())
    connections = {}
    for role, connection_name in (("source", source), ("target", target)):
        found = catalog.find_connection(group, connection_name)
        if found is None:
            raise typer.BadParameter(f"no connection {connection_name!r} in group {group!r}", param_hint=f"--{role}")
        connections[role] = found
    resources_value = parse_model(Resources, json_option(resources, "--resources", {}), "resources").model_dump()
    queue_row = catalog.ensure_queue(group, queue)
    transfer = catalog.create_transfer(
        group_id=queue_row.group_id, name=name, description="", queue_id=queue_row.id,
        source_connection_id=connections["source"].id, target_connection_id=connections["target"].id,
        source_params=json_option(source_params, "--source-params", {}),
        target_params=json_option(target_params, "--target-params", {}),
        strategy_params=json_option(strategy, "--strategy", {"type": "full"}),
        transformations=json_option(transformations, "--transformations", []),
        resources=resources_value, is_scheduled=False, schedule="",
    )
    console.print(f"transfer {transfer.id} {name!r} created on queue slug [bold]{queue_row.slug}[/bold]")
