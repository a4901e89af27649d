"""Postgres <-> every SyncMaster file type through the whole pipeline: Celery task -> Ray job -> RayDP actor.

Each protocol gets a write leg (postgres -> files) and a read leg (files -> postgres) against the session's real
servers. Formats, ``df_schema`` and the transformations are spread over those legs instead of multiplied, since
each run costs a RayDP start:

========  =====================================  ==================================================================
protocol  write                                  read
========  =====================================  ==================================================================
sftp      csv.gz with header                     csv + df_schema
ftp       jsonl                                  jsonline + df_schema + rows filter + columns filter
ftps      zlib.orc                               orc + sql transformation
webdav    snappy.parquet                         parquet
samba     csv.gz from 2 executors (2 files)      csv incremental by file_name, twice (the 2nd reads 1 new file)
s3        csv.gz (staged: no S3A in Spark)       csv + file_metadata_filter (glob and size) past decoy files
hdfs      jsonl (WebHDFS emulator, staged)       json (the jsonl turned into a JSON array)
sftp      xml without spark-xml: FAILED naming the jar
sftp      csv.gz, 3 files over old files of those names, one of them a directory: FAILED, the old files kept as
          they were
========  =====================================  ==================================================================

17 runs in all; the CI tier's write legs are sent at once, as a burst (``write_legs``), and each test waits for its own.
xml and excel round trips skip unless their jar is configured. Two more tests run handlers in a
local Spark session instead (no Ray): the direct mode of s3/hdfs, which Spark cannot use here, and the HWM of a
staged incremental read, saved only when the transfer succeeds.
"""

from __future__ import annotations

import gzip
import json
import posixpath
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.fixtures.file_servers import FileServers
from tests.fixtures.postgres_data import checksum, create_source, unique_table
from tests.fixtures.runs import start_and_wait, wait_for_end
from tests.integration.test_transfer_postgres import assert_run_shows_no_secret, connection_data

pytestmark = [pytest.mark.integration]

GROUP = "e2e"
ROWS = 1000
TEMPLATE = "{run_created_at}-{index}.{extension}"
# Spark writes timestamps to text formats with milliseconds unless told otherwise; the source has microseconds.
# An onETL-native key, passed through as is (as SyncMaster's own tests insert them).
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"
CSV = {
    "type": "csv", "delimiter": ",", "encoding": "utf-8", "quote": '"', "escape": "\\", "include_header": True,
    "line_sep": "\n", "compression": "gzip", "timestampFormat": TIMESTAMP_FORMAT,
}
JSONLINE = {"type": "jsonline", "encoding": "utf-8", "line_sep": "\n", "compression": "none",
            "timestampFormat": TIMESTAMP_FORMAT}
JSON = {"type": "json", "encoding": "utf-8", "line_sep": "\n", "compression": "none",
        "timestampFormat": TIMESTAMP_FORMAT}
ORC = {"type": "orc", "compression": "zlib"}
PARQUET = {"type": "parquet", "compression": "snappy"}
XML = {"type": "xml", "root_tag": "rows", "row_tag": "row", "compression": "none"}
EXCEL = {"type": "excel", "include_header": True, "start_cell": None}
# The source table's columns (tests/fixtures/postgres_data.py) as a Spark StructType JSON string, as SyncMaster's
# tests store it.
DF_SCHEMA = json.dumps({
    "type": "struct",
    "fields": [
        {"name": name, "type": kind, "nullable": True, "metadata": {}}
        for name, kind in [("Id", "integer"), ("BigValue", "long"), ("amount", "decimal(14,3)"), ("Name", "string"),
                           ("is_active", "boolean"), ("day", "date"), ("local_ts", "timestamp"),
                           ("event_at", "timestamp")]
    ],
})
MISSING_JARS = {
    "xml": ("spark-xml", "com.databricks:spark-xml_2.12:0.18.0"),
    "excel": ("spark-excel", "dev.mauch:spark-excel_2.12:3.5.6_0.31.2"),
}


