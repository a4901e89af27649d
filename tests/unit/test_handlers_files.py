"""File handlers without Spark or servers: params validation, names, filters, the move, placement choice."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from syncmaster_ray.errors import InvalidParamsError, SourceError, TargetError
from syncmaster_ray.handlers import transforms
from syncmaster_ray.handlers.context import HandlerContext
from syncmaster_ray.handlers.files.filters import FileFilterSpec, file_filters_of, onetl_file_filters
from syncmaster_ray.handlers.files.handler import FileHandler
from syncmaster_ray.handlers.files.naming import is_spark_metadata_file, output_file_names
from syncmaster_ray.handlers.files.params import directory_path_of
from syncmaster_ray.handlers.files.remote import RemoteFileHandler
from syncmaster_ray.handlers.formats import (
    REQUIRED_JARS,
    FileFormatSpec,
    check_file_name_template,
    parse_df_schema,
    parse_file_format,
    render_file_name,
)
from syncmaster_ray.handlers.hdfs import HDFSHandler, register_hdfs_clusters
from syncmaster_ray.handlers.postgres import DIALECT as POSTGRES
from syncmaster_ray.handlers.registry import handler_class_for
from syncmaster_ray.job.placement import placement_strategy
from syncmaster_ray.outcome import error_with_cause
from syncmaster_ray.settings import HDFSClusterSettings, SparkSettings
from syncmaster_ray.spec import ConnectionSpec, Resources, RunSpec, Strategy, hwm_name
from tests.unit.handler_cases import BASIC_AUTH, CASES, CSV, FILE_TYPES, PASSWORD, S3_SECRET

CONNECTIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    kind: (CASES[kind].data, CASES[kind].auth) for kind in FILE_TYPES
}
LOCAL_TYPES = ["ftp", "ftps", "samba", "sftp", "webdav"]
TEMPLATE = "{run_created_at}-{index}.{extension}"
CREATED = datetime(2024, 5, 1, 9, 8, 7, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """``build_handlers`` reads SYNCMASTER__SPARK__* (jars, Maven, HDFS clusters) into the handlers' context."""
    monkeypatch.setenv("SYNCMASTER__DATABASE__URL", "postgresql://u:p@db:5432/syncmaster")
    monkeypatch.setenv("SYNCMASTER__SPARK__JARS", '["/usr/share/java/postgresql.jar"]')


def connection(kind: str, *, conn_id: int = 1, data: dict | None = None, auth: dict | None = None) -> ConnectionSpec:
    default_data, default_auth = CONNECTIONS.get(kind, ({"host": "pg", "database_name": "db"}, BASIC_AUTH))
    return ConnectionSpec(id=conn_id, type=kind, name=f"{kind}_conn", data=data if data is not None else default_data,
                          auth=auth if auth is not None else default_auth)


def file_params(kind: str, role: str = "source", **overrides: Any) -> dict[str, Any]:
    params = {"type": kind, "directory_path": "/data/in", "file_format": dict(CSV), "options": {}}
    if role == "target":
        params["file_name_template"] = TEMPLATE
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def spec(*, source: ConnectionSpec | None = None, target: ConnectionSpec | None = None,
         source_params: dict | None = None, target_params: dict | None = None, strategy: Strategy | None = None,
         transformations: tuple = (), resources: Resources | None = None) -> RunSpec:
    return RunSpec(
        run_id=42, run_created_at=CREATED, transfer_id=7, transfer_name="files", group_name="team",
        source=source or connection("sftp"), target=target or connection("postgres", conn_id=2),
        source_params=source_params or file_params("sftp"),
        target_params=target_params or {"type": "postgres", "table_name": "public.copy"},
        strategy=strategy or Strategy(), transformations=transformations, resources=resources or Resources(),
    )


def build(kind: str, role: str = "source", settings: SparkSettings | None = None, **spec_kwargs: Any) -> Any:
    params = spec_kwargs.pop(f"{role}_params", None) or file_params(kind, role)
    conn = spec_kwargs.pop(role, None) or connection(kind)
    run = spec(**{role: conn, f"{role}_params": params}, **spec_kwargs)
    context = HandlerContext(hwm_name=hwm_name(run), spark=settings or SparkSettings())
    return handler_class_for(kind)(connection=conn, params=params, spec=run, role=role, context=context)


# --- connection kwargs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "port", "expected"), [("https", None, 443), ("http", None, 80),
                                                            ("http", 8088, 8088)])
def test_webdav_kwargs_port_defaults_by_protocol_and_no_ssl_verify(protocol, port, expected):
    conn = connection("webdav", data={"host": "dav", "port": port, "protocol": protocol})
    kwargs = build("webdav", source=conn).connection_kwargs()
    assert kwargs == {"host": "dav", "port": expected, "protocol": protocol, "user": "etl",
                      "password": SecretStr(PASSWORD), "extra": {"ssl_verify": False}}


@pytest.mark.parametrize(("protocol", "port", "expected"), [("SMB", None, 445), ("NetBIOS", None, 139),
                                                            ("SMB", 4445, 4445)])
