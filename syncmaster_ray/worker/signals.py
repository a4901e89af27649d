"""The worker process's lifecycle, on Celery's signals: its run pool sized at start, the reconciler started once the
worker is ready (and a warning when the Jobs API takes anonymous requests), every run handed back at shutdown."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import signals

from syncmaster_ray.ray_client import accepts_anonymous_jobs
from syncmaster_ray.redact import redact
from syncmaster_ray.settings import get_settings
from syncmaster_ray.worker.app import DEFAULT_CONCURRENCY, app
from syncmaster_ray.worker.pool import Reconciler, RunPool
from syncmaster_ray.worker.supervisor import RunSupervisor, current_worker_id

log = logging.getLogger(__name__)
_pool: RunPool | None = None
_reconciler: Reconciler | None = None


def run_pool() -> RunPool:
    """This process's run pool (sized by the worker's concurrency once the worker starts)."""
    global _pool
    if _pool is None:
        _pool = RunPool(app.conf.worker_concurrency or DEFAULT_CONCURRENCY,
                        check_every=get_settings().worker.heartbeat_seconds)
    return _pool


@signals.worker_init.connect
def _size_the_pool(sender: Any = None, **_: Any) -> None:
    global _pool
    concurrency = getattr(sender, "concurrency", None) or app.conf.worker_concurrency or DEFAULT_CONCURRENCY
    _pool = RunPool(concurrency, check_every=get_settings().worker.heartbeat_seconds)


@signals.worker_ready.connect
def _warn_about_an_open_jobs_api(**_: Any) -> None:
    """Once per worker start, in the background: a Jobs API that takes requests without a token runs anyone's code."""
    address = get_settings().ray.address

    def check() -> None:
        if accepts_anonymous_jobs(address):
            log.warning("The Ray Jobs API at %s accepts requests without a token: anyone who reaches it can run code "
                        "on the cluster. Turn on Ray's token authentication (RAY_AUTH_MODE=token on every node and "
                        "this worker; see docs/operator-guide.md, Ray token authentication).", redact(address))

    threading.Thread(target=check, name="jobs-api-check", daemon=True).start()


@signals.worker_ready.connect
def _start_reconciler(sender: Any = None, **_: Any) -> None:
    global _reconciler
    interval = get_settings().worker.reconcile_interval_seconds
    if interval <= 0:
        log.info("Automatic reconcile is off (SYNCMASTER__WORKER__RECONCILE_INTERVAL_SECONDS=0)")
        return
    slugs = sorted(app.amqp.queues.consume_from or app.amqp.queues)
    _reconciler = Reconciler(lambda: RunSupervisor.from_settings(current_worker_id()), interval, slugs)
    _reconciler.start()
    log.info("Reconciling runs of %s whose worker is gone every %.0f s", ", ".join(slugs), interval)


@signals.worker_shutting_down.connect
def _hand_runs_back(**_: Any) -> None:
    if _reconciler is not None:
        _reconciler.stop()
    if _pool is not None:
        handed = _pool.hand_back_all()
        if handed:
            log.warning("Shutting down: runs %s handed back to the queue (their Ray jobs go on)", handed)
