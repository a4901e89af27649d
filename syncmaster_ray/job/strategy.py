"""Full and incremental strategies: which HWM store, the HWM's name, and the onETL strategy scope."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from syncmaster_ray.errors import ConfigError
from syncmaster_ray.outcome import short_error
from syncmaster_ray.spec import RunSpec, hwm_name

if TYPE_CHECKING:
    from etl_entities.hwm import HWM
    from etl_entities.hwm_store import BaseHWMStore

    from syncmaster_ray.settings import AppSettings

log = logging.getLogger(__name__)


def hwm_store_for(settings: AppSettings) -> BaseHWMStore:
    """Horizon when ``SYNCMASTER__HWM_STORE__ENABLED`` (as SyncMaster), else our table in SyncMaster's database."""
    config = settings.hwm_store
    if not config.enabled:
        from syncmaster_ray.db.hwm_store import PostgresHWMStore

        return PostgresHWMStore(sync_url=settings.database.sync_url)
    missing = [name for name in ("url", "user", "password", "namespace") if not getattr(config, name)]
    if missing:
        raise ConfigError(f"SYNCMASTER__HWM_STORE__ENABLED is set but {', '.join(missing)} missing")
    try:
        from horizon.client.auth import LoginPassword
        from horizon_hwm_store import HorizonHWMStore
    except ImportError:
        raise ConfigError("the Horizon HWM store needs the `horizon-hwm-store` package on every Ray node") from None
    assert config.password is not None
    store = HorizonHWMStore(
        api_url=config.url,
        auth=LoginPassword(login=config.user, password=config.password.get_secret_value()),
        namespace=config.namespace,
    )
    try:
        return store.force_create_namespace()
    except Exception as exc:  # authlib's OAuthError on bad credentials, requests' errors when unreachable
        raise ConfigError(
            f"the Horizon HWM store at {config.url} refused SYNCMASTER__HWM_STORE__USER/PASSWORD or cannot be "
            f"reached: {short_error(exc)}"
        ) from None


@contextmanager
def strategy_scope(spec: RunSpec, store: BaseHWMStore) -> Iterator[HWM | None]:
    """Yield the transfer's previous HWM inside the right onETL strategy.

    Incremental: onETL's ``IncrementalStrategy`` with ``store`` current; the new HWM is saved only when the block
    ends without error. Full: any HWM of the transfer is reset first, so a later incremental run starts over (as
    SyncMaster does when a transfer is switched from incremental to full).
    """
    from onetl.strategy import IncrementalStrategy

    name = hwm_name(spec)
    previous = store.get_hwm(name)
    if spec.strategy.type != "incremental":
        if previous is not None and previous.value:
            log.info("Full run: resetting HWM %s", name)
            store.set_hwm(previous.reset())
        yield None
        return
    log.info("Incremental run: HWM %s = %r", name, previous.value if previous else None)
    with store, IncrementalStrategy():
        yield previous


def previous_value(previous: Any) -> Any:
    return getattr(previous, "value", None) if previous is not None else None