@dataclass
class Files:
    """The session's services, plus what every test here does with them."""

    repo: Any
    catalog: Any
    queue: Any
    data_db_url: str
    servers: FileServers
    app_env: dict[str, str]
    dashboard_url: str

    def connection(self, protocol: str) -> Any:
        name = f"files_{protocol}"
        if self.catalog.find_connection(GROUP, name) is None:
            if protocol == "postgres":
                data, auth = connection_data(self.data_db_url)
            else:
                data, auth = self.servers[protocol]
            self.catalog.create_connection(group_name=GROUP, name=name, type_=protocol, data=data, auth=auth,
                                           secret_key=self.app_env["SYNCMASTER__ENCRYPTION__SECRET_KEY"])
        return self.catalog.find_connection(GROUP, name)

    def transfer(self, source_params: dict, target_params: dict, *, strategy: dict | None = None,
                 transformations: list | None = None, executors: int = 1) -> Any:
        return self.catalog.create_transfer(
            group_id=self.queue.group_id, name=f"files_{secrets.token_hex(4)}", description="",
            queue_id=self.queue.id,
            source_connection_id=self.connection(source_params["type"]).id,
            target_connection_id=self.connection(target_params["type"]).id,
            source_params=source_params, target_params=target_params,
            strategy_params=strategy or {"type": "full"}, transformations=transformations or [],
            resources={"max_parallel_tasks": executors, "cpu_cores_per_task": 1, "ram_bytes_per_task": 1024**3},
            is_scheduled=False, schedule="",
        )

    def run(self, transfer: Any) -> tuple[Any, Any]:
        """Run to the end; FINISHED, with the run's temp dir gone and no secret in what Ray keeps."""
        return self.finished(start_and_wait(self.repo, transfer, self.queue.slug))

    def finished(self, run: Any) -> tuple[Any, Any]:
        record = self.repo.get_record(run.id)
        assert run.status == "FINISHED", record.reason if record else None
        assert list(Path(tempfile.gettempdir()).glob(f"{record.submission_id}_*")) == []  # the actor's work dir
        assert_run_shows_no_secret(self.dashboard_url, record, self.app_env)
        return run, record

    def directory(self, protocol: str, name: str) -> str:
        return posixpath.join(self.servers.base_path(protocol), f"smr_{name}_{secrets.token_hex(4)}")

    def client(self, protocol: str) -> Any:
        return self.servers.onetl_connection(protocol)


@pytest.fixture(scope="module")
def files(repo, catalog, e2e_queue, data_db_url, file_servers, app_env, ray_head, celery_worker) -> Files:
    return Files(repo, catalog, e2e_queue, data_db_url, file_servers, app_env, ray_head.dashboard_url)


@pytest.fixture(scope="module")
def source_table(data_db_url) -> str:
    """One source table for every leg: 1000 rows of every type plus rows of NULLs."""
    table = unique_table("files_src")
    create_source(data_db_url, table, rows=ROWS)
    return table


# --- helpers ---------------------------------------------------------------------------------------------------------


def file_params(protocol: str, directory: str, file_format: dict, **extra: Any) -> dict:
    return {"type": protocol, "directory_path": directory, "file_format": file_format, "options": {}, **extra}


def pg_params(table: str) -> dict:
    return {"type": "postgres", "table_name": table}


def expected_names(run: Any, extension: str, count: int, template: str = TEMPLATE) -> set[str]:
    created = run.created_at.strftime("%Y_%m_%d_%H_%M_%S")
    return {template.format(index=i, extension=extension, run_id=run.id, run_created_at=created) for i in range(count)}


def listing(client: Any, directory: str) -> tuple[set[str], set[str]]:
    """(file names, directory names) directly in ``directory``."""
    for root, dirs, found in client.walk(directory):
        if posixpath.normpath(str(root)) == posixpath.normpath(directory):
            return {f.name for f in found}, {d.name for d in dirs}
    return set(), set()


@dataclass(frozen=True)
class WriteLeg:
    """A postgres -> files run sent and not waited for yet."""

    protocol: str
    directory: str
    run_id: int
    executors: int
    extension: str


