"""Iceberg through a REST catalog, with onETL's ``Iceberg`` connection (Spark's Iceberg catalog plugin).

A SyncMaster iceberg connection comes in two flavours, told apart by key presence as SyncMaster does (the
``type`` keys of ``data`` and auth are dropped when they are merged):

* direct (``s3_warehouse_path`` present): the S3 warehouse and its keys come from the connection;
* delegated: the catalog hands out S3 access (vended credentials or remote signing).

The catalog accepts a bearer token, or OAuth2 client credentials when ``rest_catalog_oauth2_client_id`` is
present. Each handler registers its own Spark catalog, ``iceberg_<8 hex>``, so both sides of a transfer may be
Iceberg.

Writes need no staging table: each is one Iceberg commit, which swaps the table's metadata pointer atomically in the
catalog. onETL 0.17 writes with ``DataFrameWriterV2`` through Iceberg's ``SparkCatalog``: an existing target with
``overwritePartitions()`` (one ``ReplacePartitions`` commit: the partitions present in the data, the whole table when
unpartitioned) or ``append()`` (one ``AppendFiles`` commit); a new target with ``createOrReplace()``, which Spark
runs as an atomic replace-table-as-select because ``SparkCatalog`` is a ``StagingTableCatalog`` (the table is
created in the catalog only by the commit after the write). The tasks write data files first; nothing references
them until the commit. So a failure or stop before the commit leaves the target as it was (the files already written
stay in the table's location, unreferenced, until Iceberg's ``remove_orphan_files`` removes them); after it, the
target has every new row. Read from onETL's and Iceberg 1.10's (``SparkWrite``, ``SparkCatalog``) code; not tested
here, as Iceberg's Spark runtime jar is only on Maven.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Discriminator, Field, HttpUrl, SecretStr, Tag, UrlConstraints, model_validator

from syncmaster_ray.handlers import hive
from syncmaster_ray.handlers.base import DBHandler
from syncmaster_ray.handlers.models import ConnectionModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

CatalogUrl = Annotated[HttpUrl, UrlConstraints(host_required=True, preserve_empty_path=True)]


class IcebergBearerAuth(ConnectionModel):
    rest_catalog_token: SecretStr


class IcebergOAuth2ClientCredentials(ConnectionModel):
    rest_catalog_oauth2_client_id: str
    rest_catalog_oauth2_client_secret: SecretStr
    rest_catalog_oauth2_scopes: list[str] = Field(default_factory=list)
    rest_catalog_oauth2_resource: str | None = None
    rest_catalog_oauth2_audience: str | None = None
    rest_catalog_oauth2_token_endpoint: CatalogUrl | None = None


class IcebergS3DirectWarehouse(ConnectionModel):
    s3_warehouse_path: str
    s3_host: str
    s3_port: int | None = Field(default=None, ge=1, le=65535)
    s3_protocol: Literal["http", "https"] = "https"
    s3_bucket: str
    s3_region: str
    s3_bucket_style: Literal["domain", "path"] = "path"
    # Kept for completeness; SyncMaster 0.3.7 does not pass them on either.
    s3_additional_params: dict[str, Any] = Field(default_factory=dict)
    s3_access_key: str
    s3_secret_key: SecretStr


class IcebergDelegatedWarehouse(ConnectionModel):
    s3_warehouse_name: str | None = None
    s3_access_delegation: Literal["vended-credentials", "remote-signing"] = "vended-credentials"


def _auth_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "oauth2" if "rest_catalog_oauth2_client_id" in value else "bearer"
    return "oauth2" if isinstance(value, IcebergOAuth2ClientCredentials) else "bearer"


def _warehouse_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "direct" if "s3_warehouse_path" in value else "delegated"
    return "direct" if isinstance(value, IcebergS3DirectWarehouse) else "delegated"


class IcebergConnection(ConnectionModel):
    """SyncMaster's flat ``data | auth`` dict, split into catalog auth and warehouse by key presence."""

    rest_catalog_url: CatalogUrl
    auth: Annotated[
        Annotated[IcebergOAuth2ClientCredentials, Tag("oauth2")] | Annotated[IcebergBearerAuth, Tag("bearer")],
        Discriminator(_auth_kind),
    ]
    warehouse: Annotated[
        Annotated[IcebergS3DirectWarehouse, Tag("direct")] | Annotated[IcebergDelegatedWarehouse, Tag("delegated")],
        Discriminator(_warehouse_kind),
    ]

    @model_validator(mode="before")
    @classmethod
    def _split_flat_dict(cls, value: Any) -> Any:
        if isinstance(value, dict) and "auth" not in value and "warehouse" not in value:
            return {"rest_catalog_url": value.get("rest_catalog_url"), "auth": value, "warehouse": value}
        return value

    @property
    def flavour(self) -> Literal["iceberg_rest_s3_direct", "iceberg_rest_s3_delegated"]:
        if isinstance(self.warehouse, IcebergS3DirectWarehouse):
            return "iceberg_rest_s3_direct"
        return "iceberg_rest_s3_delegated"