def test_samba_port_defaults_by_protocol(protocol, port, expected):
    conn = connection("samba", data={"host": "h", "share": "s", "port": port, "protocol": protocol},
                      auth={"type": "samba", "user": "u", "password": "p"})
    kwargs = build("samba", source=conn).connection_kwargs()
    assert kwargs["port"] == expected and kwargs["auth_type"] == "NTLMv2" and kwargs["domain"] == ""


def test_s3_file_client_and_spark_kwargs():
    handler = build("s3")
    file_kwargs = CASES["s3"].kwargs
    assert handler.connection_kwargs() == file_kwargs
    # additional_params are S3A options: Spark's side only.
    assert handler.spark_connection_kwargs() == {**file_kwargs, "path_style_access": True,
                                                 "extra": {"fast.upload.buffer": "bytebuffer"}}


@pytest.mark.parametrize(("protocol", "expected"), [("https", 443), ("http", 80)])
def test_s3_port_defaults_by_protocol_and_domain_style(protocol, expected):
    conn = connection("s3", data={"host": "h", "bucket": "b", "region": "r", "protocol": protocol,
                                  "bucket_style": "domain"})
    handler = build("s3", source=conn)
    assert handler.connection_kwargs()["port"] == expected
    assert handler.spark_connection_kwargs()["path_style_access"] is False


def test_hdfs_kwargs_kerberos_unless_listed_without_it():
    handler = build("hdfs")
    kerberos = {"cluster": "rnd-dwh", "user": "etl", "password": SecretStr(PASSWORD)}
    assert handler.connection_kwargs({}) == kerberos  # resolved by onETL plugins, Kerberos as in SyncMaster
    assert handler.connection_kwargs({"rnd-dwh": HDFSClusterSettings(host="nn", kerberos=True)}) == kerberos
    assert handler.connection_kwargs({"rnd-dwh": HDFSClusterSettings(host="nn")}) == {"cluster": "rnd-dwh"}


def test_hdfs_kwargs_read_the_setting(monkeypatch):
    settings = SparkSettings(hdfs_clusters={"rnd-dwh": {"host": "nn", "webhdfs_port": 1}})
    assert build("hdfs", settings=settings).connection_kwargs() == {"cluster": "rnd-dwh"}


def test_build_handlers_give_the_handlers_the_spark_settings(monkeypatch):
    from syncmaster_ray.job.transfer import build_handlers

    monkeypatch.setenv("SYNCMASTER__SPARK__HDFS_CLUSTERS", json.dumps({"rnd-dwh": {"host": "nn", "webhdfs_port": 1}}))
    run = spec(source=connection("hdfs"), source_params=file_params("hdfs"))
    source, _target = build_handlers(run)
    assert source.context.spark.hdfs_clusters["rnd-dwh"].host == "nn"
    assert source.connection_kwargs() == {"cluster": "rnd-dwh"}
    assert source.context.hwm_name == "7_hdfs_/data/in"


def test_hdfs_hooks_resolve_listed_clusters_only():
    from onetl.connection import HDFS, SparkHDFS

    register_hdfs_clusters({"unit-hooks": HDFSClusterSettings(host="nn.unit", webhdfs_port=50070, ipc_port=9000)})
    assert HDFS.Slots.get_webhdfs_port("unit-hooks") == 50070
    assert HDFS.Slots.get_cluster_namenodes("unit-hooks") == {"nn.unit"}
    assert HDFS.Slots.is_namenode_active("nn.unit", "unit-hooks") is True
    assert HDFS.Slots.is_namenode_active("other", "unit-hooks") is False
    assert SparkHDFS.Slots.get_ipc_port("unit-hooks") == 9000
    assert SparkHDFS.Slots.get_cluster_namenodes("unit-hooks") == {"nn.unit"}
    assert HDFS.Slots.get_webhdfs_port("not-listed") is None
    assert SparkHDFS.Slots.get_ipc_port("not-listed") is None
    # onETL builds the connection from the cluster name alone, without a network call.
    assert HDFS(cluster="unit-hooks").webhdfs_port == 50070


@pytest.mark.parametrize("kind", FILE_TYPES)
def test_secrets_stay_secret(kind):
    handler = build(kind)
    assert PASSWORD not in repr(handler.conn) and S3_SECRET not in repr(handler.conn)
    assert PASSWORD not in str(handler.connection_kwargs()) and S3_SECRET not in str(handler.connection_kwargs())


@pytest.mark.parametrize(("kind", "drop", "field"), [("sftp", "host", "host"), ("samba", "share", "share"),
                                                    ("s3", "bucket", "bucket"), ("hdfs", "cluster", "cluster")])
def test_missing_connection_field_is_named_without_secrets(kind, drop, field):
    data = {k: v for k, v in CONNECTIONS[kind][0].items() if k != drop}
    with pytest.raises(InvalidParamsError) as info:
        build(kind, source=connection(kind, data=data))
    assert info.value.reason.startswith(f"invalid source connection 1 ({kind}): ")
    assert f"{field}: Field required" in info.value.reason
    assert PASSWORD not in info.value.reason and S3_SECRET not in info.value.reason


