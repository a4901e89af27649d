"""What user-written SQL may do inside Spark: read the view ``source``, nothing of the node.

A transfer author writes the ``sql`` transformation (and the values of filters that become Spark SQL). Spark SQL
can reach far beyond the data: ``reflect('java.lang.System', 'getenv', ...)`` calls any static Java method,
``text.`/etc/hostname``` reads any file the JVM can, ``TRANSFORM ... USING 'sh'`` runs a program, and a
catalog table is not the run's data. So the query is parsed by Spark's own parser and the unresolved plan is
walked before anything runs (analysis itself may read files to infer a schema). It is an allowlist: plan nodes of
plain queries, relations named ``source`` or a CTE of the query, built-in functions except the reflection family,
and a few generator table functions. Anything else fails the run with a reason naming the construct.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from syncmaster_ray.errors import ForbiddenSqlError, InvalidParamsError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SOURCE_VIEW = "source"
# Plan nodes Spark's parser builds for SELECT queries (joins, set operations, windows, CTEs, sampling, hints).
QUERY_NODES = frozenset({
    "Aggregate", "Deduplicate", "Distinct", "Except", "Filter", "Generate", "GlobalLimit", "Intersect", "Join",
    "LateralJoin", "LocalLimit", "LocalRelation", "Offset", "OneRowRelation", "Pivot", "Project",
    "RebalancePartitions", "Repartition", "RepartitionByExpression", "Sample", "Sort", "SubqueryAlias", "Tail",
    "Union", "Unpivot", "UnresolvedHaving", "UnresolvedHint", "UnresolvedInlineTable", "UnresolvedRelation",
    "UnresolvedSubqueryColumnAliases", "UnresolvedTVFAliases", "UnresolvedTableValuedFunction", "UnresolvedWith",
    "WithWindowDefinition",
})
REFLECTION_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect"})
TABLE_FUNCTIONS = frozenset({
    "range", "explode", "explode_outer", "inline", "inline_outer", "posexplode", "posexplode_outer", "json_tuple",
    "stack",
})


def run_sql_step(spark: SparkSession, df: DataFrame, query: str) -> DataFrame:
    """The ``sql`` transformation: ``query`` over ``df`` as the view ``source``, once it passed the check."""
    check_query(spark, query)
    df.createOrReplaceTempView(SOURCE_VIEW)
    return spark.sql(query)


def check_query(spark: SparkSession, query: str) -> None:
    """Raise ``ForbiddenSqlError`` unless ``query`` is a plain query of the view ``source``."""
    _Walker(spark, "the sql transformation").check(_parse(spark, query, "parsePlan", "the sql transformation"))


def check_expression(spark: SparkSession, expression: str, what: str) -> None:
    """The same for one expression run as Spark SQL (a row filter, a column filter): no subquery of any table."""
    _Walker(spark, what).check(_parse(spark, expression, "parseExpression", what))


def check_filters(spark: SparkSession, where: str | None, columns: list[str] | None) -> None:
    """The row and column filters, where they run as Spark SQL."""
    if where:
        check_expression(spark, where, "the rows filter")
    for column in columns or ():
        check_expression(spark, column, "the columns filter")


def _parse(spark: SparkSession, text: str, method: str, what: str) -> Any:
    from pyspark.errors import ParseException

    try:
        return getattr(spark._jsparkSession.sessionState().sqlParser(), method)(text)
    except ParseException as exc:
        message = (str(exc).strip().splitlines() or ["no message"])[0][:300]
        raise InvalidParamsError(f"{what} is not valid Spark SQL: {message}") from None


class _Walker:
    """One pass over a parsed tree: plan nodes, their expressions, subqueries and CTE definitions."""

    def __init__(self, spark: SparkSession, what: str) -> None:
        jvm = self.jvm = spark._jvm
        self.what = what
        self.query_plan_class = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.plans.QueryPlan")
        builtin = jvm.org.apache.spark.sql.catalyst.analysis.FunctionRegistry.functionSet().toSeq()
        self.builtin_functions = {builtin.apply(i).funcName().lower() for i in range(builtin.size())}
        self.cte_names: set[str] = set()
        self.refused: list[str] = []

    def check(self, root: Any) -> None:
        nodes = list(_tree(root, self.jvm))
        for node in nodes:  # CTE names first: a CTE may be read before the walk reaches its definition
            if node.getClass().getSimpleName() == "UnresolvedWith":
                relations = node.cteRelations()
                self.cte_names |= {relations.apply(i)._1().lower() for i in range(relations.size())}
        for node in nodes:
            self._check_node(node)
        if self.refused:
            raise ForbiddenSqlError(f"{self.what} may not use {'; '.join(dict.fromkeys(self.refused))}")

    def _check_node(self, node: Any) -> None:
        kind = node.getClass().getSimpleName()
        if kind == "UnresolvedRelation":
            self._check_relation(_strings(node.multipartIdentifier()))
        elif kind == "UnresolvedTableValuedFunction":
            name = ".".join(_strings(node.name())).lower()
            if name not in TABLE_FUNCTIONS:
                self._refuse(f"the table function {name}()")
        elif kind in ("UnresolvedFunction", "UnresolvedGenerator"):
            self._check_function(node)
        elif kind == "ScriptTransformation":
            self._refuse("TRANSFORM ... USING (it runs a program on the node)")
        elif kind.endswith("Reflection"):
            self._refuse("Java reflection")
        elif self.query_plan_class.isInstance(node) and kind not in QUERY_NODES:
            self._refuse(f"{kind} (only a SELECT query of the view {SOURCE_VIEW!r} may run)")

    def _check_relation(self, parts: list[str]) -> None:
        name = ".".join(parts)
        if len(parts) == 1 and (name.lower() == SOURCE_VIEW or name.lower() in self.cte_names):
            return
        if any("/" in part or ":" in part for part in parts[1:]):
            self._refuse(f"reading a path ({name})")
        else:
            self._refuse(f"the relation {name} (only the view {SOURCE_VIEW!r} and the query's own CTEs may be read)")

    def _check_function(self, node: Any) -> None:
        kind = node.getClass().getSimpleName()
        if kind == "UnresolvedFunction":
            parts = _strings(node.nameParts())
        else:  # UnresolvedGenerator: a FunctionIdentifier
            identifier = node.name()
            parts = [*([identifier.database().get()] if identifier.database().isDefined() else []),
                     identifier.funcName()]
        name = ".".join(parts).lower()
        if name in REFLECTION_FUNCTIONS:
            self._refuse(f"the function {name}() (Java reflection)")
        elif len(parts) != 1 or name not in self.builtin_functions:
            self._refuse(f"the function {name}() (only Spark's built-in functions may be called)")

    def _refuse(self, construct: str) -> None:
        self.refused.append(construct)


def _tree(root: Any, jvm: Any) -> Iterator[Any]:
    """Every node under ``root`` once: children, inner children (a plan's subqueries, a CTE's definitions), a
    plan node's expressions and a subquery expression's plan."""
    query_plan = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.plans.QueryPlan")
    subquery = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.expressions.SubqueryExpression")
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        identity = jvm.java.lang.System.identityHashCode(node)
        if identity in seen:
            continue
        seen.add(identity)
        yield node
        stack += _seq(node.children()) + _seq(node.innerChildren())
        if query_plan.isInstance(node):
            stack += _seq(node.expressions())
        elif subquery.isInstance(node):
            stack.append(node.plan())


def _seq(scala_seq: Any) -> list[Any]:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


def _strings(scala_seq: Any) -> list[str]:
    return [str(part) for part in _seq(scala_seq)]
