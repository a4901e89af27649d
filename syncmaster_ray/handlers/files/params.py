"""A file side's ``directory_path`` and ``options`` params."""

from __future__ import annotations

import posixpath
from typing import Any

from syncmaster_ray.errors import InvalidParamsError

# Options that mean something to SyncMaster's API but not to a Spark reader or to our staged writer.
_IGNORED_OPTIONS = ("if_exists",)


def directory_path_of(params: dict[str, Any], what: str) -> str:
    """``directory_path``: an absolute path, as SyncMaster's API requires, normalised (no trailing slash)."""
    value = params.get("directory_path")
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidParamsError(f"{what}.directory_path must be an absolute path, got {value!r}")
    normalised = posixpath.normpath(value)
    return "/" + normalised.lstrip("/")  # normpath keeps a leading "//"


def options_of(params: dict[str, Any], what: str) -> dict[str, Any]:
    options = params.get("options")
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InvalidParamsError(f"{what}.options must be a JSON object")
    return {key: value for key, value in options.items() if key not in _IGNORED_OPTIONS}
