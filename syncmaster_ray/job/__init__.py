"""The Ray side: the job entrypoint, the placement group, the transfer actor and Spark on RayDP.

Imports everything below it plus ray, raydp, pyspark and onETL. Nothing here is imported by the Celery worker.
"""
