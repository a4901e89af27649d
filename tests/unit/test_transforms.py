"""``syncmaster_ray.handlers.transforms``: SyncMaster transformations as escaped SQL fragments."""

from __future__ import annotations

import pytest

from syncmaster_ray.errors import InvalidParamsError
from syncmaster_ray.handlers.postgres import DIALECT as POSTGRES
from syncmaster_ray.handlers.transforms import (
    Dialect,
    columns_filter_sql,
    filters_of,
    literal,
    rows_filter_sql,
    sql_query_of,
)

MYSQLISH = Dialect(quote="`", regexp="RLIKE", native_ilike=False)


def row(op: str, field: str = "name", **extra) -> dict:
    return {"type": op, "field": field, **extra}


# --- row filters ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("is_null", None, '"name" IS NULL'),
        ("is_not_null", None, '"name" IS NOT NULL'),
        ("equal", "x", "\"name\" = 'x'"),
        ("not_equal", "x", "\"name\" != 'x'"),
        ("greater_than", "5", "\"name\" > '5'"),
        ("greater_or_equal", "5", "\"name\" >= '5'"),
        ("less_than", "5", "\"name\" < '5'"),
        ("less_or_equal", "5", "\"name\" <= '5'"),
        ("like", "a%", "\"name\" LIKE 'a%'"),
        ("ilike", "a%", "\"name\" ILIKE 'a%'"),
        ("not_like", "a%", "\"name\" NOT LIKE 'a%'"),
        ("not_ilike", "a%", "\"name\" NOT ILIKE 'a%'"),
        ("regexp", "^a.*z$", "\"name\" ~ '^a.*z$'"),
    ],
)
def test_every_row_operator_for_postgres(op, value, expected):
    filter_ = row(op) if value is None else row(op, value=value)
    assert rows_filter_sql([filter_], POSTGRES) == expected


def test_all_thirteen_operators_are_covered():
    ops = ["is_null", "is_not_null", "equal", "not_equal", "greater_than", "greater_or_equal", "less_than",
           "less_or_equal", "like", "ilike", "not_like", "not_ilike", "regexp"]
    filters = [row(op, value="v") for op in ops]
    sql = rows_filter_sql(filters, POSTGRES)
    assert sql.count(" AND ") == 12


def test_valueless_operators_ignore_a_value():
    assert rows_filter_sql([row("is_null", value="ignored")], POSTGRES) == '"name" IS NULL'


def test_clauses_are_joined_with_and():
    sql = rows_filter_sql([row("equal", "a", value="1"), row("is_not_null", "b"), row("less_than", "c", value=3)],
                          POSTGRES)
    assert sql == "\"a\" = '1' AND \"b\" IS NOT NULL AND \"c\" < '3'"


def test_no_filters_is_none():
    assert rows_filter_sql([], POSTGRES) is None


@pytest.mark.parametrize(
    ("value", "literal_sql"),
    [
        ("O'Brien", "'O''Brien'"),
        ("''", "''''''"),
        ("x' OR '1'='1", "'x'' OR ''1''=''1'"),
        ("a\\'b", "'a\\''b'"),
        (42, "'42'"),
        (0, "'0'"),
        ("", "''"),
    ],
)
def test_values_are_escaped(value, literal_sql):
    assert literal(value) == literal_sql
    assert rows_filter_sql([row("equal", value=value)], POSTGRES) == f'"name" = {literal_sql}'


def test_quotes_in_names_are_doubled():
    assert rows_filter_sql([row("equal", 'we"ird', value="O'Brien")], POSTGRES) == "\"we\"\"ird\" = 'O''Brien'"
    assert rows_filter_sql([row("is_null", "a`b")], MYSQLISH) == "`a``b` IS NULL"
    assert POSTGRES.quote_name('"; DROP TABLE x; --') == '"""; DROP TABLE x; --"'


@pytest.mark.parametrize("op", ["equal", "like", "regexp", "ilike", "greater_than"])
@pytest.mark.parametrize("filter_extra", [{}, {"value": None}])
def test_missing_value_is_invalid_params(op, filter_extra):
    with pytest.raises(InvalidParamsError, match="needs a 'value'") as info:
        rows_filter_sql([row(op, **filter_extra)], POSTGRES)
    assert info.value.code == "invalid_params"
    assert repr(op) in info.value.reason


@pytest.mark.parametrize("field", [None, "", 5])
def test_missing_field_is_invalid_params(field):
    with pytest.raises(InvalidParamsError, match="needs a 'field'"):
        rows_filter_sql([{"type": "equal", "field": field, "value": "x"}], POSTGRES)


@pytest.mark.parametrize("op", ["between", "in", "EQUAL", None, "is null"])
def test_unknown_operator_is_invalid_params(op):
    with pytest.raises(InvalidParamsError, match="unknown row filter operator"):
        rows_filter_sql([row(op, value="x")], POSTGRES)


def test_non_native_ilike_dialect():
    assert rows_filter_sql([row("ilike", value="Ab%")], MYSQLISH) == "LOWER(`name`) LIKE LOWER('Ab%')"
    assert rows_filter_sql([row("not_ilike", value="Ab%")], MYSQLISH) == "LOWER(`name`) NOT LIKE LOWER('Ab%')"
    assert rows_filter_sql([row("like", value="Ab%")], MYSQLISH) == "`name` LIKE 'Ab%'"
    assert rows_filter_sql([row("regexp", value="^a")], MYSQLISH) == "`name` RLIKE '^a'"
    assert rows_filter_sql([row("equal", value="O'Brien")], MYSQLISH) == "`name` = 'O''Brien'"


