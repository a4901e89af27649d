"""The Celery front: ``python -m celery -A syncmaster_ray.worker worker -Q <slug>``.

Imports: settings, errors, db, ray_client, links. Never job, handlers, pyspark, raydp or onETL: this process only
claims runs, submits Ray jobs, watches them and writes outcomes.
"""

from syncmaster_ray.worker import signals  # noqa: F401  (connects the worker's lifecycle handlers)
from syncmaster_ray.worker.app import app

__all__ = ["app"]