def test_missing_password_is_named():
    with pytest.raises(InvalidParamsError, match="password: Field required"):
        build("ftp", source=connection("ftp", auth={"type": "basic", "user": "u"}))


@pytest.mark.parametrize(("kind", "data"), [("webdav", {"host": "h", "protocol": "gopher"}),
                                            ("samba", {"host": "h", "share": "s", "protocol": "CIFS"}),
                                            ("sftp", {"host": "h", "port": 70000})])
def test_bad_connection_values_are_invalid_params(kind, data):
    auth = CONNECTIONS[kind][1]
    with pytest.raises(InvalidParamsError) as info:
        build(kind, source=connection(kind, data=data, auth=auth))
    assert PASSWORD not in info.value.reason


# --- params ----------------------------------------------------------------------------------------------------------


def test_source_params_parsed():
    handler = build("sftp", source_params=file_params("sftp", directory_path="/data/in/", df_schema=json.dumps(
        {"type": "struct", "fields": [{"name": "id", "type": "integer", "nullable": True, "metadata": {}}]}),
        options={"if_exists": "replace_overlapping_partitions", "recursiveFileLookup": True}))
    assert isinstance(handler, FileHandler)
    assert handler.directory_path == "/data/in"
    assert handler.file_format == FileFormatSpec("csv", {
        "delimiter": ";", "encoding": "utf-8", "quote": '"', "escape": "\\", "header": False, "lineSep": "\n",
        "compression": "gzip",
    })
    assert handler.df_schema["fields"][0]["name"] == "id"
    assert handler.read_options() == {"recursiveFileLookup": True}  # if_exists means nothing to a reader
    assert handler.file_name_template is None
    assert handler.describe == "sftp connection 'sftp_conn'"


