"""Files on a file server or an object store: SyncMaster's sftp, ftp, ftps, webdav, samba, s3 and hdfs types.

Each type has an onETL file client. Spark reaches the files in one of two ways:

* **staged** (sftp, ftp, ftps, webdav and samba; s3 and hdfs when Spark cannot reach them itself): the file client
  downloads the source directory into the run's temp dir on the Spark driver and Spark reads it from there
  (``SparkLocalFS``); Spark writes into the temp dir and the file client uploads. Executors read and write those
  paths too, so such runs reserve the driver and every executor on one node (``driver_local_files``).
* **direct** (:class:`RemoteFileHandler`: s3 with the S3A filesystem on Spark's classpath, hdfs with a namenode
  RPC address): Spark reads and writes the storage; the file client lists, renames and moves files.

Reading: ``file_metadata_filter`` (name glob or regexp, size bounds) and the incremental HWM (``FileListHWM`` for
``increment_by=file_name``, ``FileModifiedTimeHWM`` for ``file_modified_since``) pick the files, for every type.
Then the rows filter, the columns filter and the ``sql`` transformation run as Spark SQL. The HWM is saved only
once the write succeeded (onETL's ``FileDownloader`` saves it as soon as it has downloaded).

Writing: Spark's part files (without ``*.crc``, ``_SUCCESS`` and other hidden files) are named by
``file_name_template`` in path order, put into ``{directory_path}/.tmp/{run_id}`` and then moved into
``directory_path``, replacing files of the same name and keeping the others (SyncMaster's semantics).

The final move (:func:`move_all_or_nothing`, used by both the staged and the direct write) is all or nothing as far
as a file storage allows: every file of ``directory_path`` that an output name would replace is first renamed to
``.tmp/{run_id}/.replaced/<same relative path>``, then the new files are renamed in (never over a file). If any
step fails, the new files that landed are removed, directories the move created are removed and the set-aside files
are renamed back, then the error is raised again: the run fails and ``directory_path`` holds exactly the files it
held before. ``.tmp/{run_id}`` (with ``.replaced``) is removed in any case, except when undoing the move failed too:
then the run's reason says so and ``.tmp/{run_id}`` is kept, since ``.replaced`` holds old files not yet put back.

Limits: readers of ``directory_path`` during the move may see old files missing or part of the new ones (the move
is a series of renames, not one step; on S3 a rename is a copy and a delete). A process killed in the middle of the
move (SIGKILL, a lost node) cannot undo it: ``directory_path`` may then lack some of its old files and hold some of
the killed run's new ones. The old files are not deleted: they stay in ``.tmp/{killed run_id}/.replaced`` (same
relative paths), and the killed run's other new files in ``.tmp/{killed run_id}``. No later run touches another
run's ``.tmp`` directory: the next run writes and moves its own files as usual, and the kept old files must be put
back (or deleted) by hand.
"""

from __future__ import annotations

import functools
import logging
import posixpath
import re
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from syncmaster_ray.errors import InvalidParamsError, SourceError, SyncmasterRayError, TargetError
from syncmaster_ray.handlers import sql_guard, transforms
from syncmaster_ray.handlers.base import ConnectionModelT, Handler, java_class
from syncmaster_ray.handlers.formats import (
    REQUIRED_JARS,
    check_file_name_template,
    parse_df_schema,
    parse_file_format,
    render_file_name,
)
from syncmaster_ray.outcome import error_with_cause

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

FILE_INCREMENTS = ("file_name", "file_modified_since")
NAME_FILTERS = ("name_glob", "name_regexp")
SIZE_FILTERS = ("file_size_min", "file_size_max")
TMP_DIR = ".tmp"
# Under the run's .tmp dir: the target's files that the run's output replaces, until the move succeeded.
REPLACED_DIR = ".replaced"
# How many of the problems of a failed undo the run's reason names (all of them are logged).
_PROBLEMS_IN_REASON = 3
# Options that mean something to SyncMaster's API but not to a Spark reader or to our staged writer.
_IGNORED_OPTIONS = ("if_exists",)


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


class UndoFailed(Exception):
    """A move into the target failed, and undoing it failed too; ``problems`` says what is left where."""

    def __init__(self, problems: list[str]) -> None:
        shown = "; ".join(problems[:_PROBLEMS_IN_REASON])
        more = len(problems) - _PROBLEMS_IN_REASON
        super().__init__(shown + (f"; and {more} more" if more > 0 else ""))
        self.problems = problems


def parent_dirs(names: Iterable[str]) -> list[str]:
    """Every directory above the relative names (``a/b/f`` -> ``a/b``, ``a``), deepest first."""
    found: set[str] = set()
    for name in names:
        parent = posixpath.dirname(name)
        while parent:
            found.add(parent)
            parent = posixpath.dirname(parent)
    return sorted(found, key=lambda path: (-path.count("/"), path))


def _rename(connection: Any, source: str, target: str, name: str, done: list[str]) -> None:
    """``rename_file`` (never over a file), recording ``name`` in ``done`` once the file is at ``target``."""
    try:
        connection.rename_file(source, target)
    except Exception:
        # The rename may have happened before the error (a connection lost after the server renamed): look.
        try:
            if not connection.path_exists(source) and connection.path_exists(target):
                done.append(name)
        except Exception:  # the original error tells more
            log.debug("Could not tell whether %s was renamed to %s", source, target, exc_info=True)
        raise
    done.append(name)


