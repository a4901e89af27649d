"""``file_metadata_filter``: name glob or regexp and size bounds, validated before Spark starts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from syncmaster_ray.errors import InvalidParamsError
from syncmaster_ray.handlers import transforms

NAME_FILTERS = ("name_glob", "name_regexp")
SIZE_FILTERS = ("file_size_min", "file_size_max")


@dataclass(frozen=True)
class FileFilterSpec:
    """One ``file_metadata_filter`` item: ``name_glob`` / ``name_regexp`` (str) or ``file_size_min|max`` (bytes)."""

    type: str
    value: str | int


def file_filters_of(transformations: Iterable[dict[str, Any]]) -> list[FileFilterSpec]:
    """Validate every ``file_metadata_filter`` item (all of them apply, joined with AND)."""
    specs: list[FileFilterSpec] = []
    for item in transforms.filters_of(transformations, "file_metadata_filter"):
        kind, value = item.get("type"), item.get("value")
        if kind in NAME_FILTERS:
            if not isinstance(value, str) or not value:
                raise InvalidParamsError(f"file_metadata_filter {kind!r} needs a non-empty string 'value'")
            if kind == "name_regexp":
                try:
                    re.compile(value)
                except re.error as exc:
                    raise InvalidParamsError(f"file_metadata_filter name_regexp {value!r}: {exc}") from None
        elif kind in SIZE_FILTERS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidParamsError(f"file_metadata_filter {kind!r} needs a size in bytes (an integer >= 0)")
        else:
            known = ", ".join((*NAME_FILTERS, *SIZE_FILTERS))
            raise InvalidParamsError(f"unknown file_metadata_filter {kind!r}; known: {known}")
        specs.append(FileFilterSpec(type=kind, value=value))
    return specs


def onetl_file_filters(specs: Iterable[FileFilterSpec]) -> list[Any]:
    """onETL ``Glob`` / ``Regexp`` / ``FileSizeRange`` objects for the specs (imports onETL)."""
    from onetl.file.filter import FileSizeRange, Glob, Regexp

    result: list[Any] = []
    for spec in specs:
        if spec.type == "name_glob":
            result.append(Glob(spec.value))
        elif spec.type == "name_regexp":
            result.append(Regexp(spec.value))
        elif spec.type == "file_size_min":
            result.append(FileSizeRange(min=spec.value))
        else:
            result.append(FileSizeRange(max=spec.value))
    return result