def launch_write(files: Files, protocol: str, source_table: str, file_format: dict, extension: str, *,
                 executors: int = 1, name: str = "out") -> WriteLeg:
    from syncmaster_ray.cli.run import send_run_task

    directory = files.directory(protocol, name)
    transfer = files.transfer(
        pg_params(source_table), file_params(protocol, directory, file_format, file_name_template=TEMPLATE),
        executors=executors,
    )
    run = files.repo.create_run(transfer.id)
    send_run_task(run.id, files.queue.slug)
    return WriteLeg(protocol, directory, run.id, executors, extension)


def write_leg(files: Files, protocol: str, source_table: str, file_format: dict, extension: str, *,
              executors: int = 1, name: str = "out") -> tuple[str, Any, set[str]]:
    """postgres -> files, waited for; see ``finish_write``."""
    return finish_write(files, launch_write(files, protocol, source_table, file_format, extension,
                                            executors=executors, name=name))


def finish_write(files: Files, leg: WriteLeg) -> tuple[str, Any, set[str]]:
    """The write leg's end: FINISHED, file names as the template says, the staging dir gone."""
    directory, protocol, executors, extension = leg.directory, leg.protocol, leg.executors, leg.extension
    run, record = files.finished(wait_for_end(files.repo, leg.run_id))
    client = files.client(protocol)
    try:
        names, dirs = listing(client, directory)
        assert names == expected_names(run, extension, record.metrics["files_written"])
        assert record.metrics["files_written"] >= executors
        assert dirs <= {".tmp"}  # SyncMaster leaves the staging parent; this run's own dir is gone
        assert not client.path_exists(posixpath.join(directory, ".tmp", str(run.id)))
    finally:
        client.close()
    return directory, run, names


@pytest.fixture(scope="module")
def write_legs(files, source_table) -> dict[str, WriteLeg]:
    """Every CI write leg sent at once, as a schedule firing sends a burst: each test waits for its own, while
    the worker runs the others (two at a time here), and then runs its read leg."""
    return {
        "sftp": launch_write(files, "sftp", source_table, CSV, "csv.gz"),
        "ftp": launch_write(files, "ftp", source_table, JSONLINE, "jsonl"),
        "ftps": launch_write(files, "ftps", source_table, ORC, "zlib.orc"),
        "samba": launch_write(files, "samba", source_table, CSV, "csv.gz", executors=2),
        "s3": launch_write(files, "s3", source_table, CSV, "csv.gz"),
    }


def read_leg(files: Files, protocol: str, directory: str, file_format: dict, target_table: str, **kwargs: Any):
    transfer = files.transfer(
        file_params(protocol, directory, file_format, **kwargs.pop("source_extra", {})), pg_params(target_table),
        **kwargs,
    )
    return transfer, *files.run(transfer)


def assert_same_rows(files: Files, source_table: str, target_table: str) -> None:
    assert checksum(files.data_db_url, target_table, lowercase=True) == checksum(
        files.data_db_url, source_table, lowercase=False
    )


def fetch(db_url: str, query: sql.Composable) -> list[tuple]:
    """Rows ordered by their first column (never NULL in the queries here)."""
    with psycopg.connect(db_url) as conn:
        return sorted(conn.execute(query).fetchall(), key=lambda row: row[0])


def table_ident(table: str) -> sql.Identifier:
    return sql.Identifier(*table.split("."))


# --- one pair of legs per protocol -------------------------------------------------------------------------------


def test_sftp_csv_with_header_then_read_with_df_schema(files, source_table, write_legs):
    directory, _, _ = finish_write(files, write_legs["sftp"])
    target = unique_table("files_sftp")

    _, _, record = read_leg(files, "sftp", directory, CSV, target, source_extra={"df_schema": DF_SCHEMA})

    assert record.metrics["files_read"] == 1
    assert_same_rows(files, source_table, target)


