"""Which of Spark's output files are data, and the names ``file_name_template`` gives them."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from datetime import datetime

from syncmaster_ray.errors import InvalidParamsError
from syncmaster_ray.handlers.formats import render_file_name


def is_spark_metadata_file(name: str) -> bool:
    """Spark's side files: checksums (``.part-0.csv.crc``), markers (``_SUCCESS``) and anything hidden."""
    return name.endswith(".crc") or name.startswith(("_", "."))


def output_file_names(
    relative_paths: Iterable[str], *, template: str, extension: str, run_id: int, run_created_at: datetime
) -> dict[str, str]:
    """Old relative path -> new relative path. Files are indexed 0.. in path order; directories (Spark's
    ``partitionBy``) are kept."""
    result: dict[str, str] = {}
    for index, old in enumerate(sorted(relative_paths)):
        name = render_file_name(template, index=index, extension=extension, run_id=run_id,
                                run_created_at=run_created_at)
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise InvalidParamsError(f"file_name_template gives {name!r}, which is not a relative file name")
        parent = posixpath.dirname(old)
        result[old] = posixpath.join(parent, name) if parent else name
    if len(set(result.values())) != len(result):
        raise InvalidParamsError("file_name_template gives two files the same name")
    return result
