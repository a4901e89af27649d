"""SyncMaster transformations as SQL fragments: row filters, column filters and the SQL step.

Pure string building, per dialect, with quoting and escaping in one place (the stock worker pastes values
between quotes unescaped).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from syncmaster_ray.errors import InvalidParamsError

BASE_OPERATORS = {
    "is_null": "IS NULL",
    "is_not_null": "IS NOT NULL",
    "equal": "=",
    "not_equal": "!=",
    "greater_than": ">",
    "greater_or_equal": ">=",
    "less_than": "<",
    "less_or_equal": "<=",
    "like": "LIKE",
    "ilike": "ILIKE",
    "not_like": "NOT LIKE",
    "not_ilike": "NOT ILIKE",
}
VALUELESS = {"is_null", "is_not_null"}
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
# A SQL type name such as `varchar(10)`, `decimal(10, 2)`, `timestamp with time zone`, `text[]`: nothing else
# may reach the CAST, which is pasted into the source database's query.
_TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]{0,63}(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])?$")


@dataclass(frozen=True)
class Dialect:
    """How one backend quotes names and values and spells regexp/ilike.

    ``regexp_template``, when set, replaces the ``<name> <regexp> <value>`` form for backends whose regexp match
    is a function (Oracle: ``REGEXP_LIKE({name}, {value})``). Where a backslash starts an escape sequence
    (MySQL, ClickHouse and Spark SQL literals; ClickHouse quoted names too), it is doubled, so a value or name
    means exactly what the user typed and cannot close its quotes.
    """

    quote: str = '"'
    regexp: str = "~"
    native_ilike: bool = True
    regexp_template: str | None = None
    backslash_escapes_in_literals: bool = False
    backslash_escapes_in_names: bool = False
    # How a single quote is written inside a literal. Spark SQL reads 'a''b' as two adjacent literals ("ab"), so
    # it needs a backslash there.
    quote_in_literal: str = "''"
    # What the database does to an unquoted name: Postgres lowers its ASCII letters (and only those), Oracle
    # raises them; MySQL keeps names as written.
    fold_unquoted: Literal["lower", "upper"] | None = None
    # The longest name the database keeps, in UTF-8 bytes (None: not needed, as no side table is named in it).
    max_identifier_length: int | None = None

    def resolve_name(self, name: str) -> tuple[str, ...]:
        """The parts of a dotted table name as the database stores them: quoted parts exactly, unquoted ones
        folded. SyncMaster's worker hands the name to Spark's JDBC writer as written, so ``public.Orders`` is the
        Postgres table ``public.orders`` and ``public."Orders"`` is ``public.Orders``."""
        parts: list[str] = []
        position = 0
        while True:
            if name.startswith(self.quote, position):
                part, position = self._quoted_part(name, position)
            else:
                end = name.find(".", position)
                end = len(name) if end < 0 else end
                part, position = self._fold(name[position:end].strip()), end
            if not part:
                raise InvalidParamsError(f"table name {name!r} has an empty part")
            parts.append(part)
            if position == len(name):
                return tuple(parts)
            if name[position] != ".":
                raise InvalidParamsError(f"table name {name!r} has text after a quoted part")
            position += 1

    def _quoted_part(self, name: str, start: int) -> tuple[str, int]:
        """The unquoted text of the quoted part at ``start`` and the position after it (a doubled quote is one)."""
        pieces, position = [], start + 1
        while True:
            end = name.find(self.quote, position)
            if end < 0:
                raise InvalidParamsError(f"table name {name!r} has an unclosed {self.quote}")
            if name.startswith(self.quote * 2, end):
                pieces.append(name[position:end + 1])
                position = end + 2
                continue
            pieces.append(name[position:end])
            return "".join(pieces), end + 1

    def _fold(self, part: str) -> str:
        if self.fold_unquoted == "lower":
            return part.translate(_ASCII_LOWER)
        if self.fold_unquoted == "upper":
            return part.translate(_ASCII_UPPER)
        return part

    def sql_name(self, parts: Iterable[str]) -> str:
        """A resolved name, each part quoted: the same table whatever case or characters it has."""
        return ".".join(self.quote_name(part) for part in parts)

    def quote_name(self, name: str) -> str:
        if self.backslash_escapes_in_names:
            name = name.replace("\\", "\\\\")
        return f"{self.quote}{name.replace(self.quote, self.quote * 2)}{self.quote}"

    def literal(self, value: Any) -> str:
        text = str(value)
        if self.backslash_escapes_in_literals:
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", self.quote_in_literal) + "'"

    def regexp_clause(self, name: str, value: str) -> str:
        """``name`` and ``value`` already quoted."""
        if self.regexp_template:
            return self.regexp_template.format(name=name, value=value)
        return f"{name} {self.regexp} {value}"


# Each database type's dialect is in its handler's module (``DIALECT``).
# File sources: filters run as Spark SQL on the DataFrame read (Spark >= 3.3 has ILIKE).
SPARK = Dialect(
    quote="`", regexp="RLIKE", native_ilike=True, backslash_escapes_in_literals=True, quote_in_literal="\\'"
)


def literal(value: Any) -> str:
    """A single-quoted SQL string literal, with quotes escaped."""
    return "'" + str(value).replace("'", "''") + "'"


def filters_of(transformations: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    for transformation in transformations:
        if transformation.get("type") == kind:
            items = transformation.get("filters")
            if not isinstance(items, list):
                raise InvalidParamsError(f"transformation {kind!r} needs a 'filters' list")
            filters.extend(items)
    return filters


def rows_filter_sql(filters: list[dict[str, Any]], dialect: Dialect) -> str | None:
    """SyncMaster's ``dataframe_rows_filter`` as a WHERE clause (clauses joined with AND)."""
    clauses = [_row_clause(f, dialect) for f in filters]
    return " AND ".join(clauses) or None


