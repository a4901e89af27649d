"""Connection handlers: one module per SyncMaster connection type, each turning a spec into onETL calls.

Imports: spec, errors. onETL and pyspark only inside methods (the CLI validates params through these classes).
Never: celery, db, ray.
"""

from syncmaster_ray.handlers.base import DBHandler, Handler
from syncmaster_ray.handlers.registry import handler_class_for

__all__ = ["DBHandler", "Handler", "handler_class_for"]
