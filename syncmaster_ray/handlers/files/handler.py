"""Staged files: the file client moves them between the storage and the run's temp dir on the Spark driver."""

from __future__ import annotations

import functools
import logging
import posixpath
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncmaster_ray.errors import InvalidParamsError, SourceError, SyncmasterRayError, TargetError
from syncmaster_ray.handlers import sql_guard, transforms
from syncmaster_ray.handlers.base import ConnectionModelT, Handler, java_class
from syncmaster_ray.handlers.files.filters import file_filters_of, onetl_file_filters
from syncmaster_ray.handlers.files.move import REPLACED_DIR, UndoFailed, move_all_or_nothing
from syncmaster_ray.handlers.files.naming import is_spark_metadata_file, output_file_names
from syncmaster_ray.handlers.files.params import directory_path_of, options_of
from syncmaster_ray.handlers.formats import REQUIRED_JARS, check_file_name_template, parse_df_schema, parse_file_format
from syncmaster_ray.outcome import error_with_cause

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

FILE_INCREMENTS = ("file_name", "file_modified_since")
TMP_DIR = ".tmp"


@functools.cache
def driver_local_fs_class() -> type:
    """onETL's ``SparkLocalFS`` for any Spark master (it accepts only ``local``).

    Paths are on the driver's disk; the job makes sure every executor runs on the driver's node.
    """
    from onetl.connection import SparkLocalFS
    from pydantic import field_validator

    class DriverLocalFS(SparkLocalFS):
        @field_validator("spark", mode="before")
        @classmethod
        def _validate_spark(cls, spark: Any) -> Any:
            return spark

        def __str__(self) -> str:
            return "DriverLocalFS"

    return DriverLocalFS


