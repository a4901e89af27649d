"""S3 and HDFS read and written by Spark itself (``SparkS3``, ``SparkHDFS``) when it can reach them."""

from __future__ import annotations

import logging
import posixpath
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from syncmaster_ray.handlers.base import ConnectionModelT, java_class
from syncmaster_ray.handlers.files.filters import onetl_file_filters
from syncmaster_ray.handlers.files.handler import FileHandler
from syncmaster_ray.handlers.files.naming import is_spark_metadata_file

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


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
