"""Settings, read from SyncMaster's own environment variables.

The stock worker's env file works unchanged: ``SYNCMASTER__DATABASE__URL``, ``SYNCMASTER__BROKER__URL``,
``SYNCMASTER__ENCRYPTION__SECRET_KEY`` and ``SYNCMASTER__WORKER__LOG_URL_TEMPLATE`` mean what they mean to SyncMaster.
Our own knobs live under ``SYNCMASTER__RAY__*`` and ``SYNCMASTER__SPARK__*``.

Ray nodes read the same variables from the environment ``ray start`` ran in, or from the dotenv file named by
``SYNCMASTER_RAY_ENV_FILE``; secrets therefore never travel with a job.

Example::

    SYNCMASTER__DATABASE__URL=postgresql+asyncpg://syncmaster:secret@db:5432/syncmaster
    SYNCMASTER__BROKER__URL=amqp://guest:guest@rabbitmq:5672/
    SYNCMASTER__ENCRYPTION__SECRET_KEY=<Fernet key>
    SYNCMASTER__RAY__ADDRESS=http://ray-head:8265
    SYNCMASTER__RAY__DASHBOARD_URL=https://ray.example.com

This module is imported by the Celery worker: keep it light (pydantic, cryptography, SQLAlchemy's URL). It sits at the
bottom of the package: of ours it imports only the leaves ``errors`` and ``links`` (a contract of ``lint-imports``).
Every field has a description: docs/settings.md is generated from them (``python -m syncmaster_ray_dev.settings_doc``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from syncmaster_ray.errors import ConfigError
from syncmaster_ray.links import check_template

ENV_FILE_VARIABLE = "SYNCMASTER_RAY_ENV_FILE"
# How every secret of .env.compose.example begins: an unchanged copy must not run.
PLACEHOLDER = "CHANGE"
DEFAULT_POSTGRES_JAR = "/usr/share/java/postgresql.jar"
DEFAULT_MARIADB_JAR = "/usr/share/java/mariadb-java-client.jar"


class DatabaseSettings(BaseModel):
    url: SecretStr = Field(
        description="SyncMaster's database. SyncMaster's `postgresql+asyncpg://` form and plain `postgresql://` "
        "are both accepted; the worker talks to it synchronously with psycopg 3.",
    )

    @field_validator("url")
    @classmethod
    def _postgres_only(cls, value: SecretStr) -> SecretStr:
        # The message must not echo the value: it holds the password.
        if not is_postgres_url(value.get_secret_value()):
            raise ValueError("must be a PostgreSQL URL (postgresql://, postgresql+asyncpg://, postgresql+psycopg://)")
        return value

    @property
    def sync_url(self) -> str:
        """The URL in the SQLAlchemy form our engine uses (``postgresql+psycopg://``)."""
        return to_psycopg_url(self.url.get_secret_value())


class BrokerSettings(BaseModel):
    url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="The Celery broker SyncMaster publishes `run_transfer_task` to.",
    )