def test_ftp_jsonline_then_read_with_rows_and_columns_filters(files, source_table, write_legs):
    directory, _, _ = finish_write(files, write_legs["ftp"])
    target = unique_table("files_ftp")
    transformations = [
        {"type": "dataframe_rows_filter", "filters": [
            {"type": "is_not_null", "field": "Name"},
            {"type": "less_than", "field": "Id", "value": "500"},
            {"type": "like", "field": "Name", "value": "%1%"},
        ]},
        {"type": "dataframe_columns_filter", "filters": [
            {"type": "include", "field": "Id"},
            {"type": "rename", "field": "Name", "to": "title"},
            {"type": "cast", "field": "amount", "as_type": "string"},
            {"type": "include", "field": "day"},
        ]},
    ]

    read_leg(files, "ftp", directory, JSONLINE, target, source_extra={"df_schema": DF_SCHEMA},
             transformations=transformations)

    expected = fetch(files.data_db_url, sql.SQL(
        """SELECT "Id", "Name", amount::text, day FROM {} WHERE "Name" IS NOT NULL AND "Id" < 500
           AND "Name" LIKE '%1%'"""
    ).format(table_ident(source_table)))
    got = fetch(files.data_db_url, sql.SQL("SELECT id, title, amount, day FROM {}").format(table_ident(target)))
    assert len(expected) > 10
    assert got == expected


def test_ftps_orc_then_sql_transformation_on_the_file_source(files, source_table, write_legs):
    directory, _, _ = finish_write(files, write_legs["ftps"])
    target = unique_table("files_ftps")
    query = ("SELECT Id AS id, Name AS name, amount * 2 AS double_amount, day FROM source "
             "WHERE is_active AND Id % 10 = 0")

    read_leg(files, "ftps", directory, ORC, target, transformations=[{"type": "sql", "query": query,
                                                                      "dialect": "spark"}])

    expected = fetch(files.data_db_url, sql.SQL(
        'SELECT "Id", "Name", amount * 2, day FROM {} WHERE is_active AND "Id" % 10 = 0'
    ).format(table_ident(source_table)))
    got = fetch(files.data_db_url, sql.SQL("SELECT id, name, double_amount, day FROM {}").format(table_ident(target)))
    assert len(expected) > 10
    assert got == expected


@pytest.mark.long  # a plain round trip; test_file_servers.py checks the server in CI
def test_webdav_parquet_round_trip(files, source_table):
    directory, _, _ = write_leg(files, "webdav", source_table, PARQUET, "snappy.parquet")
    target = unique_table("files_webdav")

    read_leg(files, "webdav", directory, PARQUET, target)

    assert_same_rows(files, source_table, target)


def test_samba_two_files_then_incremental_by_file_name_reads_only_new_files(files, source_table, write_legs):
    directory, _, names = finish_write(files, write_legs["samba"])
    assert len(names) == 2
    target = unique_table("files_samba")
    incremental = {"type": "incremental", "increment_by": "file_name"}

    transfer, _, first = read_leg(files, "samba", directory, CSV, target, strategy=incremental,
                                  source_extra={"df_schema": DF_SCHEMA})
    assert first.metrics["files_read"] == 2
    assert_same_rows(files, source_table, target)

    # A new file lands next to the ones already transferred: the next run takes it alone, appending its rows.
    client = files.client("samba")
    try:
        content = client.read_bytes(posixpath.join(directory, min(names)))
        client.write_bytes(posixpath.join(directory, "late-arrival.csv.gz"), content)
    finally:
        client.close()
    new_rows = len(gzip.decompress(content).decode().splitlines()) - 1  # minus the header
    assert new_rows > 0

    _, second = files.run(transfer)

    assert second.metrics["files_read"] == 1
    count, _ = checksum(files.data_db_url, target, lowercase=True)
    assert count == ROWS + 3 + new_rows