def test_target_params_parsed_and_write_options_replace_the_run_directory():
    handler = build("ftp", role="target", target_params=file_params("ftp", "target", options={
        "if_exists": "append", "partitionBy": "day"}))
    assert handler.file_name_template == TEMPLATE
    assert handler.write_options() == {"partitionBy": "day", "if_exists": "replace_entire_directory"}
    assert handler.remote_tmp_dir() == "/data/in/.tmp/42"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"directory_path": "data/in"}, "source_params.directory_path must be an absolute path, got 'data/in'"),
    ({"directory_path": None}, "source_params.directory_path must be an absolute path, got None"),
    ({"file_format": None}, "source_params.file_format must be an object with a 'type'"),
    ({"file_format": {"type": "avro"}}, "unknown file format 'avro'"),
    ({"df_schema": "{not json"}, "df_schema is not valid JSON"),
    ({"df_schema": {"type": "array"}}, "df_schema must be a Spark StructType JSON object"),
    ({"options": ["a"]}, "source_params.options must be a JSON object"),
])
def test_bad_source_params(overrides, message):
    with pytest.raises(InvalidParamsError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        build("sftp", source_params=file_params("sftp", **overrides))


@pytest.mark.parametrize(("template", "message"), [
    (None, "must contain {index} and {extension}"),
    ("{run_id}.{extension}", "must contain {index} and {extension}"),
    ("{index}.{extension}", "must contain {run_id} or {run_created_at}"),
    ("{run_id}-{index}-{user}.{extension}", "unknown placeholder"),
])
def test_bad_file_name_template(template, message):
    params = file_params("webdav", "target")
    params["file_name_template"] = template
    with pytest.raises(InvalidParamsError, match=message.replace("{", r"\{").replace("}", r"\}")):
        build("webdav", role="target", target_params=params)


def test_json_cannot_be_written():
    with pytest.raises(InvalidParamsError, match="'json' can only be read; write 'jsonline' instead"):
        build("samba", role="target", target_params=file_params("samba", "target", file_format={"type": "json"}))


@pytest.mark.parametrize("increment_by", ["file_name", "file_modified_since"])
def test_incremental_file_source(increment_by):
    handler = build("sftp", strategy=Strategy(type="incremental", increment_by=increment_by))
    hwm = handler.file_hwm()
    assert type(hwm).__name__ == ("FileListHWM" if increment_by == "file_name" else "FileModifiedTimeHWM")
    assert hwm.name == "7_sftp_/data/in"  # SyncMaster's HWM name


@pytest.mark.parametrize("increment_by", [None, "updated_at"])
def test_incremental_file_source_needs_a_file_increment(increment_by):
    with pytest.raises(InvalidParamsError, match="need increment_by file_name or file_modified_since"):
        build("s3", strategy=Strategy(type="incremental", increment_by=increment_by))


def test_no_hwm_for_full_runs_and_targets():
    assert build("sftp").file_hwm() is None
    target = build("sftp", role="target", strategy=Strategy(type="incremental", increment_by="file_name"),
                   source=connection("postgres"), source_params={"type": "postgres", "table_name": "public.t"})
    assert target.file_hwm() is None


def test_hwm_store_during_download_holds_the_previous_hwm_and_defers_saving():
    from etl_entities.hwm import FileListHWM
    from etl_entities.hwm_store import HWMStoreStackManager, MemoryHWMStore

    handler = build("ftp", strategy=Strategy(type="incremental", increment_by="file_name"))
    previous = FileListHWM(name="7_ftp_/data/in", entity="/data/in", value=["/data/in/a.csv"])
    handler.update_context(previous_hwm=previous)
    level = HWMStoreStackManager.get_current_level()
    with handler.hwm_saved_after_write():
        current = HWMStoreStackManager.get_current()
        assert isinstance(current, MemoryHWMStore)
        assert current.get_hwm("7_ftp_/data/in") == handler.previous_hwm
    assert HWMStoreStackManager.get_current_level() == level
    assert not isinstance(HWMStoreStackManager.get_current(), MemoryHWMStore)


# --- transformations -----------------------------------------------------------------------------------------------


def test_rows_and_columns_filters_are_spark_sql():
    transformations = (
        {"type": "dataframe_rows_filter", "filters": [
            {"type": "equal", "field": "Name", "value": "O'Brien\\"},
            {"type": "ilike", "field": "city", "value": "mos%"},
            {"type": "regexp", "field": "code", "value": "^A\\d+$"},
            {"type": "is_null", "field": "deleted"},
        ]},
        {"type": "dataframe_columns_filter", "filters": [
            {"type": "include", "field": "Name"},
            {"type": "rename", "field": "city", "to": "town"},
            {"type": "cast", "field": "amount", "as_type": "decimal(10, 2)"},
        ]},
        {"type": "sql", "query": "SELECT * FROM source"},
    )
    handler = build("samba", transformations=transformations)
    assert handler.where == (
        "`Name` = 'O\\'Brien\\\\' AND `city` ILIKE 'mos%' AND `code` RLIKE '^A\\\\d+$' AND `deleted` IS NULL"
    )
    assert handler.columns == ["`Name`", "`city` AS `town`", "CAST(`amount` AS decimal(10, 2)) AS `amount`"]
    assert handler.sql_query == "SELECT * FROM source"


def test_spark_dialect_escapes_quotes_with_backslash():
    # Spark SQL reads 'a''b' as two adjacent literals ('ab'): a doubled quote would silently change the value.
    assert transforms.SPARK.literal("it's") == "'it\\'s'"
    assert POSTGRES.literal("it's") == "'it''s'"


def test_file_metadata_filters_from_every_transformation():
    transformations = (
        {"type": "file_metadata_filter", "filters": [{"type": "name_glob", "value": "*.csv"},
                                                     {"type": "file_size_min", "value": 1}]},
        {"type": "dataframe_rows_filter", "filters": []},
        {"type": "file_metadata_filter", "filters": [{"type": "name_regexp", "value": r"^part-\d+"},
                                                     {"type": "file_size_max", "value": 1024**3}]},
    )
    specs = file_filters_of(transformations)
    assert specs == [FileFilterSpec("name_glob", "*.csv"), FileFilterSpec("file_size_min", 1),
                     FileFilterSpec("name_regexp", r"^part-\d+"), FileFilterSpec("file_size_max", 1024**3)]
    assert build("s3", transformations=transformations).file_filters == specs


def test_onetl_file_filters():
    from onetl.file.filter import FileSizeRange, Glob, Regexp

    built = onetl_file_filters([FileFilterSpec("name_glob", "*.csv"), FileFilterSpec("name_regexp", "^a"),
                                FileFilterSpec("file_size_min", 10), FileFilterSpec("file_size_max", 20)])
    assert [type(f) for f in built] == [Glob, Regexp, FileSizeRange, FileSizeRange]
    assert built[0].pattern == "*.csv" and built[1].pattern.pattern == "^a"
    assert (built[2].min, built[2].max, built[3].min, built[3].max) == (10, None, None, 20)


@pytest.mark.parametrize(("item", "message"), [
    ({"type": "name_size", "value": 1}, "unknown file_metadata_filter 'name_size'"),
    ({"type": "name_glob", "value": ""}, "'name_glob' needs a non-empty string"),
    ({"type": "name_regexp", "value": "("}, "name_regexp '\\(': "),
    ({"type": "file_size_min", "value": -1}, "needs a size in bytes"),
    ({"type": "file_size_max", "value": True}, "needs a size in bytes"),
    ({"type": "file_size_max", "value": "1GiB"}, "needs a size in bytes"),
])
def test_bad_file_metadata_filter(item, message):
    with pytest.raises(InvalidParamsError, match=message):
        build("sftp", transformations=({"type": "file_metadata_filter", "filters": [item]},))


# --- formats, extensions and file names ----------------------------------------------------------------------------


@pytest.mark.parametrize(("file_format", "extension"), [
    ({"type": "csv", "compression": "gzip"}, "csv.gz"),
    ({"type": "csv", "compression": "none"}, "csv"),
    ({"type": "csv"}, "csv"),
    ({"type": "jsonline", "compression": "bzip2"}, "jsonl.bz2"),
    ({"type": "json", "compression": "gzip"}, "json.gz"),
    ({"type": "orc", "compression": "zlib"}, "zlib.orc"),
    ({"type": "orc", "compression": "none"}, "orc"),
    ({"type": "parquet", "compression": "snappy"}, "snappy.parquet"),
    ({"type": "parquet", "compression": "lz4"}, "lz4hadoop.parquet"),
    ({"type": "parquet", "compression": "uncompressed"}, "parquet"),
    ({"type": "xml", "root_tag": "r", "row_tag": "i", "compression": "none"}, "xml"),
    ({"type": "excel", "include_header": True}, "xlsx"),
])
def test_extension(file_format, extension):
    assert parse_file_format(file_format, role="source").extension == extension


def test_format_keys_renamed_and_unknown_keys_kept():
    parsed = parse_file_format({"type": "xml", "root_tag": "rows", "row_tag": "row", "compression": "none",
                                "timestampFormat": "yyyy"}, role="target")
    assert parsed.options == {"rootTag": "rows", "rowTag": "row", "timestampFormat": "yyyy"}
    excel = parse_file_format({"type": "excel", "include_header": True, "start_cell": "B2"}, role="source")
    assert excel.options == {"header": True, "dataAddress": "B2"}


def test_template_rendering():
    assert check_file_name_template(TEMPLATE) == TEMPLATE
    assert render_file_name(TEMPLATE, index=3, extension="csv.gz", run_id=9, run_created_at=CREATED) == (
        "2024_05_01_09_08_07-3.csv.gz"
    )
    assert parse_df_schema(None) is None and parse_df_schema("") is None


def test_output_file_names_in_path_order_keeping_partition_directories():
    names = output_file_names(
        ["part-00001-x.csv.gz", "day=2024-01-01/part-00000-y.csv.gz", "part-00000-z.csv.gz"],
        template="{run_id}_{index}.{extension}", extension="csv.gz", run_id=5, run_created_at=CREATED,
    )
    assert names == {
        "day=2024-01-01/part-00000-y.csv.gz": "day=2024-01-01/5_0.csv.gz",
        "part-00000-z.csv.gz": "5_1.csv.gz",
        "part-00001-x.csv.gz": "5_2.csv.gz",
    }


@pytest.mark.parametrize("template", ["../{run_id}-{index}.{extension}", "/{run_id}-{index}.{extension}",
                                      "a/../../{run_id}-{index}.{extension}"])
def test_output_file_names_stay_inside_the_directory(template):
    with pytest.raises(InvalidParamsError, match="not a relative file name"):
        output_file_names(["part-0.csv"], template=template, extension="csv", run_id=1, run_created_at=CREATED)


@pytest.mark.parametrize(("name", "metadata"), [
    ("part-00000-abc.csv.gz", False), ("2024_05_01-0.csv", False), (".part-00000-abc.csv.gz.crc", True),
    ("_SUCCESS", True), ("._SUCCESS.crc", True), ("_committed_123", True),
])
def test_spark_metadata_files(name, metadata):
    assert is_spark_metadata_file(name) is metadata


def test_directory_path_normalised():
    assert directory_path_of({"directory_path": "//data//in/./x/"}, "p") == "/data/in/x"
    assert directory_path_of({"directory_path": "/data/../etc"}, "p") == "/etc"
    assert directory_path_of({"directory_path": "/"}, "p") == "/"


# --- jars ------------------------------------------------------------------------------------------------------------


class FakeJVM:
    """``spark._jvm`` where only the named classes exist (anything else is a py4j package, as in a real JVM)."""

    def __init__(self, *classes: str) -> None:
        self.classes = set(classes)

    def __getattr__(self, name: str) -> Any:
        from py4j.java_gateway import JavaClass

        if name in self.classes:
            return JavaClass.__new__(JavaClass)
        return object()


class FakeSpark:
    def __init__(self, *classes: str) -> None:
        self._jvm = FakeJVM(*classes)


@pytest.mark.parametrize(("role", "error"), [("source", SourceError), ("target", TargetError)])
def test_xml_without_its_jar_names_the_jar(role, error):
    xml = {"type": "xml", "root_tag": "rows", "row_tag": "row"}
    params = file_params("sftp", role, file_format=xml)
    handler = build("sftp", role=role, **{f"{role}_params": params})
    assert handler.maven_packages == ("com.databricks:spark-xml_2.12:0.18.0",)
    with pytest.raises(error) as info:
        handler.check_format_jar(FakeSpark())
    reason = info.value.reason
    assert "com.databricks:spark-xml_2.12:0.18.0" in reason and "com.databricks.spark.xml.XmlReader" in reason
    assert "SYNCMASTER__SPARK__JARS" in reason and "\n" not in reason
    handler.check_format_jar(FakeSpark(REQUIRED_JARS["xml"][0]))  # present: no error


def test_excel_jar_coordinates():
    handler = build("webdav", source_params=file_params("webdav", file_format={"type": "excel"}))
    assert handler.maven_packages == ("dev.mauch:spark-excel_2.12:3.5.6_0.31.2",)
    with pytest.raises(SourceError, match=re.escape("dev.mauch:spark-excel_2.12:3.5.6_0.31.2")):
        handler.check_format_jar(FakeSpark())


def test_csv_needs_no_jar():
    handler = build("sftp")
    assert handler.maven_packages == ()
    handler.check_format_jar(FakeSpark())


def test_s3_maven_packages_and_exclusions():
    handler = build("s3", source_params=file_params("s3", file_format={"type": "xml", "row_tag": "r"}))
    assert handler.maven_packages[0].startswith("org.apache.spark:spark-hadoop-cloud_2.12:3.5.")
    assert handler.maven_packages[1] == "com.databricks:spark-xml_2.12:0.18.0"
    assert "org.apache.hadoop:hadoop-client-api" in handler.maven_exclusions()
    assert handler.read_options() == {"inferSchema": True}  # as SyncMaster for XML and Excel on S3


# --- driver-local files and the placement strategy -----------------------------------------------------------------


def test_staging_refuses_executors_on_other_nodes():
    handler = build("ftp")
    handler.check_staging_possible()  # unknown: allowed
    handler.update_context(executors_on_driver_node=lambda: True)
    handler.check_staging_possible()
    handler.update_context(executors_on_driver_node=lambda: False)
    with pytest.raises(SourceError, match="executors are not all on the driver's node"):
        handler.check_staging_possible()


def test_connection_errors_name_their_root_cause():
    try:
        try:
            raise PermissionError("530 Authentication failed.\nDebugging info: ftputil 5.2.0")
        except PermissionError as exc:
            raise RuntimeError("Connection is unavailable") from exc
    except RuntimeError as exc:
        outer = exc
    assert error_with_cause(outer) == (
        "RuntimeError: Connection is unavailable (PermissionError: 530 Authentication failed.)"
    )
    assert error_with_cause(ValueError("alone")) == "ValueError: alone"


def test_nothing_to_read():
    with pytest.raises(SourceError, match="no files matching file_metadata_filter in '/data/in' of sftp connection"):
        build("sftp", transformations=({"type": "file_metadata_filter",
                                        "filters": [{"type": "name_glob", "value": "*.x"}]},)).nothing_to_read()
    incremental = build("sftp", strategy=Strategy(type="incremental", increment_by="file_name"))
    assert incremental.nothing_to_read() is None


@pytest.mark.parametrize("kind", LOCAL_TYPES)
def test_local_types_keep_files_on_the_driver(kind):
    handler = build(kind)
    assert handler.driver_local_files is True
    assert not isinstance(handler, RemoteFileHandler)


def test_s3_is_staged_without_s3a_jars():
    assert build("s3", settings=SparkSettings(jars=["/usr/share/java/postgresql.jar"])).driver_local_files is True
    with_jars = SparkSettings(jars=["/opt/jars/hadoop-aws-3.3.4.jar", "/opt/jars/aws-sdk.jar"])
    assert build("s3", settings=with_jars).driver_local_files is False
    with_maven = SparkSettings(jars=[], use_maven_packages=True)
    assert build("s3", settings=with_maven).driver_local_files is False


@pytest.mark.parametrize(("clusters", "staged"), [
    ({}, False),  # plugins resolve it, Spark uses hdfs:// itself
    ({"rnd-dwh": {"host": "nn", "ipc_port": 8020}}, False),
    ({"rnd-dwh": {"host": "nn", "webhdfs_port": 9870}}, True),  # WebHDFS only
    ({"other": {"host": "nn"}}, False),
])
def test_hdfs_is_staged_when_only_webhdfs_is_known(clusters, staged):
    handler = build("hdfs", settings=SparkSettings(hdfs_clusters=clusters))
    assert isinstance(handler, HDFSHandler)
    assert handler.driver_local_files is staged


@pytest.mark.parametrize(("source", "target", "strategy"), [
    ("postgres", "postgres", "PACK"),
    ("postgres", "sftp", "STRICT_PACK"),
    ("samba", "postgres", "STRICT_PACK"),
    ("s3", "postgres", "STRICT_PACK"),  # no S3A jar configured: staged
    ("hdfs", "postgres", "PACK"),  # cluster not listed: onETL plugins and hdfs:// in Spark
])
def test_placement_strategy_of_real_handlers(source, target, strategy):
    from syncmaster_ray.job.transfer import build_handlers

    def side(kind: str, role: str) -> tuple[ConnectionSpec, dict]:
        if kind == "postgres":
            return (connection("postgres", data={"host": "pg", "database_name": "db"}),
                    {"type": "postgres", "table_name": "public.t"})
        return connection(kind), file_params(kind, role)

    source_conn, source_params = side(source, "source")
    target_conn, target_params = side(target, "target")
    run = spec(source=source_conn, target=target_conn, source_params=source_params, target_params=target_params)
    assert placement_strategy(build_handlers(run)) == strategy


# --- the final move into a file target: all or nothing -------------------------------------------------------------


class FakeFileConnection:
    """The onETL file-connection calls the move makes, over a local directory standing in for the server.

    ``fail(operation, *paths)`` returning True makes that call raise ``OSError`` (before acting, or after it when
    ``after`` is set, as a connection lost once the server had renamed).
    """

    def __init__(self, root: Any, fail: Any = None, *, after: bool = False) -> None:
        self.root = root
        self.fail = fail or (lambda *_: False)
        self.after = after
        self.calls: list[tuple[str, ...]] = []

    def local(self, path: str) -> Any:
        return self.root / str(path).lstrip("/")

    def _call(self, operation: str, *paths: str) -> bool:
        self.calls.append((operation, *paths))
        failing = bool(self.fail(operation, *paths))
        if failing and not self.after:
            raise OSError(f"{operation} {' -> '.join(paths)}: refused by the fake server")
        return failing

    def path_exists(self, path: str) -> bool:
        return self.local(path).exists()

    def rename_file(self, source: str, target: str, *, replace: bool = False) -> None:
        # As onETL's FileConnection.rename_file: the source must be a file, so must a target that exists.
        failing = self._call("rename_file", source, target)
        src, dst = self.local(source), self.local(target)
        if not src.is_file():
            raise FileNotFoundError(f"{source} is not a file")
        if dst.exists():
            if not dst.is_file():
                raise IsADirectoryError(f"{target} is not a file")
            if not replace:
                raise FileExistsError(f"{target} already exists")
            dst.unlink()
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dst)
        if failing:
            raise OSError(f"connection lost after renaming {source}")

    def remove_file(self, path: str) -> bool:
        self._call("remove_file", path)
        if not self.local(path).exists():
            return False
        self.local(path).unlink()
        return True

    def remove_dir(self, path: str, *, recursive: bool = False) -> bool:
        import shutil

        self._call("remove_dir", path)
        if not self.local(path).exists():
            return False
        if recursive:
            shutil.rmtree(self.local(path))
        else:
            self.local(path).rmdir()  # OSError when not empty, as onETL's DirectoryNotEmptyError
        return True