class EncryptionSettings(BaseModel):
    secret_key: SecretStr = Field(description="The Fernet key SyncMaster encrypts `auth_data` with.")

    @field_validator("secret_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr) -> SecretStr:
        try:
            Fernet(value.get_secret_value())
        except (ValueError, TypeError):
            raise ValueError("not a valid Fernet key (32 url-safe base64-encoded bytes)") from None
        refuse_example_secret(base64.urlsafe_b64decode(value.get_secret_value()).decode("latin-1"),
                              "is the example key of .env.compose.example, which anyone can read",
                              "from cryptography.fernet import Fernet; print(Fernet.generate_key())")
        return value


class WorkerSettings(BaseModel):
    log_url_template: str = Field(
        default="",
        description="Jinja2 template for `run.log_url`. Variables: `run`, `correlation_id` (as in SyncMaster), "
        "`ray_job_id`, `dashboard_url` and `ray_job_url`. Empty: the Ray dashboard job page.",
    )
    job_poll_interval_seconds: float = Field(
        default=0.5, gt=0, description="How often the Celery task polls the Ray job and the run's status."
    )
    ray_unreachable_grace_seconds: float = Field(
        default=120, gt=0, description="How long the Jobs API may stay unreachable during a run (e.g. a head "
        "restart) before the run ends FAILED; a head that comes back without the job fails it at once.",
    )
    heartbeat_seconds: float = Field(
        default=10, gt=0, description="How often a supervising worker renews the lease on its runs (and saves "
        "their log tail).",
    )
    stale_seconds: float = Field(
        default=60, gt=0, description="A run whose lease was not renewed this long is taken as having lost its "
        "worker: a reconciler ends it by its Ray job's outcome or hands it to another worker. At least twice "
        "HEARTBEAT_SECONDS.",
    )
    reconcile_interval_seconds: float = Field(
        default=30, ge=0, description="How often each worker looks for runs whose worker is gone (each such run "
        "is settled by exactly one worker). 0: never (then schedule `syncmaster-ray run reconcile`).",
    )
    attempts: int = Field(
        default=3, ge=1, le=10,
        description="How many times a run is tried when it fails transiently (its transfer actor or node lost, "
        "the Ray job lost with its head, the Jobs API unavailable, a connection refused or reset), each attempt a "
        "Ray job of its own (`...-run-<id>-attempt-<K>`). Only when a repeat can neither half-write nor duplicate "
        "(the run replaces its target atomically: Postgres, MySQL, Iceberg, full strategy; or it failed reading). "
        "Permanent failures are never tried again. 1: off.",
    )
    attempt_delays_seconds: list[float] = Field(
        default_factory=lambda: [10.0, 60.0],
        description="Seconds before the 2nd, 3rd, ... attempt (the last one repeats), e.g. `[10, 60]`.",
    )
    run_timeout_seconds: float = Field(
        default=24 * 3600, ge=0, description="A run still going this long after it started (waiting for capacity "
        "included) has its Ray job stopped and ends FAILED with `timed_out`. 0: no limit.",
    )

    @field_validator("log_url_template")
    @classmethod
    def _renders(cls, value: str) -> str:
        """A template that does not render fails here, when settings load, not at every run's claim."""
        check_template(value)
        return value

    @model_validator(mode="after")
    def _stale_after_missed_heartbeats(self) -> WorkerSettings:
        if self.stale_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("STALE_SECONDS must be at least twice HEARTBEAT_SECONDS (else a run could be taken "
                             "from a live worker between two of its heartbeats)")
        return self


MAX_STANDBY_DRIVERS = 16


class RaySettings(BaseModel):
    address: str = Field(
        default="http://127.0.0.1:8265",
        description="The Ray Jobs API (the dashboard's HTTP address) the Celery worker submits jobs to.",
    )
    dashboard_url: str | None = Field(
        default=None, description="Public base of the Ray dashboard for links; defaults to `address`."
    )
    job_namespace: str | None = Field(
        default=None,
        description="Namespace in Ray submission ids (`syncmaster-<namespace>-run-<id>`), so several SyncMaster "
        "databases can share one cluster. Defaults to the database name.",
    )
    job_python: str = Field(
        default="python",
        description="Interpreter the Ray job entrypoint runs with on the cluster (must have syncmaster-ray).",
    )
    placement_timeout_seconds: float = Field(
        default=3600, gt=0, description="How long a run waits for cluster capacity before it fails."
    )
    queue_priorities: dict[str, int] = Field(
        default_factory=dict,
        description="Priority of each queue slug's runs in the capacity queue (higher goes first; slugs not "
        "listed: 0), e.g. `{\"1-interactive\": 10, \"1-nightly\": -10}`. Within a priority, runs get cluster "
        "capacity in the order they were claimed; a later run goes ahead only when everything before it fits too. "
        "A steady stream of higher-priority runs can hold lower ones back: that is what the priorities say.",
    )
    job_retention_seconds: float = Field(
        default=7 * 24 * 3600, ge=0,
        description="Ended Ray jobs of ours older than this are deleted from the head (their message and log tail "
        "are kept in our table; the dashboard link stops working). 0: delete each job once its run is settled.",
    )
    standby_drivers: int | Literal["auto"] = Field(
        default="auto",
        description="Transfer actors kept with Spark already started for the next runs of SyncMaster's default "
        "resources (1 executor, 1 core, 1 GiB; no Hive): such a run skips RayDP's start-up. Each idle one holds "
        "its resources (runs of other shapes evict idle ones when short of capacity) and ~1.6 GB. `auto`: one, "
        "started only where the cluster has room for it at that moment; N: up to N, each waiting for room. 0: off.",
    )
    executor_logs: Literal["always", "failed", "never"] = Field(
        default="always",
        description="When the Ray job keeps the last lines of each Spark executor's log with the run (`run logs` "
        "shows them; executors log on their own nodes, not to the job's log): `always`, only for runs that "
        "`failed`, or `never`. Reading them takes the job a fraction of a second before the run ends.",
    )
    driver_cpus: float = Field(default=1, gt=0, description="CPUs reserved for the Spark driver actor.")
    driver_memory_bytes: int = Field(
        default=1024**3, gt=0, description="Memory reserved (and given as -Xmx) for the Spark driver."
    )

    @field_validator("standby_drivers")
    @classmethod
    def _standby_count_in_range(cls, value: int | str) -> int | str:
        if value != "auto" and not 0 <= int(value) <= MAX_STANDBY_DRIVERS:
            raise ValueError(f"must be 'auto' or 0..{MAX_STANDBY_DRIVERS}")
        return value

    @property
    def standbys_on(self) -> bool:
        return self.standby_drivers == "auto" or self.standby_drivers > 0

    @property
    def standby_count(self) -> int:
        """How many standbys to keep (``auto``: one)."""
        return 1 if self.standby_drivers == "auto" else self.standby_drivers

    @property
    def standbys_only_where_room(self) -> bool:
        """``auto`` starts a standby only where the cluster has room for it now; ``N`` lets each wait for room."""
        return self.standby_drivers == "auto"

    @property
    def public_dashboard_url(self) -> str:
        return (self.dashboard_url or self.address).rstrip("/")


class HDFSClusterSettings(BaseModel):
    """One HDFS cluster SyncMaster names by ``{"cluster": name}``: where its namenode answers."""

    host: str = Field(description="Namenode host (the active one; HA pairs need an onETL hooks plugin).")
    webhdfs_port: int = Field(default=9870, ge=1, le=65535, description="WebHDFS port (the file client).")
    ipc_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Namenode RPC port for Spark's `hdfs://` paths. Unset: Spark cannot reach the cluster itself, "
        "so files are staged on the Spark driver through WebHDFS.",
    )
    kerberos: bool = Field(
        default=False,
        description="Log in as the connection's user with its password (kinit, needs `onetl[kerberos]`), as "
        "SyncMaster does for every cluster. False: anonymous WebHDFS (the connection's credentials are unused).",
    )


