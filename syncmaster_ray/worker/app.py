"""Builds the Celery app SyncMaster's server publishes to, and names the task module."""

from __future__ import annotations

from celery import Celery

from syncmaster_ray.settings import AppSettings, get_settings


def create_app(settings: AppSettings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("syncmaster_ray.worker", broker=settings.broker.url.get_secret_value(),
                 include=["syncmaster_ray.worker.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        # The stock worker acks at start, so a dying worker loses the run; we ack when the run is settled and get
        # the message redelivered if the worker process is lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A run's task only waits on Postgres and Ray's Jobs API: threads are enough, and one process supervises
        # many runs in about 150 MB (prefork would hold the imports once per child). `-P`/`-c` still override.
        worker_pool="threads",
        worker_concurrency=8,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


app = create_app()