def new_catalog_name() -> str:
    return f"iceberg_{uuid.uuid4().hex[:8]}"


class IcebergHandler(DBHandler[IcebergConnection]):
    connection_type = "iceberg"
    onetl_class = "Iceberg"
    dialect = hive.DIALECT  # filters run as Spark SQL, as Hive's
    # See HiveHandler: SyncMaster's intended mode (0.3.7's DTO ordering leaves replace_entire_table in effect).
    default_if_exists = "replace_overlapping_partitions"
    partitioned_reads = False
    filters_run_in_spark = True
    atomic_write = True  # each write is one Iceberg commit
    maven_packages = (
        "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.0",
        "org.apache.iceberg:iceberg-aws-bundle:1.10.0",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catalog_name = new_catalog_name()

    def connection_kwargs(self) -> dict[str, Any]:
        iceberg, conn = self.onetl_connection_class(), self.conn
        return {
            "catalog_name": self.catalog_name,
            "catalog": iceberg.RESTCatalog(url=str(conn.rest_catalog_url), auth=_catalog_auth(iceberg, conn.auth)),
            "warehouse": _warehouse(iceberg, conn.warehouse),
        }

    def read(self) -> DataFrame:
        # onETL prefixes the catalog itself when reading; Spark's catalog API needs the full name.
        self.connection.spark.catalog.refreshTable(f"{self.catalog_name}.{self.table_name}")
        return super().read()


def _catalog_auth(iceberg: Any, auth: IcebergBearerAuth | IcebergOAuth2ClientCredentials) -> Any:
    """onETL's catalog auth object (``iceberg``: onETL's ``Iceberg`` class)."""
    if isinstance(auth, IcebergOAuth2ClientCredentials):
        endpoint = auth.rest_catalog_oauth2_token_endpoint
        return iceberg.RESTCatalog.OAuth2ClientCredentials(
            client_id=auth.rest_catalog_oauth2_client_id,
            client_secret=auth.rest_catalog_oauth2_client_secret,
            scopes=list(auth.rest_catalog_oauth2_scopes),
            resource=auth.rest_catalog_oauth2_resource,
            audience=auth.rest_catalog_oauth2_audience,
            oauth2_token_endpoint=str(endpoint) if endpoint else None,
        )
    return iceberg.RESTCatalog.BearerAuth(access_token=auth.rest_catalog_token)


def _warehouse(iceberg: Any, warehouse: IcebergS3DirectWarehouse | IcebergDelegatedWarehouse) -> Any:
    """onETL's warehouse object (``iceberg``: onETL's ``Iceberg`` class)."""
    if isinstance(warehouse, IcebergS3DirectWarehouse):
        return iceberg.S3Warehouse(
            path=warehouse.s3_warehouse_path,
            host=warehouse.s3_host,
            port=warehouse.s3_port,
            protocol=warehouse.s3_protocol,
            bucket=warehouse.s3_bucket,
            path_style_access=warehouse.s3_bucket_style == "path",
            region=warehouse.s3_region,
            access_key=warehouse.s3_access_key,
            secret_key=warehouse.s3_secret_key,
        )
    return iceberg.DelegatedWarehouse(
        name=warehouse.s3_warehouse_name,
        access_delegation=warehouse.s3_access_delegation,
    )
