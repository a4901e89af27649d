"""The floor: ``COPY (SELECT ...) TO STDOUT`` piped into ``COPY ... FROM STDIN`` over two connections."""

from __future__ import annotations

import time

import psycopg
from psycopg import sql


def copy_pipe(db_url: str, source: str, target: str, *, binary: bool = False) -> float:
    """Seconds to copy every row of ``source`` into the empty ``target`` (same columns); commits at the end."""
    fmt = sql.SQL("(FORMAT binary)" if binary else "")
    src, dst = sql.Identifier(*source.split(".")), sql.Identifier(*target.split("."))
    with psycopg.connect(db_url) as reader, psycopg.connect(db_url) as writer:
        writer.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(dst))
        writer.execute(sql.SQL("CREATE TABLE {} (LIKE {})").format(dst, src))
        writer.commit()
        started = time.perf_counter()
        with reader.cursor().copy(sql.SQL("COPY {} TO STDOUT {}").format(src, fmt)) as out, \
                writer.cursor().copy(sql.SQL("COPY {} FROM STDIN {}").format(dst, fmt)) as into:
            for chunk in out:
                into.write(chunk)
        writer.commit()
        return time.perf_counter() - started