class FileHandler(Handler[ConnectionModelT]):
    """A directory of files in one format, on the storage of :meth:`make_file_connection`."""

    driver_local_files = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        what = f"{self.role}_params"
        self.directory_path = directory_path_of(self.params, what)
        self.file_format = parse_file_format(self.params.get("file_format"), role=self.role)
        self.df_schema = parse_df_schema(self.params.get("df_schema"))
        self.options = options_of(self.params, what)
        self.file_name_template: str | None = None
        if self.role == "target":
            self.file_name_template = check_file_name_template(self.params.get("file_name_template"))
        transformations = self.spec.transformations
        dialect = transforms.SPARK
        self.where = transforms.rows_filter_sql(transforms.filters_of(transformations, "dataframe_rows_filter"),
                                                dialect)
        self.columns = transforms.columns_filter_sql(
            transforms.filters_of(transformations, "dataframe_columns_filter"), dialect
        )
        self.sql_query = transforms.sql_query_of(transformations)
        self.file_filters = file_filters_of(transformations)
        if self.role == "source" and self.incremental and self.spec.strategy.increment_by not in FILE_INCREMENTS:
            raise InvalidParamsError(
                f"incremental strategy_params of a {self.connection_type} source need increment_by "
                f"{' or '.join(FILE_INCREMENTS)}, got {self.spec.strategy.increment_by!r}"
            )
        required = REQUIRED_JARS.get(self.file_format.type)
        self.maven_packages = (*self.storage_packages(), *((required[1],) if required else ()))
        self.spark: SparkSession | None = None
        self.file_connection: Any = None
        # Set when a failed move could not be undone: .tmp/{run_id}/.replaced then holds old files, so it stays.
        self.keep_remote_tmp = False

    # --- per type ----------------------------------------------------------------------------------------------

    def storage_packages(self) -> tuple[str, ...]:
        """Maven coordinates Spark needs for the storage itself (not for the format)."""
        return ()

    def make_file_connection(self) -> Any:
        return self.onetl_connection_class()(**self.connection_kwargs())

    # --- connect -----------------------------------------------------------------------------------------------

    @property
    def side_error(self) -> type[SyncmasterRayError]:
        return SourceError if self.role == "source" else TargetError

    def connect(self, spark: SparkSession) -> None:
        self.spark = spark
        self.check_format_jar(spark)
        connection = self.make_file_connection()
        try:
            self.file_connection = connection.check()
        except Exception as exc:
            # onETL says only "Connection is unavailable"; the reason (refused, 530 login failed...) is its cause.
            raise self.side_error(f"connecting to {self.describe} failed: {error_with_cause(exc)}") from exc

    def check_format_jar(self, spark: SparkSession) -> None:
        """XML and Excel need a Maven-only jar on Spark 3.5: say which, before any file moves."""
        required = REQUIRED_JARS.get(self.file_format.type)
        if required is None or java_class(spark, required[0]) is not None:
            return
        class_name, coordinates = required
        raise self.side_error(
            f"file format {self.file_format.type!r} needs the jar {coordinates}, which Spark does not have "
            f"(class {class_name} not found): put it in SYNCMASTER__SPARK__JARS on every Ray node, or set "
            "SYNCMASTER__SPARK__USE_MAVEN_PACKAGES=true where Maven is reachable"
        )

    def check_staging_possible(self) -> None:
        """Staged files live on the driver's disk: executors on another node would not see them."""
        if self.context.executors_on_driver_node() is False:
            raise self.side_error(
                f"{self.describe} stages files on the Spark driver's disk, but this run's executors are not all on "
                "the driver's node (the job reserves one node for such runs; see SYNCMASTER__SPARK__* settings)"
            )

    # --- read --------------------------------------------------------------------------------------------------

    def read(self) -> DataFrame | None:
        self.check_staging_possible()
        local_dir = self.run_dir("downloaded")
        count = self.download(local_dir)
        self.metrics["files_read"] = count
        if count == 0:
            return self.nothing_to_read()
        return self.transform(self.read_files(self.local_fs(), local_dir))

    def download(self, local_dir: Path) -> int:
        from onetl.file import FileDownloader

        downloader = FileDownloader(
            connection=self.file_connection,
            source_path=self.directory_path,
            local_path=local_dir,
            filters=onetl_file_filters(self.file_filters),
            hwm=self.file_hwm(),
        )
        with self.hwm_saved_after_write():
            result = downloader.run()
        result.raise_if_failed()
        return result.successful_count

    def nothing_to_read(self) -> None:
        """No (new) file: an incremental run has nothing to transfer; a full run is an error."""
        filtered = " matching file_metadata_filter" if self.file_filters else ""
        if self.incremental:
            log.info("No new files in %s%s: nothing to transfer", self.directory_path, filtered)
            return None
        raise SourceError(f"no files{filtered} in {self.directory_path!r} of {self.describe}")

    def read_files(self, connection: Any, source_path: str | Path, files: list[Any] | None = None) -> DataFrame:
        from onetl.file import FileDFReader
        from pyspark.sql.types import StructType

        reader = FileDFReader(
            connection=connection,
            format=self.file_format.onetl_format(),
            source_path=source_path,
            df_schema=StructType.fromJson(self.df_schema) if self.df_schema else None,
            options=self.read_options(),
        )
        return reader.run(files)

    def read_options(self) -> dict[str, Any]:
        return dict(self.options)

    def transform(self, df: DataFrame) -> DataFrame:
        """Rows filter, columns filter, then the SQL step against the view ``source``, all in Spark SQL."""
        assert self.spark is not None
        sql_guard.check_filters(self.spark, self.where, self.columns)
        if self.where:
            df = df.where(self.where)
        if self.columns:
            df = df.selectExpr(*self.columns)
        if self.sql_query:
            log.info("Applying the SQL transformation:\n%s", self.sql_query)
            df = sql_guard.run_sql_step(self.spark, df, self.sql_query)
        return df

    def file_hwm(self) -> Any:
        if self.role != "source" or not self.incremental:
            return None
        from etl_entities.hwm import FileListHWM, FileModifiedTimeHWM

        hwm_class = FileListHWM if self.spec.strategy.increment_by == "file_name" else FileModifiedTimeHWM
        return hwm_class(name=self.context.hwm_name)

    @contextmanager
    def hwm_saved_after_write(self) -> Iterator[None]:
        """onETL's downloader saves the HWM right after downloading; a failed write would then lose those files.

        It gets an in-memory store holding the previous HWM instead: the strategy keeps the new value and saves it
        to the real store when the transfer's strategy scope ends without error.
        """
        if self.file_hwm() is None:
            yield
            return
        from etl_entities.hwm_store import MemoryHWMStore

        store = MemoryHWMStore()
        if self.previous_hwm is not None:
            store.set_hwm(self.previous_hwm)
        with store:
            yield

    # --- write -------------------------------------------------------------------------------------------------

    def write(self, df: DataFrame) -> None:
        from onetl.file import FileDFWriter, FileUploader

        self.check_staging_possible()
        local_dir = self.run_dir("written")
        FileDFWriter(
            connection=self.local_fs(),
            format=self.file_format.onetl_format(),
            target_path=local_dir,
            options=self.write_options(),
        ).run(df)
        files = sorted(path.relative_to(local_dir).as_posix() for path in local_dir.rglob("*") if path.is_file())
        outputs = []
        for relative in files:
            if is_spark_metadata_file(posixpath.basename(relative)):
                (local_dir / relative).unlink()
            else:
                outputs.append(relative)
        renamed = self.output_names(outputs)
        for old, new in renamed.items():
            (local_dir / new).parent.mkdir(parents=True, exist_ok=True)
            (local_dir / old).rename(local_dir / new)
        remote_tmp = self.remote_tmp_dir()
        try:
            if renamed:
                uploaded = FileUploader(
                    connection=self.file_connection,
                    local_path=local_dir,
                    target_path=remote_tmp,
                    options={"if_exists": "replace_file"},
                ).run()
                uploaded.raise_if_failed()
            self.move_into_target(remote_tmp, list(renamed.values()))
        finally:
            self.remove_remote_tmp(remote_tmp)

    def write_options(self) -> dict[str, Any]:
        # The output goes to a directory of this run's own, emptied first; SyncMaster's target if_exists semantics
        # (same names replaced, others kept) come from the final move.
        return {**self.options, "if_exists": "replace_entire_directory"}

    def output_names(self, relative_paths: Iterable[str]) -> dict[str, str]:
        assert self.file_name_template is not None
        return output_file_names(
            relative_paths,
            template=self.file_name_template,
            extension=self.file_format.extension,
            run_id=self.spec.run_id,
            run_created_at=self.spec.run_created_at,
        )

    def remote_tmp_dir(self) -> str:
        return posixpath.join(self.directory_path, TMP_DIR, str(self.spec.run_id))

    def move_into_target(self, remote_tmp: str, names: list[str]) -> None:
        """Move the run's files (``names``, relative to ``remote_tmp``) into ``directory_path``, all or nothing."""
        try:
            move_all_or_nothing(self.file_connection, remote_tmp, self.directory_path, names)
        except UndoFailed as exc:
            self.keep_remote_tmp = True
            error = exc.__cause__ or exc
            raise TargetError(
                f"moving {len(names)} files into {self.directory_path!r} of {self.describe} failed: "
                f"{error_with_cause(error)}; undoing the move failed too, so the directory may hold old and new "
                f"files: {exc}; the files it replaced are kept in {posixpath.join(remote_tmp, REPLACED_DIR)!r}"
            ) from error
        self.metrics["files_written"] = len(names)

    def remove_remote_tmp(self, remote_tmp: str) -> None:
        if self.keep_remote_tmp:
            log.error("Keeping %s on %s: it holds files of %s that a failed move replaced", remote_tmp,
                      self.describe, self.directory_path)
            return
        try:
            if self.file_connection.path_exists(remote_tmp):
                self.file_connection.remove_dir(remote_tmp, recursive=True)
        except Exception as exc:  # must not hide the write's own error
            log.warning("Could not remove %s from %s: %s", remote_tmp, self.describe, exc)

    # --- helpers -----------------------------------------------------------------------------------------------

    def run_dir(self, name: str) -> Path:
        """A directory under the run's temp dir (the actor's working directory when not set)."""
        return (self.work_dir or Path.cwd()) / name

    def local_fs(self) -> Any:
        return driver_local_fs_class()(spark=self.spark)