def snapshot(directory: Any, *, skip: str | None = None) -> dict[str, bytes | None]:
    """Relative path -> content (None for a directory), below ``directory`` (without ``skip`` and what it holds)."""
    result: dict[str, bytes | None] = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if skip and (relative == skip or relative.startswith(skip + "/")):
            continue
        result[relative] = path.read_bytes() if path.is_file() else None
    return result


TARGET_DIR = "/data/in"  # file_params' directory_path
RUN_TMP = "/data/in/.tmp/42"  # run 42's own staging dir
NEW_NAMES = ["1-0.csv", "1-1.csv", "1-2.csv", "day=2/1-3.csv"]


@pytest.fixture
def storage(tmp_path) -> Any:
    """A target directory with old files (two of them with names the run writes) and the run's staged files."""
    target = tmp_path / TARGET_DIR.lstrip("/")
    for name, content in {"1-0.csv": b"old 0", "1-2.csv": b"old 2", "keep.csv": b"other", "sub/x.csv": b"x"}.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(content)
    (target / ".tmp" / "41").mkdir(parents=True)  # another run's: never touched
    for name in NEW_NAMES:
        staged = tmp_path / RUN_TMP.lstrip("/") / name
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_bytes(f"new {name}".encode())
    return tmp_path


def target_handler(connection: FakeFileConnection) -> Any:
    handler = build("sftp", role="target")
    handler.file_connection = connection
    return handler