def move_all_or_nothing(connection: Any, source_dir: str, target_dir: str, names: Iterable[str]) -> None:
    """Move ``source_dir/<name>`` to ``target_dir/<name>`` for every relative name: all of them, or none.

    ``connection`` is an onETL file connection. Files of ``target_dir`` with an output name are first renamed to
    ``source_dir/.replaced/<name>`` (they are deleted with ``source_dir``); other files of ``target_dir`` are not
    touched. On any error the move is undone and the error raised again; if undoing fails too, :class:`UndoFailed`
    is raised from the error (``source_dir/.replaced`` then holds the old files not put back).
    """
    names = sorted(names)
    aside_dir = posixpath.join(source_dir, REPLACED_DIR)
    new_dirs = [path for path in parent_dirs(names) if not connection.path_exists(posixpath.join(target_dir, path))]
    set_aside: list[str] = []
    landed: list[str] = []
    try:
        for name in names:
            target = posixpath.join(target_dir, name)
            if connection.path_exists(target):
                _rename(connection, target, posixpath.join(aside_dir, name), name, set_aside)
        for name in names:
            _rename(connection, posixpath.join(source_dir, name), posixpath.join(target_dir, name), name, landed)
    except Exception as exc:
        problems = undo_move(connection, aside_dir, target_dir, set_aside=set_aside, landed=landed,
                             new_dirs=new_dirs)
        if problems:
            raise UndoFailed(problems) from exc
        log.warning("Moving %d files into %s failed (%s); undone: %d new files removed, %d old files put back",
                    len(names), target_dir, error_with_cause(exc), len(landed), len(set_aside))
        raise


def undo_move(connection: Any, aside_dir: str, target_dir: str, *, set_aside: list[str], landed: list[str],
              new_dirs: list[str]) -> list[str]:
    """Remove the new files that landed and the directories the move created, put the set-aside files back.

    Goes on past errors; returns what could not be undone (each also logged)."""
    problems: list[str] = []
    for name in reversed(landed):
        path = posixpath.join(target_dir, name)
        try:
            connection.remove_file(path)
        except Exception as exc:
            problems.append(f"new file {path!r} not removed ({error_with_cause(exc)})")
    for directory in new_dirs:
        path = posixpath.join(target_dir, directory)
        try:
            connection.remove_dir(path)
        except Exception as exc:
            problems.append(f"new directory {path!r} not removed ({error_with_cause(exc)})")
    for name in reversed(set_aside):
        source, target = posixpath.join(aside_dir, name), posixpath.join(target_dir, name)
        try:
            connection.rename_file(source, target)
        except Exception as exc:
            problems.append(f"old file {target!r} not put back from {source!r} ({error_with_cause(exc)})")
    for problem in problems:
        log.error("Undoing a failed move into %s: %s", target_dir, problem)
    return problems


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


class RemoteFileHandler(FileHandler[ConnectionModelT]):
    """S3 and HDFS: Spark reads and writes them itself when it can, else the files are staged like the others."""

    # The JVM class Spark needs for this storage's URLs.
    spark_filesystem_class: ClassVar[str]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direct = False
        self.df_connection: Any = None

    @abstractmethod
    def spark_can_be_direct(self) -> bool:
        """From the settings alone (before Spark starts): can Spark be expected to reach the storage itself?"""

    @abstractmethod
    def make_df_connection(self, spark: SparkSession) -> Any:
        """The onETL Spark-side connection (``SparkS3``, ``SparkHDFS``)."""

    @property
    def driver_local_files(self) -> bool:  # type: ignore[override]
        return not self.spark_can_be_direct()

    def connect(self, spark: SparkSession) -> None:
        super().connect(spark)
        self.direct = self.spark_can_be_direct() and java_class(spark, self.spark_filesystem_class) is not None
        if self.direct:
            self.df_connection = self.make_df_connection(spark).check()
        log.info("%s: %s", self.describe, "Spark reads and writes it directly" if self.direct else
                 f"files are staged on the Spark driver ({self.spark_filesystem_class} not usable)")

    def read(self) -> DataFrame | None:
        if not self.direct:
            return super().read()
        files = None
        hwm = self.file_hwm()
        if self.file_filters or hwm is not None:
            files = self.select_files()
            if not files:
                return self.nothing_to_read()
        df = self.read_files(self.df_connection, self.directory_path, files)
        if hwm is not None:
            from onetl.strategy.strategy_manager import StrategyManager

            StrategyManager.get_current().update_hwm(files)  # saved when the strategy scope ends
        return self.transform(df)

    def select_files(self) -> list[Any]:
        """The files the filters and the HWM let through, listed by the file client."""
        from onetl.file import FileDownloader

        downloader = FileDownloader(
            connection=self.file_connection,
            source_path=self.directory_path,
            local_path=self.run_dir("unused"),
            filters=onetl_file_filters(self.file_filters),
            hwm=self.file_hwm(),
        )
        with self.hwm_saved_after_write():
            files = list(downloader.view_files())
        self.metrics["files_read"] = len(files)
        return files

    def write(self, df: DataFrame) -> None:
        if not self.direct:
            return super().write(df)
        from onetl.file import FileDFWriter

        remote_tmp = self.remote_tmp_dir()
        try:
            FileDFWriter(
                connection=self.df_connection,
                format=self.file_format.onetl_format(),
                target_path=remote_tmp,
                options=self.write_options(),
            ).run(df)
            outputs = []
            for root, _dirs, files in self.file_connection.walk(remote_tmp):
                for file in files:
                    path = posixpath.join(str(root), file.name)
                    if is_spark_metadata_file(file.name):
                        self.file_connection.remove_file(path)
                    else:
                        outputs.append(posixpath.relpath(path, remote_tmp))
            renamed = self.output_names(outputs)
            for old, new in renamed.items():
                self.file_connection.rename_file(
                    posixpath.join(remote_tmp, old), posixpath.join(remote_tmp, new), replace=True
                )
            self.move_into_target(remote_tmp, list(renamed.values()))
        finally:
            self.remove_remote_tmp(remote_tmp)
        return None