class SparkSettings(BaseModel):
    jars: list[str] = Field(
        default_factory=lambda: [DEFAULT_POSTGRES_JAR, DEFAULT_MARIADB_JAR],
        description="Local jar paths put on the Spark classpath (they must exist at the same path on every node). "
        "Missing paths are skipped with a warning.",
    )
    use_maven_packages: bool = Field(
        default=False,
        description="Also resolve onETL's Maven coordinates for the transfer's connection types "
        "(`spark.jars.packages`); needs Maven access from every node.",
    )
    extra_config: dict[str, str] = Field(
        default_factory=dict, description="Extra Spark options, applied before ours (JSON object)."
    )
    mysql_driver: Literal["auto", "mysql", "mariadb"] = Field(
        default="auto",
        description="JDBC driver of `mysql` connections. `mysql`: MySQL Connector/J (`com.mysql.cj.jdbc.Driver`, "
        "onETL's default; `com.mysql:mysql-connector-j` in the jars or Maven packages). `mariadb`: MariaDB "
        "Connector/J (`org.mariadb.jdbc.Driver`, e.g. Debian's /usr/share/java/mariadb-java-client.jar), which "
        "reads and writes MySQL and MariaDB servers through the same `jdbc:mysql://` URL, so Spark keeps its MySQL "
        "dialect; the URL carries `permitMysqlScheme` for Connector/J 3.x. `auto`: MySQL's driver when its class "
        "is on the Spark classpath, else MariaDB's.",
    )
    hdfs_clusters: dict[str, HDFSClusterSettings] = Field(
        default_factory=dict,
        description="HDFS cluster name -> namenode, registered as onETL hooks inside each Ray job, e.g. "
        '`{"prod": {"host": "nn1.example", "webhdfs_port": 9870, "ipc_port": 8020, "kerberos": true}}`. '
        "Clusters not listed here are resolved by whatever onETL hooks plugins the Ray nodes have, with Kerberos.",
    )
    driver_jvm_options: str = Field(
        default="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        description="JVM options of each run's Spark driver, after the operator's `spark.driver.extraJavaOptions`."
        " The driver plans and coordinates; rows never pass through it (executors read and write them), so C1 "
        "code and the serial collector do, for a fraction of the start-up CPU (docs/jvm-options.md).",
    )
    executor_jvm_options: str = Field(
        default="-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=6000 "
                "-XX:Tier4CompileThreshold=150000 -XX:Tier4BackEdgeThreshold=400000",
        description="JIT options of each executor, after the operator's `spark.executor.extraJavaOptions`: C2 "
        "compiles only the row loops that run long enough to pay for it, not Spark's start-up code. Executors of "
        "at most EXECUTOR_SERIAL_GC_MAX_MB memory also get the serial collector, unless the operator chose a "
        "collector (docs/jvm-options.md).",
    )
    executor_serial_gc_max_mb: int = Field(
        default=2048, ge=0, description="Executors with at most this much memory use the serial collector "
        "(-XX:+UseSerialGC): on small heaps its pauses are short and it spends far less CPU than G1. 0: never.",
    )
    master_jvm_options: str = Field(
        default="-XX:MaxRAMPercentage=10 -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto",
        description="JVM options of RayDP's app master (a Java actor that lives as long as the run's Spark).",
    )
    postgres_copy_write: bool = Field(
        default=True,
        description="Fill Postgres targets with `COPY` from each Spark partition (about 3x faster than JDBC "
        "inserts) where every column's type allows it; false: always JDBC inserts.",
    )
    postgres_copy_read: bool = Field(
        default=True,
        description="From a Postgres source to a Postgres target written with `COPY`, pipe the rows with `COPY` "
        "from one database to the other (the rows onETL's reader selects, never decoded by Spark) where every "
        "source column's type allows it; false: read with JDBC.",
    )
    class_data_sharing_dir: str | None = Field(
        default_factory=lambda: str(Path.home() / ".cache" / "syncmaster-ray" / "cds"),
        description="Where each Ray node keeps the Spark driver's JVM class-data-sharing archive (built by the "
        "first run on the node, about 120 MB; it cuts the driver's start-up and first queries by 2-3 s). Empty "
        "to disable.",
    )