def publish(handler: Any, names: list[str]) -> None:
    """What both write paths do once the run's files are in .tmp/{run_id}."""
    try:
        handler.move_into_target(RUN_TMP, names)
    finally:
        handler.remove_remote_tmp(RUN_TMP)


def test_move_replaces_same_names_keeps_other_files_and_leaves_no_tmp(storage):
    connection = FakeFileConnection(storage)
    handler = target_handler(connection)

    publish(handler, NEW_NAMES)

    assert snapshot(storage / "data/in") == {
        ".tmp": None, ".tmp/41": None,
        "1-0.csv": b"new 1-0.csv", "1-1.csv": b"new 1-1.csv", "1-2.csv": b"new 1-2.csv",
        "day=2": None, "day=2/1-3.csv": b"new day=2/1-3.csv",
        "keep.csv": b"other", "sub": None, "sub/x.csv": b"x",
    }
    assert handler.metrics["files_written"] == 4
    # The old files went aside first (a rename within the storage), then the new ones came in, never over a file.
    renames = [call[1:] for call in connection.calls if call[0] == "rename_file"]
    assert renames[:2] == [("/data/in/1-0.csv", "/data/in/.tmp/42/.replaced/1-0.csv"),
                           ("/data/in/1-2.csv", "/data/in/.tmp/42/.replaced/1-2.csv")]
    assert renames[2:] == [(f"{RUN_TMP}/{name}", f"/data/in/{name}") for name in NEW_NAMES]