def test_s3_csv_then_file_metadata_filter_skips_other_files(files, source_table, write_legs):
    directory, _, _ = finish_write(files, write_legs["s3"])
    client = files.client("s3")
    try:
        # Neither may be read: reading them would add garbage rows or fail on a truncated gzip stream.
        client.write_text(posixpath.join(directory, "notes.txt"), "not,a,data,file\n")
        client.write_bytes(posixpath.join(directory, "empty.csv.gz"), b"")
    finally:
        client.close()
    target = unique_table("files_s3")
    metadata_filter = {"type": "file_metadata_filter", "filters": [
        {"type": "name_glob", "value": "*.csv.gz"},
        {"type": "file_size_min", "value": 1},
    ]}

    _, _, record = read_leg(files, "s3", directory, CSV, target, source_extra={"df_schema": DF_SCHEMA},
                            transformations=[metadata_filter])

    assert record.metrics["files_read"] == 1
    assert_same_rows(files, source_table, target)


@pytest.mark.long  # a plain round trip; test_file_servers.py checks the server in CI
def test_hdfs_jsonline_then_read_as_json(files, source_table):
    directory, _, names = write_leg(files, "hdfs", source_table, JSONLINE, "jsonl")
    # JSON (read-only in SyncMaster) is one document per file: the rows written above as one JSON array.
    json_dir = files.directory("hdfs", "json")
    client = files.client("hdfs")
    try:
        lines = [line for name in sorted(names)
                 for line in client.read_text(posixpath.join(directory, name)).splitlines() if line.strip()]
        client.write_text(posixpath.join(json_dir, "rows.json"), "[\n" + ",\n".join(lines) + "\n]\n")
    finally:
        client.close()
    assert len(lines) == ROWS + 3
    target = unique_table("files_hdfs")

    read_leg(files, "hdfs", json_dir, JSON, target, source_extra={"df_schema": DF_SCHEMA})

    assert_same_rows(files, source_table, target)


# --- formats that need Maven-only jars on Spark 3.5 --------------------------------------------------------------


def jar_configured(artifact: str) -> bool:
    from syncmaster_ray.settings import get_settings

    spark = get_settings().spark
    return spark.use_maven_packages or any(artifact in Path(jar).name for jar in spark.jars)


@pytest.mark.parametrize("file_format", [XML, EXCEL], ids=["xml", "excel"])
def test_xml_and_excel_round_trip(files, source_table, file_format):
    artifact, coordinates = MISSING_JARS[file_format["type"]]
    if not jar_configured(artifact):
        pytest.skip(f"{file_format['type']} needs {coordinates} (Maven only, not in pyspark): not configured here")
    extension = "xml" if file_format["type"] == "xml" else "xlsx"
    directory, _, _ = write_leg(files, "sftp", source_table, file_format, extension)
    target = unique_table(f"files_{file_format['type']}")
    read_leg(files, "sftp", directory, file_format, target, source_extra={"df_schema": DF_SCHEMA})
    assert_same_rows(files, source_table, target)


def test_xml_without_its_jar_fails_naming_the_jar(files, source_table):
    artifact, coordinates = MISSING_JARS["xml"]
    if jar_configured(artifact):
        pytest.skip("the spark-xml jar is configured here")
    directory = files.directory("sftp", "xml")
    transfer = files.transfer(
        pg_params(source_table), file_params("sftp", directory, XML, file_name_template=TEMPLATE)
    )

    run = start_and_wait(files.repo, transfer, files.queue.slug)

    record = files.repo.get_record(run.id)
    assert run.status == "FAILED"
    assert record.error_code == "target"
    assert coordinates in record.reason and "com.databricks.spark.xml.XmlReader" in record.reason
    assert "\n" not in record.reason and "Traceback" not in record.reason
    client = files.client("sftp")
    try:
        assert not client.path_exists(directory)  # nothing was written
    finally:
        client.close()


