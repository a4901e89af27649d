"""S3, through onETL's ``S3`` file client, and ``SparkS3`` when Spark has the S3A filesystem.

Spark 3.5 reads ``s3a://`` only with ``spark-hadoop-cloud`` (Maven only, not in pyspark). Without it the files are
staged on the Spark driver through the file client, as for SFTP. Which one a run will use is predicted from the
settings before Spark starts (for the placement group) and confirmed against the JVM once it has.
"""

from __future__ import annotations

import importlib.metadata
import posixpath
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr

from syncmaster_ray.handlers.files.remote import RemoteFileHandler
from syncmaster_ray.handlers.models import HTTP_PORTS, ServerModel

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

S3A_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"
# Jar names that bring S3AFileSystem onto the classpath.
S3A_JAR_MARKERS = ("hadoop-aws", "spark-hadoop-cloud")


class S3Connection(ServerModel):
    bucket: str
    region: str | None = None
    protocol: Literal["http", "https"] = "https"
    bucket_style: Literal["path", "domain"] = "path"
    # Hadoop S3A options (``fs.s3a.*`` without the prefix) for Spark; the file client does not use them.
    additional_params: dict[str, Any] = Field(default_factory=dict)
    access_key: str
    secret_key: SecretStr
    well_known_ports = HTTP_PORTS


def spark_hadoop_cloud_package() -> str:
    """onETL's ``SparkS3.get_packages()`` for the installed pyspark, without importing pyspark or onETL."""
    try:
        version = importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        version = "3.5.7"
    return f"org.apache.spark:spark-hadoop-cloud_2.12:{version}"


class S3Handler(RemoteFileHandler[S3Connection]):
    connection_type = "s3"
    onetl_class = "S3"
    spark_filesystem_class = S3A_FILESYSTEM
    # Spark-side only (``spark_connection_kwargs``); the file client takes neither.
    excluded_fields = frozenset({"bucket_style", "additional_params"})

    def spark_connection_kwargs(self) -> dict[str, Any]:
        """``SparkS3`` arguments except ``spark``."""
        conn = self.conn
        return {
            **self.connection_kwargs(),
            "path_style_access": conn.bucket_style == "path",
            "extra": dict(conn.additional_params),
        }

    def storage_packages(self) -> tuple[str, ...]:
        return (spark_hadoop_cloud_package(),)

    def maven_exclusions(self) -> tuple[str, ...]:
        from onetl.connection import SparkS3

        return tuple(SparkS3.get_exclude_packages())

    def spark_can_be_direct(self) -> bool:
        spark = self.context.spark
        if spark.use_maven_packages:
            return True
        return any(marker in posixpath.basename(jar) for jar in spark.jars for marker in S3A_JAR_MARKERS)

    def make_df_connection(self, spark: SparkSession) -> Any:
        from onetl.connection import SparkS3

        return SparkS3(spark=spark, **self.spark_connection_kwargs())

    def read_options(self) -> dict[str, Any]:
        # As SyncMaster: spark-xml and spark-excel read every value as a string unless told to infer.
        if self.file_format.type in ("xml", "excel"):
            return {"inferSchema": True, **self.options}
        return super().read_options()
