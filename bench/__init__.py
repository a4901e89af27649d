"""Benchmarks: our worker against SyncMaster's own, through the real server, and a Postgres ``COPY`` pipe, on the
same rows in one run."""
