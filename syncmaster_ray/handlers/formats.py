"""SyncMaster's ``file_format`` JSON as onETL formats, file extensions and target file names (pure logic)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncmaster_ray.errors import InvalidParamsError

FORMAT_CLASSES = {
    "csv": "CSV", "jsonline": "JSONLine", "json": "JSON", "orc": "ORC", "parquet": "Parquet", "xml": "XML",
    "excel": "Excel",
}
SOURCE_ONLY_FORMATS = {"json"}
BASE_EXTENSIONS = {
    "csv": "csv", "jsonline": "jsonl", "json": "json", "xml": "xml", "excel": "xlsx", "parquet": "parquet",
    "orc": "orc",
}
COMPRESSION_SUFFIXES = {"gzip": "gz", "snappy": "snappy", "zlib": "zlib", "lz4": "lz4", "bzip2": "bz2",
                        "deflate": "deflate"}
COLUMNAR_FORMATS = {"parquet", "orc"}
# SyncMaster's API names -> onETL/Spark option names, per format.
OPTION_RENAMES = {
    "csv": {"line_sep": "lineSep", "include_header": "header"},
    "json": {"line_sep": "lineSep"},
    "jsonline": {"line_sep": "lineSep"},
    "xml": {"root_tag": "rootTag", "row_tag": "rowTag"},
    "excel": {"include_header": "header", "start_cell": "dataAddress"},
}
# Spark 3.5 data sources that are not in pyspark's jars (Maven only): the JVM class that must load.
REQUIRED_JARS = {
    "xml": ("com.databricks.spark.xml.XmlReader", "com.databricks:spark-xml_2.12:0.18.0"),
    "excel": ("com.crealytics.spark.excel.DefaultSource", "dev.mauch:spark-excel_2.12:3.5.6_0.31.2"),
}


@dataclass(frozen=True)
class FileFormatSpec:
    """One side's file format: its type and the options onETL's format class takes."""

    type: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def extension(self) -> str:
        """SyncMaster's extension: ``csv.gz``, ``snappy.parquet``, ``lz4hadoop.parquet``, ``orc`` ..."""
        base = BASE_EXTENSIONS[self.type]
        compression = self.options.get("compression") or "none"
        if compression in ("none", "uncompressed"):
            return base
        suffix = COMPRESSION_SUFFIXES.get(compression, compression)
        if base == "parquet" and suffix == "lz4":
            return "lz4hadoop.parquet"
        return f"{suffix}.{base}" if base in COLUMNAR_FORMATS else f"{base}.{suffix}"

    def onetl_format(self) -> Any:
        """The onETL format object (imports onETL: call it inside the Ray job only)."""
        from onetl.file import format as onetl_formats

        format_class = getattr(onetl_formats, FORMAT_CLASSES[self.type])
        try:
            return format_class.model_validate(self.options)
        except ValueError as exc:
            raise InvalidParamsError(f"invalid {self.type} file_format options: {_first_line(exc)}") from None


def parse_file_format(value: Any, *, role: str) -> FileFormatSpec:
    """Validate SyncMaster's ``file_format`` object; unknown (onETL-native) keys pass through unchanged."""
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise InvalidParamsError(f"{role}_params.file_format must be an object with a 'type'")
    options = dict(value)
    kind = options.pop("type")
    if kind not in FORMAT_CLASSES:
        raise InvalidParamsError(f"unknown file format {kind!r}; known: {', '.join(FORMAT_CLASSES)}")
    if role == "target" and kind in SOURCE_ONLY_FORMATS:
        raise InvalidParamsError(f"file format {kind!r} can only be read; write 'jsonline' instead")
    for old, new in OPTION_RENAMES.get(kind, {}).items():
        if old in options:
            options[new] = options.pop(old)
    if kind == "xml" and options.get("compression") == "none":
        options.pop("compression")  # spark-xml has no "none"
    return FileFormatSpec(type=kind, options=options)


def parse_df_schema(value: Any) -> dict[str, Any] | None:
    """``df_schema``: a Spark StructType as JSON (string or object), or absent."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidParamsError(f"df_schema is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict) or value.get("type") != "struct" or not isinstance(value.get("fields"), list):
        raise InvalidParamsError("df_schema must be a Spark StructType JSON object: {'type': 'struct', 'fields': []}")
    return value


def check_file_name_template(template: Any) -> str:
    """SyncMaster's rule: ``{index}`` and ``{extension}``, plus ``{run_id}`` or ``{run_created_at}``."""
    if not isinstance(template, str) or "{index}" not in template or "{extension}" not in template:
        raise InvalidParamsError("file_name_template must contain {index} and {extension}")
    if "{run_id}" not in template and "{run_created_at}" not in template:
        raise InvalidParamsError("file_name_template must contain {run_id} or {run_created_at}")
    try:
        render_file_name(template, index=0, extension="csv", run_id=1, run_created_at=datetime(2000, 1, 1))
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidParamsError(f"file_name_template has an unknown placeholder: {exc}") from None
    return template


def render_file_name(template: str, *, index: int, extension: str, run_id: int, run_created_at: datetime) -> str:
    return template.format(
        index=index, extension=extension, run_id=run_id,
        run_created_at=run_created_at.strftime("%Y_%m_%d_%H_%M_%S"),
    )


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]