class HWMStoreSettings(BaseModel):
    """SyncMaster's ``hwm_store`` block. Disabled (the default): our own store in the database."""

    enabled: bool = Field(default=False, description="Use Horizon as SyncMaster does (needs horizon-hwm-store).")
    type: Literal["horizon"] = Field(default="horizon", description="The only store type: `horizon`.")
    url: str | None = Field(default=None, description="Horizon API URL (required when enabled).")
    user: str | None = Field(default=None, description="Horizon user (required when enabled).")
    password: SecretStr | None = Field(default=None, description="Horizon password (required when enabled).")
    namespace: str | None = Field(
        default=None, description="Horizon namespace of the HWMs, created if missing (required when enabled)."
    )


class AppSettings(BaseSettings):
    """Everything the worker, the Ray job and the CLI read."""

    model_config = SettingsConfigDict(
        env_prefix="SYNCMASTER__",
        env_nested_delimiter="__",
        extra="ignore",
        case_sensitive=False,
    )

    database: DatabaseSettings = Field(description="SyncMaster's database: its tables and ours.")
    broker: BrokerSettings = Field(default_factory=BrokerSettings, description="SyncMaster's Celery broker.")
    encryption: EncryptionSettings | None = Field(
        default=None, description="Needed where credentials are decrypted: Ray nodes and the CLI."
    )
    worker: WorkerSettings = Field(
        default_factory=WorkerSettings, description="The Celery worker: log links, polling, leases, timeouts."
    )
    ray: RaySettings = Field(
        default_factory=RaySettings, description="The Ray cluster: where jobs go, ids, capacity, standbys."
    )
    spark: SparkSettings = Field(
        default_factory=SparkSettings, description="Spark on RayDP inside each run: jars, drivers, JVM options."
    )
    hwm_store: HWMStoreSettings = Field(
        default_factory=HWMStoreSettings,
        description="SyncMaster's `hwm_store` block: where incremental transfers keep their high-water marks.",
    )

    @model_validator(mode="after")
    def _no_example_ray_token(self) -> AppSettings:
        refuse_example_secret(ray_auth_token() or "", "RAY_AUTH_TOKEN (or the file RAY_AUTH_TOKEN_PATH names) "
                              "holds the example token of .env.compose.example", "import secrets; "
                              "print(secrets.token_hex(32))")
        return self

    def secret_values(self) -> tuple[str, ...]:
        """Every secret of these settings (and the Ray token this process has), for redacting reasons and logs."""
        optional = (self.encryption.secret_key if self.encryption else None, self.hwm_store.password)
        return (self.database.url.get_secret_value(), self.broker.url.get_secret_value(),
                *(value.get_secret_value() for value in optional if value), *ray_auth_secrets())

    @property
    def secret_key(self) -> str:
        """The Fernet key, or a ConfigError naming the variable to set."""
        if self.encryption is None:
            raise ConfigError("SYNCMASTER__ENCRYPTION__SECRET_KEY is not set on this node")
        return self.encryption.secret_key.get_secret_value()

    @property
    def job_namespace(self) -> str:
        if self.ray.job_namespace:
            return self.ray.job_namespace
        return make_url(self.database.sync_url).database or "default"


