"""Builds the Celery app SyncMaster's server publishes to (``signals.py`` wires the worker's lifecycle to it)."""

from __future__ import annotations

from celery import Celery

from syncmaster_ray.settings import AppSettings, get_settings

DEFAULT_CONCURRENCY = 8


def create_app(settings: AppSettings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("syncmaster_ray.worker", broker=settings.broker.url.get_secret_value(),
                 include=["syncmaster_ray.worker.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        # A task only claims its run (well under a second) and is acknowledged when it returns: a worker lost
        # before the claim gets the message redelivered; after it, the run's lease protects it (pool.py).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Supervising a run only waits on Postgres and Ray's Jobs API: threads are enough, and one process
        # supervises many runs in about 150 MB. `-c N`: at most N runs with a Ray job at a time (the rest wait in
        # the order they were taken).
        worker_pool="threads",
        worker_concurrency=DEFAULT_CONCURRENCY,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


app = create_app()
