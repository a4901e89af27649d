"""The Ray side: the job entrypoint, the placement group, the transfer actor and Spark on RayDP.

``entrypoint`` (the Ray job: spec, placement, actor, outcome, teardown) -> ``placement`` (bundle maths) ->
``actor`` (``TransferActor``, one per run, and ``spawn``) and ``standby`` (``StandbyActor``, a transfer actor started
ahead of its run) -> ``session`` (the session's shape, starting and stopping Spark on RayDP) -> ``spark`` (its
config), ``class_data_sharing``, ``executor_nodes``, ``workdirs``; ``transfer`` reads, transforms and writes.

Imports everything below it plus ray, raydp, pyspark and onETL. Nothing here is imported by the Celery worker.
"""
