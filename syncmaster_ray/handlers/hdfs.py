"""HDFS, through onETL's ``HDFS`` file client (WebHDFS), and ``SparkHDFS`` when the namenode's RPC port is known.

SyncMaster stores only ``{"cluster": name}``; onETL turns a cluster name into namenodes and ports through hooks.
Each Ray job binds hooks that answer from ``SYNCMASTER__SPARK__HDFS_CLUSTERS`` (:func:`register_hdfs_clusters`);
clusters not listed there are left to whatever onETL hooks plugins the node has. A listed cluster without an
``ipc_port`` is reached only through WebHDFS, so its files are staged on the Spark driver.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from syncmaster_ray.handlers.files.remote import RemoteFileHandler
from syncmaster_ray.handlers.models import BasicAuthModel

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from syncmaster_ray.settings import HDFSClusterSettings

HDFS_FILESYSTEM = "org.apache.hadoop.hdfs.DistributedFileSystem"

_clusters: dict[str, HDFSClusterSettings] = {}
_hooks_lock = threading.Lock()
_hooks_bound = False


def register_hdfs_clusters(clusters: Mapping[str, HDFSClusterSettings]) -> None:
    """Make onETL's ``HDFS(cluster=...)`` and ``SparkHDFS(cluster=...)`` resolve these clusters in this process.

    The hooks answer ``None`` ("no opinion") for other clusters, so plugins keep working for them.
    ``get_known_clusters`` is not hooked: a non-empty answer would reject every other cluster name.
    """
    _bind_hooks()
    _clusters.update(clusters)


def _bind_hooks() -> None:
    global _hooks_bound
    with _hooks_lock:
        if _hooks_bound:
            return
        from onetl.connection import HDFS, SparkHDFS
        from onetl.hooks import hook

        def namenodes(cluster: str) -> set[str] | None:
            entry = _clusters.get(cluster)
            return {entry.host} if entry else None

        def is_active(host: str, cluster: str | None) -> bool | None:
            entry = _clusters.get(cluster or "")
            return host == entry.host if entry else None

        def webhdfs_port(cluster: str) -> int | None:
            entry = _clusters.get(cluster)
            return entry.webhdfs_port if entry else None

        def ipc_port(cluster: str) -> int | None:
            entry = _clusters.get(cluster)
            return entry.ipc_port if entry else None

        for slots in (HDFS.Slots, SparkHDFS.Slots):
            slots.get_cluster_namenodes.bind(hook(namenodes))
            slots.is_namenode_active.bind(hook(is_active))
        HDFS.Slots.get_webhdfs_port.bind(hook(webhdfs_port))
        SparkHDFS.Slots.get_ipc_port.bind(hook(ipc_port))
        _hooks_bound = True


class HDFSConnection(BasicAuthModel):
    """``cluster`` from ``data``; SyncMaster's basic auth is the Kerberos principal and its password."""

    cluster: str


class HDFSHandler(RemoteFileHandler[HDFSConnection]):
    connection_type = "hdfs"
    onetl_class = "HDFS"
    spark_filesystem_class = HDFS_FILESYSTEM

    def cluster_settings(
        self, clusters: Mapping[str, HDFSClusterSettings] | None = None
    ) -> HDFSClusterSettings | None:
        if clusters is None:
            clusters = self.context.spark.hdfs_clusters
        return clusters.get(self.conn.cluster)

    def connection_kwargs(self, clusters: Mapping[str, HDFSClusterSettings] | None = None) -> dict[str, Any]:
        """``clusters``: the context's ``SYNCMASTER__SPARK__HDFS_CLUSTERS`` when not given.

        Kerberos (user and password, onETL runs kinit) unless the cluster is listed with ``kerberos: false``.
        """
        conn = self.conn
        kwargs: dict[str, Any] = {"cluster": conn.cluster}
        listed = self.cluster_settings(clusters)
        if listed is None or listed.kerberos:
            kwargs.update(user=conn.user, password=conn.password)
        return kwargs

    def spark_can_be_direct(self) -> bool:
        listed = self.cluster_settings()
        return listed is None or listed.ipc_port is not None

    def connect(self, spark: SparkSession) -> None:
        register_hdfs_clusters(self.context.spark.hdfs_clusters)
        super().connect(spark)

    def make_df_connection(self, spark: SparkSession) -> Any:
        from onetl.connection import SparkHDFS

        return SparkHDFS(cluster=self.conn.cluster, spark=spark)
