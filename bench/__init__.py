"""Benchmarks: our pipeline vs the stock worker's way vs Postgres ``COPY``, on the same rows in one run."""