def test_move_of_nothing_writes_nothing(storage):
    before = snapshot(storage / "data/in", skip=".tmp/42")
    handler = target_handler(FakeFileConnection(storage))
    publish(handler, [])
    assert snapshot(storage / "data/in") == before
    assert handler.metrics["files_written"] == 0


@pytest.mark.parametrize("k", range(len(NEW_NAMES)))
@pytest.mark.parametrize("after", [False, True], ids=["refused", "lost_after_rename"])
def test_failure_on_the_kth_move_leaves_the_target_as_it_was(storage, k, after):
    moves = iter(range(100))

    def kth_move(operation: str, *paths: str) -> bool:
        return operation == "rename_file" and paths[0].startswith(RUN_TMP + "/") and next(moves) == k

    before = snapshot(storage / "data/in", skip=".tmp/42")
    handler = target_handler(FakeFileConnection(storage, kth_move, after=after))

    with pytest.raises(OSError, match=r"refused by the fake server|connection lost") as info:
        publish(handler, NEW_NAMES)

    assert not isinstance(info.value, TargetError)  # the original error: the job blames the target with it
    assert snapshot(storage / "data/in") == before  # names, contents and directories (no day=2 left behind)
    assert not (storage / RUN_TMP.lstrip("/")).exists()
    assert "files_written" not in handler.metrics


