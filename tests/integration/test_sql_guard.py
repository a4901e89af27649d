"""The SQL guard against Spark's real parser: plain queries of ``source`` pass, every way out of the data fails.

The end-to-end twin (a hostile transfer through the whole pipeline ends FAILED with nothing of the node in the
target) is in ``test_hostile_transfers.py``.
"""

from __future__ import annotations

import pytest

from syncmaster_ray.errors import ForbiddenSqlError, InvalidParamsError
from syncmaster_ray.handlers import sql_guard, transforms

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def spark(local_spark):
    return local_spark


ALLOWED = [
    "SELECT * FROM source",
    "select id, upper(name) AS n FROM Source WHERE id > 1 ORDER BY id DESC LIMIT 10",
    "WITH a AS (SELECT id FROM source WHERE id > 1), b AS (SELECT * FROM a) SELECT b.id, count(*) OVER "
    "(PARTITION BY id ORDER BY id) c FROM b JOIN source s ON b.id = s.id WHERE EXISTS (SELECT 1 FROM source) "
    "AND b.id IN (SELECT id FROM source) GROUP BY b.id HAVING count(*) > 0",
    "SELECT transform(array(1, 2), x -> x + 1) t, CAST(id AS string) s, CASE WHEN id > 1 THEN 'a' END c "
    "FROM source TABLESAMPLE (10 PERCENT) LATERAL VIEW explode(array(1)) e AS y",
    "SELECT id FROM source UNION ALL SELECT id FROM range(3) UNION SELECT col FROM explode(array(1))",
    "SELECT /*+ REPARTITION(2) */ DISTINCT id FROM source INTERSECT SELECT id FROM source",
    "SELECT * FROM VALUES (1, 'a'), (2, 'b') AS t(id, name)",
    "SELECT 'reflect(1)' AS text_not_code, `reflect` FROM (SELECT id AS reflect FROM source)",
]


@pytest.mark.parametrize("query", ALLOWED)
def test_plain_queries_of_the_source_pass(spark, query):
    sql_guard.check_query(spark, query)


REFUSED = [
    ("SELECT s.*, reflect('java.lang.System', 'getenv', 'SYNCMASTER__ENCRYPTION__SECRET_KEY') AS k1, "
     "(SELECT first(value) FROM text.`/etc/hostname`) AS k2 FROM source s", "reflect"),
    ("SELECT java_method('java.lang.System', 'getenv') FROM source", "java_method"),
    ("SELECT TRY_REFLECT('java.lang.System', 'getenv', 'HOME') FROM source", "try_reflect"),
    ("SELECT * FROM source WHERE id IN (SELECT length(value) FROM text.`/etc/hostname`)", "reading a path"),
    ("SELECT * FROM parquet.`file:/tmp`", "reading a path"),
    ("SELECT * FROM csv.`s3a://bucket/key`", "reading a path"),
    ("WITH k AS (SELECT * FROM json.`/etc/syncmaster-ray/env`) SELECT * FROM source, k", "reading a path"),
    ("SELECT TRANSFORM(id) USING 'cat /etc/hostname' AS (x) FROM source", "TRANSFORM"),
    ("SELECT * FROM default.other_table", "the relation default.other_table"),
    ("SELECT * FROM global_temp.source", "the relation global_temp.source"),
    ("SELECT * FROM source LATERAL VIEW reflect('java.lang.System', 'getenv', 'HOME') t AS x", "reflect"),
    ("SELECT my_udf(id) FROM source", "my_udf"),
    ("SELECT default.my_udf(id) FROM source", "default.my_udf"),
    ("SELECT * FROM sql_keywords()", "table function sql_keywords"),
    ("WITH x AS (SELECT * FROM source) INSERT INTO t SELECT * FROM x", "InsertIntoStatement"),
    ("SELECT (SELECT max(reflect('java.lang.Thread', 'currentThread')) FROM source) FROM source", "reflect"),
]


@pytest.mark.parametrize(("query", "named"), REFUSED, ids=[named for _, named in REFUSED])
def test_every_way_out_of_the_data_is_refused_by_name(spark, query, named):
    with pytest.raises(ForbiddenSqlError) as refused:
        sql_guard.check_query(spark, query)
    assert named in refused.value.reason
    assert refused.value.reason.startswith("the sql transformation may not use")


def test_sql_that_does_not_parse_is_a_clear_error(spark):
    with pytest.raises(InvalidParamsError) as refused:
        sql_guard.check_query(spark, "SELECT (id FROM source")
    assert "is not valid Spark SQL" in refused.value.reason


def test_filters_built_from_hostile_values_stay_plain_expressions(spark):
    where = transforms.rows_filter_sql([
        {"type": "equal", "field": "name", "value": "x' OR reflect('java.lang.System', 'getenv', 'K') = '"},
        {"type": "regexp", "field": "a`) OR reflect(1) --", "value": "\\' OR 1=1"},
    ], transforms.SPARK)
    columns = transforms.columns_filter_sql([{"type": "rename", "field": "id", "to": "x`, reflect(1) AS `y"}],
                                            transforms.SPARK)
    sql_guard.check_filters(spark, where, columns)
    with pytest.raises(ForbiddenSqlError) as refused:
        sql_guard.check_filters(spark, "id IN (SELECT 1 FROM text.`/etc/hostname`)", None)
    assert refused.value.reason.startswith("the rows filter may not use reading a path")