def refuse_example_secret(value: str, problem: str, generate: str) -> None:
    """A secret copied unchanged from .env.compose.example (it begins with ``PLACEHOLDER``) must not run."""
    if value.startswith(PLACEHOLDER):
        raise ValueError(f"{problem}: generate one (python -c '{generate}')")


# --- Ray's token authentication (RAY_AUTH_MODE=token) -----------------------------------------------------------
# Read here, at the bottom, because the settings refuse the example token and redact the token with the other
# secrets; ray_client builds the dashboard's auth headers on top of it. Ray's own header helper
# (ray._private.authentication.http_token_authentication.get_auth_headers_if_auth_enabled) is private, so this is
# the one place that reads the token; tests/unit/test_ray_auth.py checks that it agrees with Ray's helper.


def ray_auth_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The Ray token configured for a process with ``environ`` (default: this one's), found as Ray finds it:
    ``RAY_AUTH_TOKEN``, else the file named by ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``; whitespace
    stripped. None when there is none (whatever ``RAY_AUTH_MODE`` says: callers that redact want it anyway)."""
    environ = os.environ if environ is None else environ
    if token := environ.get("RAY_AUTH_TOKEN", "").strip():
        return token
    path = environ.get("RAY_AUTH_TOKEN_PATH") or Path(environ.get("HOME") or Path.home()) / ".ray" / "auth_token"
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def ray_auth_secrets(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The Ray token, if any, for the lists of literal secrets scrubbed from reasons and logs."""
    token = ray_auth_token(environ)
    return (token,) if token else ()


def is_postgres_url(url: str) -> bool:
    scheme, separator, _ = url.partition("://")
    return bool(separator) and (scheme == "postgres" or scheme.split("+", 1)[0] == "postgresql")


def to_psycopg_url(url: str) -> str:
    """Map SyncMaster's ``postgresql+asyncpg://`` (or any postgres scheme) to ``postgresql+psycopg://``."""
    if not is_postgres_url(url):
        raise ConfigError("SYNCMASTER__DATABASE__URL must be a PostgreSQL URL")
    _, _, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}"


@lru_cache(maxsize=1)
def get_settings() -> AppSettings:
    """Settings from the environment, plus the dotenv file named by ``SYNCMASTER_RAY_ENV_FILE``."""
    env_file = os.environ.get(ENV_FILE_VARIABLE)
    if env_file and not Path(env_file).is_file():
        raise FileNotFoundError(f"{ENV_FILE_VARIABLE} names {env_file!r}, which does not exist")
    try:
        return AppSettings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = "; ".join(_describe_error(err) for err in exc.errors())
        raise ConfigError(f"invalid syncmaster-ray settings: {problems}") from None


def _describe_error(err: dict) -> str:
    """``SYNCMASTER__DATABASE__URL: Field required`` (never the input value: it may be a secret)."""
    loc = [str(part) for part in err["loc"]]
    if err["type"] == "missing" and len(loc) == 1:
        section = AppSettings.model_fields[loc[0]].annotation
        required = [name for name, f in getattr(section, "model_fields", {}).items() if f.is_required()]
        loc += required[:1]
    name = "SYNCMASTER__" + "__".join(part.upper() for part in loc) if loc else "settings"
    return f"{name}: {err['msg']}"
