"""SyncMaster's Horizon HWM store (``SYNCMASTER__HWM_STORE__*``) against a real Horizon server: no Spark, no Ray.

Horizon is an optional extra with a server of its own (a venv installed from PyPI on first use): the tests against
it are in the long tier; the settings-to-store wiring (missing settings, a Horizon that does not answer) runs in CI.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from etl_entities.hwm import ColumnIntHWM

from syncmaster_ray.errors import ConfigError
from syncmaster_ray.spec import ConnectionSpec, RunSpec, Strategy

pytestmark = [pytest.mark.integration]

# Never used with Horizon enabled, but AppSettings requires it.
UNUSED_DATABASE_URL = "postgresql+asyncpg://unused:unused@127.0.0.1:1/unused"
SESSION_NAMESPACE = f"smr_test_{secrets.token_hex(4)}"


@pytest.fixture
def settings_from_env(monkeypatch: pytest.MonkeyPatch):
    """Build our settings from ``SYNCMASTER__*`` env vars as a Ray node does (``get_settings``, cache cleared)."""
    from syncmaster_ray.settings import ENV_FILE_VARIABLE, get_settings

    monkeypatch.delenv(ENV_FILE_VARIABLE, raising=False)
    monkeypatch.setenv("SYNCMASTER__DATABASE__URL", UNUSED_DATABASE_URL)
    for name in ("ENABLED", "URL", "USER", "PASSWORD", "NAMESPACE"):
        monkeypatch.delenv(f"SYNCMASTER__HWM_STORE__{name}", raising=False)

    def build(**hwm_store: str):
        for name, value in hwm_store.items():
            monkeypatch.setenv(f"SYNCMASTER__HWM_STORE__{name.upper()}", value)
        get_settings.cache_clear()
        return get_settings()

    yield build
    get_settings.cache_clear()  # monkeypatch restores the env after this: the next get_settings() rereads it


@pytest.fixture
def horizon_settings(horizon_server, settings_from_env):
    def build(**overrides: str):
        values = {
            "enabled": "true",
            "url": horizon_server.url,
            "user": horizon_server.user,
            "password": horizon_server.password,
            "namespace": SESSION_NAMESPACE,
        }
        return settings_from_env(**{**values, **overrides})

    return build


def make_spec(transfer_id: int, strategy: str) -> RunSpec:
    def connection(conn_id: int) -> ConnectionSpec:
        return ConnectionSpec(
            id=conn_id,
            type="postgres",
            name=f"pg{conn_id}",
            data={"type": "postgres", "host": "db.example", "port": 5432, "database_name": "src"},
            auth={"type": "postgres", "user": "etl", "password": "not-a-real-password"},
        )

    return RunSpec(
        run_id=1,
        run_created_at=datetime(2026, 1, 1, tzinfo=UTC),
        transfer_id=transfer_id,
        transfer_name="orders",
        group_name="team",
        source=connection(1),
        target=connection(2),
        source_params={"type": "postgres", "table_name": "public.orders"},
        target_params={"type": "postgres", "table_name": "public.orders_copy"},
        strategy=Strategy(type=strategy, increment_by="id" if strategy == "incremental" else None),
    )


def int_hwm(spec: RunSpec, value: int | None) -> ColumnIntHWM:
    from syncmaster_ray.job.strategy import hwm_name

    return ColumnIntHWM(name=hwm_name(spec), entity="public.orders", expression="id", value=value)


def independent_client(horizon_server):
    from horizon.client.auth import LoginPassword
    from horizon.client.sync import HorizonClientSync

    auth = LoginPassword(login=horizon_server.user, password=horizon_server.password)
    return HorizonClientSync(base_url=horizon_server.url, auth=auth)


@pytest.mark.long  # a Horizon server of its own; the wiring's twin below runs in CI
def test_hwm_store_for_returns_horizon_store_and_creates_namespace(horizon_server, horizon_settings):
    from horizon.commons.schemas.v1 import NamespacePaginateQueryV1
    from horizon_hwm_store import HorizonHWMStore

    from syncmaster_ray.job.strategy import hwm_store_for

    namespace = f"smr_ns_{secrets.token_hex(4)}"
    client = independent_client(horizon_server)
    query = NamespacePaginateQueryV1(name=namespace)
    assert client.paginate_namespaces(query).items == []

    store = hwm_store_for(horizon_settings(namespace=namespace))

    assert isinstance(store, HorizonHWMStore)
    assert str(store.api_url).rstrip("/") == horizon_server.url
    assert store.namespace == namespace
    [created] = client.paginate_namespaces(query).items
    assert created.name == namespace
    assert store.check() is store  # whoami + namespace lookup with our credentials
    # A second node (or the next run) finds the namespace already there.
    assert hwm_store_for(horizon_settings(namespace=namespace)).check().namespace == namespace
    assert len(client.paginate_namespaces(query).items) == 1


@pytest.mark.long  # a Horizon server of its own; the wiring's twin below runs in CI
def test_int_hwm_round_trips_under_syncmaster_name(horizon_settings):
    from syncmaster_ray.job.strategy import hwm_name, hwm_store_for

    spec = make_spec(transfer_id=101, strategy="incremental")
    store = hwm_store_for(horizon_settings())
    name = hwm_name(spec)
    assert name == "101_postgres_public.orders"
    assert store.get_hwm(name) is None

    store.set_hwm(int_hwm(spec, 42))
    got = hwm_store_for(horizon_settings()).get_hwm(name)  # a fresh store: read back from the server
    assert isinstance(got, ColumnIntHWM)
    assert (got.name, got.entity, got.expression, got.value) == (name, "public.orders", "id", 42)

    store.set_hwm(int_hwm(spec, 43))  # update in place
    assert store.get_hwm(name).value == 43


@pytest.mark.long  # a Horizon server of its own; the wiring's twin below runs in CI
def test_incremental_scope_yields_previous_hwm_and_saves_new_one_only_on_success(horizon_settings):
    from etl_entities.hwm_store import HWMStoreStackManager
    from onetl.strategy import IncrementalStrategy
    from onetl.strategy.strategy_manager import StrategyManager

    from syncmaster_ray.job.strategy import hwm_name, hwm_store_for, strategy_scope

    spec = make_spec(transfer_id=102, strategy="incremental")
    store = hwm_store_for(horizon_settings())
    store.set_hwm(int_hwm(spec, 10))

    def run(new_value: int, fail: bool = False) -> None:
        with strategy_scope(spec, store) as previous:
            assert previous is not None and previous.value == 10
            assert HWMStoreStackManager.get_current() is store
            strategy = StrategyManager.get_current()
            assert isinstance(strategy, IncrementalStrategy)
            # What onETL's DBReader does: the strategy carries the HWM, the read moves it forward.
            strategy.hwm = int_hwm(spec, previous.value)
            strategy.update_hwm(new_value)
            if fail:
                raise RuntimeError("the write failed")

    with pytest.raises(RuntimeError, match="the write failed"):
        run(99, fail=True)
    assert store.get_hwm(hwm_name(spec)).value == 10  # not saved: the transfer failed

    run(20)
    assert hwm_store_for(horizon_settings()).get_hwm(hwm_name(spec)).value == 20


@pytest.mark.long  # a Horizon server of its own; the wiring's twin below runs in CI
def test_full_scope_resets_previously_stored_hwm(horizon_settings):
    from syncmaster_ray.job.strategy import hwm_name, hwm_store_for, strategy_scope

    incremental = make_spec(transfer_id=103, strategy="incremental")
    hwm_store_for(horizon_settings()).set_hwm(int_hwm(incremental, 42))

    full = make_spec(transfer_id=103, strategy="full")
    store = hwm_store_for(horizon_settings())
    with strategy_scope(full, store) as previous:
        assert previous is None

    reset = hwm_store_for(horizon_settings()).get_hwm(hwm_name(full))
    assert reset is not None and reset.value is None
    assert (reset.entity, reset.expression) == ("public.orders", "id")

    # A full run with nothing stored (or already reset) leaves the store as it is.
    with strategy_scope(make_spec(transfer_id=104, strategy="full"), store) as previous:
        assert previous is None
    assert store.get_hwm(hwm_name(make_spec(transfer_id=104, strategy="full"))) is None


@pytest.mark.long  # a Horizon server of its own; the wiring's twin below runs in CI
def test_wrong_password_fails_with_a_config_error_naming_horizon_without_the_password(horizon_settings):
    from syncmaster_ray.errors import ConfigError
    from syncmaster_ray.job.strategy import hwm_store_for
    from syncmaster_ray.outcome import classify

    wrong = f"wrong-{secrets.token_urlsafe(12)}"
    settings = horizon_settings(password=wrong)
    with pytest.raises(ConfigError, match="Wrong credentials") as info:
        hwm_store_for(settings)

    exc = info.value
    assert "Horizon HWM store at" in str(exc) and "SYNCMASTER__HWM_STORE__USER/PASSWORD" in str(exc)
    code, reason = classify(exc, ())
    assert code == "config"
    assert "Wrong credentials" in reason
    for text in (str(exc), repr(exc), reason):
        assert wrong not in text


@pytest.mark.parametrize("missing", ["url", "user", "password", "namespace"])
def test_enabled_without_url_or_credentials_is_config_error(settings_from_env, missing):
    from syncmaster_ray.job.strategy import hwm_store_for

    values = {
        "enabled": "true",
        "url": "http://127.0.0.1:1",
        "user": "someone",
        "password": "s3cret-value",
        "namespace": "ns",
    }
    values.pop(missing)
    with pytest.raises(ConfigError, match=rf"SYNCMASTER__HWM_STORE__ENABLED is set but {missing} missing") as info:
        hwm_store_for(settings_from_env(**values))
    assert "s3cret-value" not in str(info.value)


def test_unreachable_horizon_is_a_config_error_naming_it_without_the_password(settings_from_env):
    from syncmaster_ray.job.strategy import hwm_store_for
    from syncmaster_ray.outcome import classify

    password = f"pw-{secrets.token_urlsafe(12)}"
    settings = settings_from_env(enabled="true", url="http://127.0.0.1:9", user="someone", password=password,
                                 namespace="ns")  # nothing listens on port 9
    with pytest.raises(ConfigError, match=r"Horizon HWM store at http://127\.0\.0\.1:9") as info:
        hwm_store_for(settings)

    code, reason = classify(info.value, ())
    assert code == "config"
    for text in (str(info.value), repr(info.value), reason):
        assert password not in text
