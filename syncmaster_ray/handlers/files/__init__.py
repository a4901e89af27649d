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

Modules: ``filters`` (``file_metadata_filter``), ``params`` (``directory_path``, ``options``), ``naming``
(output file names), ``move`` (the all-or-nothing move into ``directory_path``), ``handler`` (staged files,
:class:`FileHandler`), ``remote`` (direct S3 and HDFS, :class:`RemoteFileHandler`).
"""

from syncmaster_ray.handlers.files.filters import FileFilterSpec, file_filters_of
from syncmaster_ray.handlers.files.handler import FileHandler, driver_local_fs_class
from syncmaster_ray.handlers.files.move import UndoFailed, move_all_or_nothing
from syncmaster_ray.handlers.files.remote import RemoteFileHandler

__all__ = [
    "FileFilterSpec",
    "FileHandler",
    "RemoteFileHandler",
    "UndoFailed",
    "driver_local_fs_class",
    "file_filters_of",
    "move_all_or_nothing",
]
