"""Secrets stay out of the Ray nodes' environment.

Every process of a Ray node inherits the environment ``ray start`` ran in: the job entrypoints, the transfer actors
and the Spark JVMs they start, and the Spark executors, which run SQL and filters written by SyncMaster users. So a
node's settings (SyncMaster's database URL, the Fernet key, ...) live in a file named by ``SYNCMASTER_RAY_ENV_FILE``
and the Ray token in one named by ``RAY_AUTH_TOKEN_PATH``; ``ray start`` runs with only their paths.

``syncmaster-ray node exec -- ray start ...`` does that from an environment that holds them (compose, a shell): it
writes them to files readable by the node's user only, removes them from the environment and runs the command. A
Ray job refuses to run on a node whose environment still holds one (``refusal``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from syncmaster_ray.errors import ConfigError
from syncmaster_ray.settings import ENV_FILE_VARIABLE

SETTINGS_PREFIX = "SYNCMASTER__"
# What must never be in a node's environment: whoever runs code there could read it.
SECRET_VARIABLES = (
    "SYNCMASTER__DATABASE__URL",
    "SYNCMASTER__ENCRYPTION__SECRET_KEY",
    "SYNCMASTER__BROKER__URL",
    "SYNCMASTER__HWM_STORE__PASSWORD",
    "RAY_AUTH_TOKEN",
)
TOKEN_PATH_VARIABLE = "RAY_AUTH_TOKEN_PATH"


def secrets_in(environ: Mapping[str, str]) -> list[str]:
    """The secret variables set (non-empty) in ``environ``; settings names compare without case, as pydantic's."""
    present = {name.upper() for name, value in environ.items() if value}
    return [name for name in SECRET_VARIABLES if name in present]


def refusal(environ: Mapping[str, str]) -> str | None:
    """Why a Ray job must not run on a node with ``environ`` (its secrets are every process's), or None."""
    found = secrets_in(environ)
    if not found:
        return None
    return (f"the Ray node's environment holds {', '.join(found)}: every process of the node inherits it, the "
            "Spark executors running users' SQL among them. Start Ray with `syncmaster-ray node exec -- ray start "
            f"...`, or put the settings in the file named by {ENV_FILE_VARIABLE} and the token in the file named by "
            f"{TOKEN_PATH_VARIABLE}")


def dotenv_line(name: str, value: str) -> str:
    """``NAME="value"`` as python-dotenv reads it back (backslashes, quotes and newlines escaped). A value with
    ``${`` is refused: pydantic-settings expands ``${VAR}`` in a dotenv file, and python-dotenv has no escape."""
    if "${" in value:
        raise ConfigError(f"{name} contains '${{', which a settings file cannot hold literally; change the value")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{escaped}"\n'


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def node_environment(environ: Mapping[str, str], directory: Path) -> dict[str, str]:
    """The environment to start a Ray node with: ``environ`` without our settings and the Ray token, which go to
    ``directory/env`` and ``directory/ray-token`` (mode 0600); their paths are set instead. Settings of a file
    ``environ`` already names come first in the new file, so the environment's values win as they would."""
    clean = dict(environ)
    settings = {name: value for name, value in environ.items() if name.upper().startswith(SETTINGS_PREFIX)}
    if settings:
        earlier = environ.get(ENV_FILE_VARIABLE)
        text = Path(earlier).read_text() if earlier and Path(earlier).is_file() else ""
        if text and not text.endswith("\n"):
            text += "\n"
        text += "".join(dotenv_line(name, value) for name, value in sorted(settings.items()))
        _write_private(directory / "env", text)
        for name in settings:
            del clean[name]
        clean[ENV_FILE_VARIABLE] = str(directory / "env")
    token = clean.pop("RAY_AUTH_TOKEN", None)
    if token:
        _write_private(directory / "ray-token", token.strip() + "\n")
        clean[TOKEN_PATH_VARIABLE] = str(directory / "ray-token")
    return clean