def _row_clause(filter_: dict[str, Any], dialect: Dialect) -> str:
    op = filter_.get("type")
    field = filter_.get("field")
    if not isinstance(field, str) or not field:
        raise InvalidParamsError(f"row filter {op!r} needs a 'field'")
    if op != "regexp" and op not in BASE_OPERATORS:
        raise InvalidParamsError(f"unknown row filter operator {op!r}")
    name = dialect.quote_name(field)
    if op in VALUELESS:
        return f"{name} {BASE_OPERATORS[op]}"
    if "value" not in filter_ or filter_["value"] is None:
        raise InvalidParamsError(f"row filter {op!r} on {field!r} needs a 'value'")
    value = dialect.literal(filter_["value"])
    if op == "regexp":
        return dialect.regexp_clause(name, value)
    if op in ("ilike", "not_ilike") and not dialect.native_ilike:
        negation = "NOT " if op == "not_ilike" else ""
        return f"LOWER({name}) {negation}LIKE LOWER({value})"
    return f"{name} {BASE_OPERATORS[op]} {value}"


def columns_filter_sql(filters: list[dict[str, Any]], dialect: Dialect) -> list[str] | None:
    """SyncMaster's ``dataframe_columns_filter``: include -> f, rename -> f AS to, cast -> CAST(f AS t) AS f."""
    expressions: list[str] = []
    for filter_ in filters:
        kind, field = filter_.get("type"), filter_.get("field")
        if not isinstance(field, str) or not field:
            raise InvalidParamsError(f"column filter {kind!r} needs a 'field'")
        name = dialect.quote_name(field)
        if kind == "include":
            expressions.append(name)
        elif kind == "rename":
            expressions.append(f"{name} AS {dialect.quote_name(_required(filter_, 'to', kind))}")
        elif kind == "cast":
            expressions.append(f"CAST({name} AS {_type_name(_required(filter_, 'as_type', kind))}) AS {name}")
        else:
            raise InvalidParamsError(f"unknown column filter {kind!r}")
    return expressions or None


def sql_query_of(transformations: Iterable[dict[str, Any]]) -> str | None:
    """The ``sql`` transformation's query (run by Spark against the view ``source``), if any."""
    for transformation in transformations:
        if transformation.get("type") == "sql":
            query = transformation.get("query")
            if not isinstance(query, str) or not query.strip().upper().startswith(("SELECT", "WITH")):
                raise InvalidParamsError("the sql transformation's query must start with SELECT or WITH")
            return query
    return None


def _required(filter_: dict[str, Any], key: str, kind: Any) -> str:
    value = filter_.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidParamsError(f"column filter {kind!r} needs {key!r}")
    return value


def _type_name(value: str) -> str:
    if not _TYPE_NAME.match(value.strip()):
        raise InvalidParamsError(f"column filter cast: {value!r} is not a SQL type name")
    return value.strip()
