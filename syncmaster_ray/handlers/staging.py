"""Staged writes for DB targets: no partial data, whatever happens mid-run.

Rows go to a staging table next to the target (``<table>__smr_staging``), written by ``DBWriter`` like any table.
Only once every row is there does one atomic statement (the handler's ``Swap.commit``) make it the target, or
append it to the target. A failure or a stop (the run's actor killed) before that statement leaves the target
exactly as it was; after it, the target holds the new rows in full. What may be left behind is never the target:

- ``<table>__smr_staging``, when a run is killed before its commit or after an append's commit;
- ``<table>__smr_old`` (MySQL), when a run is killed between the commit (``RENAME``) and dropping the old table.

Each write drops these leftovers first (``leftover_suffixes``), so the next run of the transfer cleans them up. Two
runs writing the same target at once share these tables: the later one drops the earlier one's staging table, so
one of them fails (not tested).
"""

from __future__ import annotations

import hashlib
import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from syncmaster_ray.handlers.base import DBHandler

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

STAGING_SUFFIX = "__smr_staging"
OLD_SUFFIX = "__smr_old"


def staging_table_for(table_name: str, max_length: int, suffix: str = STAGING_SUFFIX) -> str:
    """``schema.table`` -> ``schema.table<suffix>``, its table part shortened with a hash to ``max_length`` bytes.

    Bytes of UTF-8, as Postgres counts its 63-byte names; for MySQL, which counts 64 characters, that is stricter
    than needed. Long names keep apart: the hash is of the whole table name.
    """
    schema, _, table = table_name.rpartition(".")
    name = f"{table}{suffix}"
    if len(name.encode()) > max_length:
        digest = hashlib.sha256(table.encode()).hexdigest()[:8]
        head = table.encode()[:max_length - len(suffix.encode()) - len(digest) - 1].decode(errors="ignore")
        name = f"{head}_{digest}{suffix}"
    return f"{schema}.{name}" if schema else name


@dataclass(frozen=True)
class Swap:
    """How a full staging table becomes the target.

    ``commit`` is one atomic statement: before it the target is as it was, after it the target has the new rows.
    ``cleanup`` only removes what ``commit`` left next to the target; if it fails (or the run dies before it) the
    write still succeeded, and the next run drops the leftovers.
    """

    commit: str
    cleanup: tuple[str, ...] = ()


class StagedWriteMixin(DBHandler):
    """``write`` for a DB handler whose database can swap a table in atomically: ``class H(StagedWriteMixin,
    JDBCHandler)``. A handler sets ``max_identifier_length`` and implements ``swap``; it overrides
    ``target_exists`` when its statements depend on whether the target is there (asked right before the swap).
    """

    max_identifier_length: ClassVar[int]
    # Tables next to the target that only a killed run leaves behind: dropped before each write.
    leftover_suffixes: ClassVar[tuple[str, ...]] = (STAGING_SUFFIX,)

    @abstractmethod
    def swap(self, staging: str, columns: Sequence[str], *, target_exists: bool | None) -> Swap:
        """The statements that make the full ``staging`` table the target (replace), or append it to the target."""

    def target_exists(self) -> bool | None:
        """Whether the target table exists now; None when ``swap`` does not need to know (the default)."""
        return None

    def side_table(self, suffix: str = STAGING_SUFFIX) -> str:
        return staging_table_for(self.table_name, self.max_identifier_length, suffix)

    def write(self, df: DataFrame) -> None:
        df = self.prepare_for_write(df)
        staging = self.side_table()
        for suffix in self.leftover_suffixes:
            self.connection.execute(self.drop_statement(self.side_table(suffix)))
        try:
            self.write_staging(df, staging)
            swap = self.swap(staging, df.columns, target_exists=self.target_exists())
            self.connection.execute(swap.commit)
        except BaseException:
            self._execute_quietly(self.drop_statement(staging))
            raise
        for statement in swap.cleanup:
            self._execute_quietly(statement)

    def write_staging(self, df: DataFrame, staging: str) -> None:
        """Create ``staging`` from ``df``'s schema and fill it (``DBWriter``; handlers may write faster)."""
        self.writer(staging, {"if_exists": "replace_entire_table"}).run(df)

    def quoted_columns(self, columns: Sequence[str]) -> str:
        return ", ".join(self.dialect.quote_name(column) for column in columns)

    def _execute_quietly(self, statement: str) -> None:
        try:
            self.connection.execute(statement)
        except Exception:
            log.warning("Could not clean up after the write (the next run does): %s", statement, exc_info=True)