def test_failed_move_into_a_file_target_leaves_the_old_files_as_they_were(files, source_table):
    """Three output files; two old files of the same names and a directory with the third name (which no file can
    replace) in the target: the move fails on the directory after setting the two old files aside, and is undone."""
    from syncmaster_ray.cli.run import send_run_task

    directory = files.directory("sftp", "all_or_nothing")
    # Three partitions, so three files in a known order (1003 rows round-robin: none empty).
    three_files = [{"type": "sql", "query": "SELECT /*+ REPARTITION(3) */ * FROM source"}]
    transfer = files.transfer(pg_params(source_table), file_params("sftp", directory, CSV, file_name_template=TEMPLATE),
                              transformations=three_files)
    run = files.repo.create_run(transfer.id)  # the output names depend on the run: create it, then send the task
    created = run.created_at.strftime("%Y_%m_%d_%H_%M_%S")
    first, second, third = (TEMPLATE.format(index=i, extension="csv.gz", run_id=run.id, run_created_at=created)
                            for i in range(3))
    old = {first: b"old first\n" + secrets.token_bytes(64), second: b"old second\n" + secrets.token_bytes(64),
           "keep.csv.gz": b"not one of the run's names\n"}
    client = files.client("sftp")
    try:
        for name, content in old.items():
            client.write_bytes(posixpath.join(directory, name), content)
        client.write_bytes(posixpath.join(directory, third, "inside.txt"), b"a directory named like an output")
    finally:
        client.close()

    send_run_task(run.id, files.queue.slug)
    run = wait_for_end(files.repo, run.id)

    record = files.repo.get_record(run.id)
    assert run.status == "FAILED"
    assert record.error_code == "target"
    assert third in record.reason and "is not a file" in record.reason
    assert "undoing" not in record.reason and "\n" not in record.reason
    assert "undone: 0 new files removed, 2 old files put back" in (record.log_tail or "")  # both were set aside
    assert_run_shows_no_secret(files.dashboard_url, record, files.app_env)
    client = files.client("sftp")
    try:
        names, dirs = listing(client, directory)
        assert names == set(old)  # no new file; none of the old ones missing
        assert dirs == {".tmp", third}
        assert {name: client.read_bytes(posixpath.join(directory, name)) for name in names} == old  # byte-identical
        assert listing(client, posixpath.join(directory, third)) == ({"inside.txt"}, set())
        assert not client.path_exists(posixpath.join(directory, ".tmp", str(run.id)))
    finally:
        client.close()


# --- the handlers' other paths, in a local Spark session (no Ray) ---------------------------------------------------
#
# Spark cannot reach S3 (no S3A jar) or the HDFS emulator (no RPC port) here, so the direct mode of
# RemoteFileHandler never runs above. These tests run it with the FTP server's data directory standing in for the
# remote storage: the file client works over FTP, Spark on the same directory through the local filesystem.


def local_handler(servers: FileServers, spark: Any, role: str, *, run_id: int, direct: bool, directory: str,
                  strategy: dict | None = None, transformations: tuple = (), tmp_path: Path) -> Any:
    from syncmaster_ray.handlers.files import RemoteFileHandler, driver_local_fs_class
    from syncmaster_ray.handlers.ftp import FTPHandler
    from syncmaster_ray.spec import ConnectionSpec, RunSpec, Strategy

    root = str(servers.server("ftp").data_dir)

    class FTPAsRemote(RemoteFileHandler, FTPHandler):
        """FTP for the file client; Spark reads and writes the FTP server's directory as if it were S3 or HDFS."""

        spark_filesystem_class = "org.apache.hadoop.fs.LocalFileSystem"

        def spark_can_be_direct(self) -> bool:
            return True

        def make_df_connection(self, spark: Any) -> Any:
            class Rooted(driver_local_fs_class()):
                def _convert_to_url(self, path: Any) -> str:
                    return "file://" + posixpath.join(root, path.as_posix().lstrip("/"))

            return Rooted(spark=spark)

    data, auth = servers["ftp"]
    conn = ConnectionSpec(id=1, type="ftp", name="ftp_local", data=data, auth=auth)
    params = file_params("ftp", directory, CSV, df_schema=DF_SCHEMA if role == "source" else None)
    if role == "target":
        params["file_name_template"] = "{run_id}-{index}.{extension}"
    spec = RunSpec(run_id=run_id, run_created_at=datetime.now(), transfer_id=1, transfer_name="t", group_name="g",
                   source=conn, target=conn, source_params=params, target_params=params,
                   strategy=Strategy(**(strategy or {"type": "full"})), transformations=transformations)
    handler = (FTPAsRemote if direct else FTPHandler)(connection=conn, params=params, spec=spec, role=role)
    handler.update_context(work_dir=tmp_path / f"run{run_id}")
    handler.work_dir.mkdir()
    handler.connect(spark)
    assert getattr(handler, "direct", False) is direct
    return handler


