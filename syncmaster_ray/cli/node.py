"""``syncmaster-ray node exec -- ray start ...``: start a Ray node with its secrets in files, not its environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from syncmaster_ray.node_env import node_environment

app = typer.Typer(help="Ray nodes: start one with its secrets kept out of its environment.", no_args_is_help=True)


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where the settings file (env) and the Ray token file (ray-token) are written, mode 0600 "
        "(default ~/.config/syncmaster-ray).",
    )] = None,
) -> None:
    """Run a command (`-- ray start ...`) with our settings (SYNCMASTER__*) and RAY_AUTH_TOKEN moved from the
    environment into files: every process of a Ray node inherits its environment, Spark executors running users'
    SQL among them. The command gets SYNCMASTER_RAY_ENV_FILE and RAY_AUTH_TOKEN_PATH instead."""
    if not ctx.args:
        raise typer.BadParameter("give the command to run after --, e.g. -- ray start --head")
    env = node_environment(os.environ, directory or Path.home() / ".config" / "syncmaster-ray")
    os.execvpe(ctx.args[0], ctx.args, env)