@pytest.mark.parametrize("k", range(2))
def test_failure_while_setting_old_files_aside_leaves_the_target_as_it_was(storage, k):
    asides = iter(range(100))

    def kth_aside(operation: str, *paths: str) -> bool:
        return operation == "rename_file" and "/.replaced/" in paths[1] and next(asides) == k

    before = snapshot(storage / "data/in", skip=".tmp/42")
    connection = FakeFileConnection(storage, kth_aside)

    with pytest.raises(OSError, match="refused by the fake server"):
        publish(target_handler(connection), NEW_NAMES)

    assert snapshot(storage / "data/in") == before
    assert not (storage / RUN_TMP.lstrip("/")).exists()
    new_files = {f"{RUN_TMP}/{name}" for name in NEW_NAMES}
    assert not any(call[1] in new_files for call in connection.calls if call[0] == "rename_file")  # none moved


def test_a_directory_with_an_output_name_fails_the_move_before_any_new_file_lands(storage):
    (storage / "data/in/1-2.csv").unlink()
    (storage / "data/in/1-2.csv").mkdir()
    (storage / "data/in/1-2.csv/inside.txt").write_bytes(b"kept")
    before = snapshot(storage / "data/in", skip=".tmp/42")

    with pytest.raises(FileNotFoundError, match=re.escape("1-2.csv is not a file")):
        publish(target_handler(FakeFileConnection(storage)), NEW_NAMES)

    assert snapshot(storage / "data/in") == before
    assert not (storage / RUN_TMP.lstrip("/")).exists()


def test_failed_undo_is_in_the_reason_and_the_replaced_files_are_kept(storage):
    def third_move_and_putting_1_0_back(operation: str, *paths: str) -> bool:
        return operation == "rename_file" and paths in {(f"{RUN_TMP}/1-2.csv", "/data/in/1-2.csv"),
                                                        (f"{RUN_TMP}/.replaced/1-0.csv", "/data/in/1-0.csv")}

    handler = target_handler(FakeFileConnection(storage, third_move_and_putting_1_0_back))

    with pytest.raises(TargetError) as info:
        publish(handler, NEW_NAMES)

    reason = info.value.reason
    assert reason.startswith("moving 4 files into '/data/in' of sftp connection 'sftp_conn' failed: OSError: "
                             "rename_file /data/in/.tmp/42/1-2.csv -> /data/in/1-2.csv")
    assert "undoing the move failed too" in reason
    assert "old file '/data/in/1-0.csv' not put back from '/data/in/.tmp/42/.replaced/1-0.csv'" in reason
    assert reason.endswith("the files it replaced are kept in '/data/in/.tmp/42/.replaced'")
    assert PASSWORD not in reason and "\n" not in reason
    assert isinstance(info.value.__cause__, OSError)
    target = storage / "data/in"
    # Everything else was undone; the old 1-0.csv is kept where the message says, not deleted with .tmp/42.
    assert (target / ".tmp/42/.replaced/1-0.csv").read_bytes() == b"old 0"
    assert not (target / "1-0.csv").exists() and not (target / "1-1.csv").exists()
    assert (target / "1-2.csv").read_bytes() == b"old 2" and (target / "keep.csv").read_bytes() == b"other"


def test_undo_failed_names_a_few_problems_and_counts_the_rest():
    from syncmaster_ray.handlers.files.move import UndoFailed, parent_dirs

    assert str(UndoFailed(["a", "b", "c", "d", "e"])) == "a; b; c; and 2 more"
    assert str(UndoFailed(["a"])) == "a"
    assert parent_dirs(["x", "a/b/f", "a/g", "c=1/h"]) == ["a/b", "a", "c=1"]
