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

from syncmaster_ray.errors import TargetError
from syncmaster_ray.handlers.base import DBHandler
from syncmaster_ray.handlers.transforms import Dialect

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

STAGING_SUFFIX = "__smr_staging"
OLD_SUFFIX = "__smr_old"


def side_name(table: str, max_length: int, suffix: str = STAGING_SUFFIX) -> str:
    """``table`` -> ``table<suffix>``, shortened with a hash to ``max_length`` bytes.

    Bytes of UTF-8, as Postgres counts its 63-byte names; for MySQL, which counts 64 characters, that is stricter
    than needed. Long names keep apart: the hash is of the whole table name.
    """
    name = f"{table}{suffix}"
    if len(name.encode()) > max_length:
        digest = hashlib.sha256(table.encode()).hexdigest()[:8]
        head = table.encode()[:max_length - len(suffix.encode()) - len(digest) - 1].decode(errors="ignore")
        name = f"{head}_{digest}{suffix}"
    return name


def staging_table_for(table_name: str, max_length: int, suffix: str = STAGING_SUFFIX) -> str:
    """``schema.table`` -> ``schema.table<suffix>`` (a dotted name whose parts are as stored), see ``side_name``."""
    schema, _, table = table_name.rpartition(".")
    name = side_name(table, max_length, suffix)
    return f"{schema}.{name}" if schema else name


def side_table_for(dialect: Dialect, table_name: str, suffix: str = STAGING_SUFFIX) -> str:
    """``schema.table`` -> ``schema.table<suffix>`` as ``dialect``'s database stores it (unquoted parts folded),
    within its ``max_identifier_length``: e.g. the staging table of a run writing ``table_name``."""
    assert dialect.max_identifier_length is not None
    parts = dialect.resolve_name(table_name)
    return ".".join((*parts[:-1], side_name(parts[-1], dialect.max_identifier_length, suffix)))


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
    JDBCHandler)``. Its dialect sets ``max_identifier_length``; the handler implements ``swap``; it overrides
    ``target_exists`` when its statements depend on whether the target is there (asked right before the swap).

    Every name here is resolved as the database stores it (``Dialect.resolve_name``: ``public.Orders`` is
    ``public.orders`` in Postgres, as SyncMaster's worker writes it) and then always quoted, so the staging table,
    the swap and the cleanup name exactly the tables the writer made, whatever their case or characters.
    """

    atomic_write = True
    # Tables next to the target that only a killed run leaves behind: dropped before each write.
    leftover_suffixes: ClassVar[tuple[str, ...]] = (STAGING_SUFFIX,)

    @abstractmethod
    def swap(self, staging: str, columns: Sequence[str], *, target_exists: bool | None) -> Swap:
        """The statements that make the full ``staging`` table the target (replace), or append it to the target."""

    def target_exists(self) -> bool | None:
        """Whether the target table exists now; None when ``swap`` does not need to know (the default)."""
        return None

    @property
    def target_parts(self) -> tuple[str, ...]:
        """The target's name parts as the database stores them."""
        return self.dialect.resolve_name(self.table_name)

    @property
    def target_sql(self) -> str:
        return self.dialect.sql_name(self.target_parts)

    def side_parts(self, suffix: str = STAGING_SUFFIX) -> tuple[str, ...]:
        *schema, table = self.target_parts
        assert self.dialect.max_identifier_length is not None
        return (*schema, side_name(table, self.dialect.max_identifier_length, suffix))

    def side_table(self, suffix: str = STAGING_SUFFIX) -> str:
        """The side table next to the target, quoted (for our statements and for the writer alike)."""
        return self.dialect.sql_name(self.side_parts(suffix))

    def drop_statement(self, table: str) -> str:
        """``table`` is already a quoted SQL name here (``side_table``, ``target_sql``)."""
        return f"DROP TABLE IF EXISTS {table}"

    def schema_exists(self) -> bool | None:
        """Whether the target's schema exists; None when the name has none (or the handler cannot tell)."""
        return None

    def write(self, df: DataFrame) -> None:
        df = self.prepare_for_write(df)
        if self.schema_exists() is False:
            schema = ".".join(self.target_parts[:-1])
            raise TargetError(f"the target schema {schema!r} does not exist in {self.describe} (the target "
                              f"table {self.table_name!r}); create it, or name an existing one")
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
