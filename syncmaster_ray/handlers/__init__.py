"""Connection handlers: one module per SyncMaster connection type, each turning a spec into onETL calls.

Imports: spec, errors, settings types. onETL and pyspark only inside methods (the CLI validates params through
these classes). Never: celery, db, ray, job, worker. ``registry.handler_class_for`` finds a type's handler;
``base.Handler`` is what every handler is. This package module imports nothing, so no handler module depends
on the registry through it.
"""