def sample(spark: Any) -> Any:
    return spark.sql("SELECT CAST(id AS int) AS Id, id * 1000003 AS BigValue, CAST(id / 7 AS decimal(14,3)) AS amount, "
                     "concat('name ', id) AS Name, id % 3 = 0 AS is_active, date '2020-02-29' AS day, "
                     "timestamp '2024-03-31 01:30:00' AS local_ts, timestamp '2024-03-31 01:30:00' AS event_at "
                     "FROM range(100)")


def test_direct_mode_writes_filters_and_reads_incrementally(file_servers, local_spark, tmp_path):
    from etl_entities.hwm_store import MemoryHWMStore
    from onetl.strategy import IncrementalStrategy

    directory = f"/direct_{secrets.token_hex(4)}"
    target = local_handler(file_servers, local_spark, "target", run_id=1, direct=True, directory=directory,
                           tmp_path=tmp_path)
    target.write(sample(local_spark).repartition(2))
    client = file_servers.onetl_connection("ftp")
    try:
        assert listing(client, directory) == ({"1-0.csv.gz", "1-1.csv.gz"}, {".tmp"})
        assert not client.path_exists(f"{directory}/.tmp/1")
    finally:
        client.close()

    glob = ({"type": "file_metadata_filter", "filters": [{"type": "name_glob", "value": "1-1.*"}]},)
    filtered = local_handler(file_servers, local_spark, "source", run_id=2, direct=True, transformations=glob,
                             directory=directory, tmp_path=tmp_path)
    assert filtered.read().count() == 50 and filtered.metrics["files_read"] == 1

    store, counts = MemoryHWMStore(), []
    for run_id in (3, 4):
        source = local_handler(file_servers, local_spark, "source", run_id=run_id, direct=True, tmp_path=tmp_path,
                               directory=directory, strategy={"type": "incremental", "increment_by": "file_name"})
        with store, IncrementalStrategy():
            source.update_context(previous_hwm=store.get_hwm(f"1_ftp_{directory}"))
            df = source.read()
            counts.append(df.count() if df is not None else None)
    assert counts == [100, None]  # the second run finds nothing new
    assert {path.name for path in store.get_hwm(f"1_ftp_{directory}").value} == {"1-0.csv.gz", "1-1.csv.gz"}


def test_staged_incremental_read_saves_its_hwm_only_if_the_transfer_succeeds(file_servers, local_spark, tmp_path):
    from etl_entities.hwm_store import MemoryHWMStore
    from onetl.strategy import IncrementalStrategy

    directory = f"/staged_{secrets.token_hex(4)}"
    local_handler(file_servers, local_spark, "target", run_id=5, direct=False, directory=directory,
                  tmp_path=tmp_path).write(sample(local_spark).coalesce(1))  # one file
    store = MemoryHWMStore()
    incremental = {"type": "incremental", "increment_by": "file_name"}

    source = local_handler(file_servers, local_spark, "source", run_id=6, direct=False, strategy=incremental,
                           directory=directory, tmp_path=tmp_path)
    with pytest.raises(RuntimeError, match="the write failed"), store, IncrementalStrategy():
        assert source.read().count() == 100
        raise RuntimeError("the write failed")
    assert store.get_hwm(f"1_ftp_{directory}") is None  # the files will be read again

    source = local_handler(file_servers, local_spark, "source", run_id=7, direct=False, strategy=incremental,
                           directory=directory, tmp_path=tmp_path)
    with store, IncrementalStrategy():
        assert source.read().count() == 100
    assert len(store.get_hwm(f"1_ftp_{directory}").value) == 1
