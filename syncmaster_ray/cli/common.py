"""Helpers shared by the CLI commands: settings, repositories, JSON options and error display."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from syncmaster_ray.errors import SyncmasterRayError

console = Console(soft_wrap=True)
err_console = Console(stderr=True)


@contextmanager
def fail_on_errors() -> Iterator[None]:
    """Our errors print one red line and exit 1, instead of a traceback."""
    try:
        yield
    except SyncmasterRayError as exc:
        err_console.print(f"[red]error[/red] {escape(f'[{exc.code}] {exc.reason}')}")
        sys.exit(1)


def settings():
    from syncmaster_ray.settings import get_settings

    return get_settings()


def engine():
    from syncmaster_ray.db.engine import get_engine

    return get_engine(settings().database.sync_url)


def json_option(value: str | None, name: str, default: Any) -> Any:
    if value is None:
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{name} is not valid JSON: {exc.msg}") from None
