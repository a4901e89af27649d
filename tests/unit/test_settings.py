"""``syncmaster_ray.settings``: SyncMaster's env names, URL mapping, defaults, dotenv loading, secret hygiene."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from syncmaster_ray.errors import ConfigError, SyncmasterRayError
from syncmaster_ray.settings import ENV_FILE_VARIABLE, AppSettings, get_settings, to_psycopg_url

DB_PASSWORD = "db-Pa55word-xyz"
BROKER_PASSWORD = "broker-Pa55word-qrs"
DB_URL = f"postgresql+asyncpg://syncmaster:{DB_PASSWORD}@db.example:5432/syncmaster_prod"
BROKER_URL = f"amqp://rabbit:{BROKER_PASSWORD}@rabbitmq:5672/"


@pytest.fixture
def fernet_key() -> str:
    return Fernet.generate_key().decode()


def set_db(monkeypatch: pytest.MonkeyPatch, url: str = DB_URL) -> None:
    monkeypatch.setenv("SYNCMASTER__DATABASE__URL", url)


# --- database URL --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+asyncpg://syncmaster:secret@db:5432/syncmaster",
            "postgresql+psycopg://syncmaster:secret@db:5432/syncmaster",
        ),
        ("postgresql://syncmaster:secret@db:5432/syncmaster", "postgresql+psycopg://syncmaster:secret@db:5432/syncmaster"),
        ("postgres://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("postgresql+psycopg://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
    ],
)
def test_sync_url_maps_any_postgres_scheme_to_psycopg(monkeypatch, url, expected):
    set_db(monkeypatch, url)
    settings = get_settings()
    assert settings.database.url.get_secret_value() == url
    assert settings.database.sync_url == expected
    assert to_psycopg_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://u:p@h/d", "sqlite:///tmp/x.db", "oracle+oracledb://u:p@h/d", "h:5432/d"])
def test_non_postgres_url_is_rejected_by_sync_url(monkeypatch, url):
    set_db(monkeypatch, url)
    with pytest.raises(ConfigError, match="must be a PostgreSQL URL"):
        get_settings()
    with pytest.raises(ConfigError, match="must be a PostgreSQL URL"):
        to_psycopg_url(url)


def test_non_postgres_url_is_rejected_when_settings_load(monkeypatch):
    set_db(monkeypatch, "mysql://syncmaster:secret@db:3306/syncmaster")
    with pytest.raises(ConfigError, match="SYNCMASTER__DATABASE__URL"):
        get_settings()


def test_non_postgres_url_error_does_not_leak_the_password(monkeypatch):
    # Short enough that pydantic does not elide the middle of input_value (longer URLs leak it partially).
    set_db(monkeypatch, "mysql://sm:Pa55word@db/sm")
    with pytest.raises((ValueError, SyncmasterRayError)) as info:  # any of ours or pydantic's, never with the password
        _ = get_settings().database.sync_url
    assert "Pa55word" not in str(info.value)


def test_missing_database_url_is_a_config_error_naming_the_variable_prefix():
    with pytest.raises(ConfigError) as info:
        get_settings()
    assert info.value.code == "config"
    assert "SYNCMASTER__DATABASE" in info.value.reason
    assert "invalid syncmaster-ray settings" in info.value.reason


def test_missing_database_url_names_the_full_variable():
    with pytest.raises(ConfigError, match="SYNCMASTER__DATABASE__URL"):
        get_settings()


def test_get_settings_is_cached_until_cleared(monkeypatch):
    set_db(monkeypatch)
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("SYNCMASTER__RAY__ADDRESS", "http://other:8265")
    assert get_settings().ray.address == "http://127.0.0.1:8265"
    get_settings.cache_clear()
    assert get_settings().ray.address == "http://other:8265"


# --- Ray addresses and namespace -----------------------------------------------------------------------------------


def test_ray_defaults(monkeypatch):
    set_db(monkeypatch)
    settings = get_settings()
    assert settings.ray.address == "http://127.0.0.1:8265"
    assert settings.ray.dashboard_url is None
    assert settings.ray.public_dashboard_url == "http://127.0.0.1:8265"
    assert settings.broker.url.get_secret_value() == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.encryption is None
    assert settings.worker.log_url_template == ""


def test_dashboard_url_defaults_to_address_without_trailing_slash(monkeypatch):
    set_db(monkeypatch)
    monkeypatch.setenv("SYNCMASTER__RAY__ADDRESS", "http://ray-head:8265/")
    settings = get_settings()
    assert settings.ray.address == "http://ray-head:8265/"
    assert settings.ray.public_dashboard_url == "http://ray-head:8265"


def test_dashboard_url_overrides_address_and_is_stripped(monkeypatch):
    set_db(monkeypatch)
    monkeypatch.setenv("SYNCMASTER__RAY__ADDRESS", "http://ray-head:8265")
    monkeypatch.setenv("SYNCMASTER__RAY__DASHBOARD_URL", "https://ray.example.com/dash//")
    settings = get_settings()
    assert settings.ray.address == "http://ray-head:8265"
    assert settings.ray.public_dashboard_url == "https://ray.example.com/dash"


def test_job_namespace_defaults_to_database_name(monkeypatch):
    set_db(monkeypatch, "postgresql+asyncpg://u:p@db:5432/syncmaster_prod")
    assert get_settings().job_namespace == "syncmaster_prod"


def test_job_namespace_without_database_name_is_default(monkeypatch):
    set_db(monkeypatch, "postgresql://u:p@db:5432")
    assert get_settings().job_namespace == "default"


def test_job_namespace_explicit_wins(monkeypatch):
    set_db(monkeypatch)
    monkeypatch.setenv("SYNCMASTER__RAY__JOB_NAMESPACE", "team-a")
    assert get_settings().job_namespace == "team-a"


def test_nested_values_are_parsed(monkeypatch):
    set_db(monkeypatch)
    monkeypatch.setenv("SYNCMASTER__RAY__DRIVER_CPUS", "2.5")
    monkeypatch.setenv("SYNCMASTER__SPARK__JARS", '["/a.jar", "/b.jar"]')
    monkeypatch.setenv("SYNCMASTER__SPARK__EXTRA_CONFIG", '{"spark.sql.shuffle.partitions": "4"}')
    monkeypatch.setenv("SYNCMASTER__WORKER__LOG_URL_TEMPLATE", "https://logs/{{ run.id }}")
    settings = get_settings()
    assert settings.ray.driver_cpus == 2.5
    assert settings.spark.jars == ["/a.jar", "/b.jar"]
    assert settings.spark.extra_config == {"spark.sql.shuffle.partitions": "4"}
    assert settings.worker.log_url_template == "https://logs/{{ run.id }}"


def test_invalid_numeric_value_is_a_config_error_naming_the_variable(monkeypatch):
    set_db(monkeypatch)
    monkeypatch.setenv("SYNCMASTER__WORKER__JOB_POLL_INTERVAL_SECONDS", "0")
    with pytest.raises(ConfigError, match="SYNCMASTER__WORKER__JOB_POLL_INTERVAL_SECONDS"):
        get_settings()


# --- Fernet key ----------------------------------------------------------------------------------------------------


def test_valid_fernet_key_is_exposed_by_secret_key(monkeypatch, fernet_key):
    set_db(monkeypatch)
    monkeypatch.setenv("SYNCMASTER__ENCRYPTION__SECRET_KEY", fernet_key)
    assert get_settings().secret_key == fernet_key


def test_secret_key_without_encryption_is_a_config_error(monkeypatch):
    set_db(monkeypatch)
    settings = get_settings()
    with pytest.raises(ConfigError, match="SYNCMASTER__ENCRYPTION__SECRET_KEY is not set"):
        _ = settings.secret_key


@pytest.mark.parametrize("bad_key", ["not-a-fernet-key-TOPSECRET", "QUJD" * 8, "x" * 44])
def test_invalid_fernet_key_is_rejected_without_echoing_it(monkeypatch, bad_key):
    set_db(monkeypatch)
    monkeypatch.setenv("SYNCMASTER__ENCRYPTION__SECRET_KEY", bad_key)
    with pytest.raises(ConfigError) as info:
        get_settings()
    assert "SYNCMASTER__ENCRYPTION__SECRET_KEY: Value error, not a valid Fernet key" in info.value.reason
    assert bad_key not in str(info.value)
    assert bad_key not in repr(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# --- dotenv --------------------------------------------------------------------------------------------------------


def test_env_file_is_loaded(monkeypatch, tmp_path: Path, fernet_key):
    env_file = tmp_path / "syncmaster.env"
    env_file.write_text(
        f"SYNCMASTER__DATABASE__URL={DB_URL}\n"
        f"SYNCMASTER__ENCRYPTION__SECRET_KEY={fernet_key}\n"
        "SYNCMASTER__RAY__ADDRESS=http://from-file:8265\n"
        "SOMETHING_ELSE=ignored\n"
    )
    monkeypatch.setenv(ENV_FILE_VARIABLE, str(env_file))
    settings = get_settings()
    assert settings.database.url.get_secret_value() == DB_URL
    assert settings.secret_key == fernet_key
    assert settings.ray.address == "http://from-file:8265"
    assert settings.job_namespace == "syncmaster_prod"


def test_environment_wins_over_env_file(monkeypatch, tmp_path: Path):
    env_file = tmp_path / "syncmaster.env"
    env_file.write_text(f"SYNCMASTER__DATABASE__URL={DB_URL}\nSYNCMASTER__RAY__ADDRESS=http://from-file:8265\n")
    monkeypatch.setenv(ENV_FILE_VARIABLE, str(env_file))
    monkeypatch.setenv("SYNCMASTER__RAY__ADDRESS", "http://from-env:8265")
    assert get_settings().ray.address == "http://from-env:8265"


def test_missing_env_file_is_file_not_found(monkeypatch, tmp_path: Path):
    missing = tmp_path / "nope.env"
    set_db(monkeypatch)
    monkeypatch.setenv(ENV_FILE_VARIABLE, str(missing))
    with pytest.raises(FileNotFoundError, match=ENV_FILE_VARIABLE) as info:
        get_settings()
    assert str(missing) in str(info.value)


def test_no_env_file_variable_reads_environment_only(monkeypatch, tmp_path: Path):
    # A stray .env in the working directory must not be picked up.
    (tmp_path / ".env").write_text("SYNCMASTER__RAY__ADDRESS=http://stray:8265\n")
    monkeypatch.chdir(tmp_path)
    set_db(monkeypatch)
    assert get_settings().ray.address == "http://127.0.0.1:8265"


# --- secrets never in repr/str -------------------------------------------------------------------------------------


def test_repr_and_str_hide_every_secret(monkeypatch, fernet_key):
    set_db(monkeypatch)
    monkeypatch.setenv("SYNCMASTER__BROKER__URL", BROKER_URL)
    monkeypatch.setenv("SYNCMASTER__ENCRYPTION__SECRET_KEY", fernet_key)
    settings = get_settings()
    assert settings.broker.url.get_secret_value() == BROKER_URL
    texts = (repr(settings), str(settings), repr(settings.database), str(settings.broker), repr(settings.encryption))
    for text in texts:
        assert DB_PASSWORD not in text
        assert BROKER_PASSWORD not in text
        assert fernet_key not in text


def test_explicit_construction(fernet_key):
    settings = AppSettings(
        database={"url": DB_URL},
        encryption={"secret_key": fernet_key},
        ray={"address": "http://h:8265", "job_namespace": "ns"},
    )
    assert settings.job_namespace == "ns"
    assert settings.ray.public_dashboard_url == "http://h:8265"