# --- filters_of ----------------------------------------------------------------------------------------------------


def test_filters_of_collects_matching_kind_in_order():
    transformations = [
        {"type": "dataframe_rows_filter", "filters": [row("is_null", "a")]},
        {"type": "dataframe_columns_filter", "filters": [{"type": "include", "field": "a"}]},
        {"type": "dataframe_rows_filter", "filters": [row("is_null", "b")]},
    ]
    assert filters_of(transformations, "dataframe_rows_filter") == [row("is_null", "a"), row("is_null", "b")]
    assert filters_of(transformations, "dataframe_columns_filter") == [{"type": "include", "field": "a"}]
    assert filters_of(transformations, "sql") == []


@pytest.mark.parametrize("filters", [None, "x", {"type": "equal"}])
def test_filters_of_requires_a_list(filters):
    transformations = [{"type": "dataframe_rows_filter"} if filters is None else
                       {"type": "dataframe_rows_filter", "filters": filters}]
    with pytest.raises(InvalidParamsError, match="needs a 'filters' list"):
        filters_of(transformations, "dataframe_rows_filter")


# --- column filters ------------------------------------------------------------------------------------------------


def test_columns_include_rename_cast():
    filters = [
        {"type": "include", "field": "id"},
        {"type": "rename", "field": "Name", "to": "full name"},
        {"type": "cast", "field": "amount", "as_type": "DECIMAL(10, 2)"},
    ]
    assert columns_filter_sql(filters, POSTGRES) == [
        '"id"',
        '"Name" AS "full name"',
        'CAST("amount" AS DECIMAL(10, 2)) AS "amount"',
    ]


def test_columns_quote_names_per_dialect():
    filters = [{"type": "rename", "field": "a`b", "to": 'c"d`'}, {"type": "cast", "field": "x", "as_type": "CHAR"}]
    assert columns_filter_sql(filters, MYSQLISH) == ['`a``b` AS `c"d```', "CAST(`x` AS CHAR) AS `x`"]
    assert columns_filter_sql(filters[:1], POSTGRES) == ['"a`b" AS "c""d`"']


def test_no_column_filters_is_none():
    assert columns_filter_sql([], POSTGRES) is None


@pytest.mark.parametrize(
    ("filter_", "message"),
    [
        ({"type": "rename", "field": "a"}, "needs 'to'"),
        ({"type": "rename", "field": "a", "to": ""}, "needs 'to'"),
        ({"type": "cast", "field": "a"}, "needs 'as_type'"),
        ({"type": "cast", "field": "a", "as_type": 5}, "needs 'as_type'"),
        ({"type": "include"}, "needs a 'field'"),
        ({"type": "exclude", "field": "a"}, "unknown column filter 'exclude'"),
    ],
)
def test_bad_column_filters(filter_, message):
    with pytest.raises(InvalidParamsError, match=message):
        columns_filter_sql([filter_], POSTGRES)


# --- sql step ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM source",
        "  select id from source where id > 1",
        "WITH t AS (SELECT 1) SELECT * FROM t",
        "\n\twith x as (select * from source) select * from x",
    ],
)
def test_sql_query_accepts_select_and_with(query):
    assert sql_query_of([{"type": "dataframe_rows_filter", "filters": []}, {"type": "sql", "query": query}]) == query


@pytest.mark.parametrize(
    "query",
    ["DROP TABLE source", "INSERT INTO t SELECT 1", "  delete from source", "", "   ", None, 42, "-- SELECT\nDROP x"],
)
def test_sql_query_rejects_anything_else(query):
    with pytest.raises(InvalidParamsError, match="must start with SELECT or WITH"):
        sql_query_of([{"type": "sql", "query": query}])


def test_sql_query_absent_is_none():
    assert sql_query_of([]) is None
    assert sql_query_of([{"type": "dataframe_rows_filter", "filters": []}]) is None


def test_sql_query_first_one_wins():
    assert sql_query_of([{"type": "sql", "query": "SELECT 1"}, {"type": "sql", "query": "DROP x"}]) == "SELECT 1"


def test_unknown_operator_without_value_is_still_invalid_params():
    # The message currently talks about the missing value; the error type is what callers rely on.
    with pytest.raises(InvalidParamsError):
        rows_filter_sql([row("between")], POSTGRES)


def test_regexp_template_dialect():
    funcy = Dialect(quote='"', regexp="REGEXP_LIKE", native_ilike=False, regexp_template="REGEXP_LIKE({name}, {value})")
    assert rows_filter_sql([row("regexp", value="^a{2}'")], funcy) == "REGEXP_LIKE(\"name\", '^a{2}''')"
    # the template only shapes regexp; every other operator is unchanged
    assert rows_filter_sql([row("like", value="a%")], funcy) == "\"name\" LIKE 'a%'"
    assert rows_filter_sql([row("ilike", value="a%")], funcy) == "LOWER(\"name\") LIKE LOWER('a%')"


def test_backslashes_are_escaped_only_where_the_dialect_says_so():
    escaping = Dialect(quote="`", regexp="RLIKE", native_ilike=False, backslash_escapes_in_literals=True)
    assert escaping.literal("a\\'b") == "'a\\\\''b'"
    assert escaping.quote_name("a\\b") == "`a\\b`"
    assert POSTGRES.literal("a\\'b") == literal("a\\'b") == "'a\\''b'"
    assert MYSQLISH.literal(7) == "'7'"
