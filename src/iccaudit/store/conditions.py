"""Conditions of suppressions, checked and assembled as sqlglot trees, and the SELECT of the
``finding_suppressions`` view built from the stored suppressions.

A condition is a SQL expression written by a person: parsed with sqlglot, checked against an
allow-list of node types, functions and columns (those of ``finding_lines``), and never
formatted into SQL as text.
"""

from __future__ import annotations

from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

#: Columns a condition may read: where a finding points and what its line says.
CONDITION_COLUMNS = frozenset({
    "tender_id", "source_file", "source_sheet", "source_row", "line_no", "mechanism",
    "severity", "score", "est_excess_cny", "supplier", "item_name", "brand", "model", "spec",
    "quantity", "unit", "unit_price_cny", "total_cny",
})
_ALLOWED = (exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren,
            exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
            exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Add, exp.Sub, exp.Mul,
            exp.Div, exp.Neg, exp.Lower, exp.Upper, exp.Coalesce, exp.Abs, exp.Length,
            exp.Tuple)


class SuppressionError(ValueError):
    """A suppression that cannot be stored (one line saying why)."""


def parse_condition(text: str) -> exp.Expr:
    """The condition as a checked sqlglot tree; :class:`SuppressionError` when it is not one
    boolean expression over the allowed columns, operators and functions."""
    try:
        trees = sqlglot.parse(text, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise SuppressionError(f"condition: not SQL: {str(exc).splitlines()[0]}") from None
    if len(trees) != 1 or trees[0] is None:
        raise SuppressionError("condition: give exactly one expression")
    tree = trees[0]
    for node in tree.walk():
        if not isinstance(node, _ALLOWED):
            raise SuppressionError(f"condition: {type(node).__name__} is not allowed "
                                   f"(comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, arithmetic, "
                                   f"lower/upper/coalesce/abs/length)")
        if isinstance(node, exp.Column) and (node.table
                                             or node.name not in CONDITION_COLUMNS):
            raise SuppressionError(f"condition: unknown column {node.sql()!r}; known: "
                                   f"{', '.join(sorted(CONDITION_COLUMNS))}")
    if isinstance(tree, (exp.Column, exp.Literal, exp.Add, exp.Sub, exp.Mul, exp.Div)):
        raise SuppressionError("condition: must be true or false for a finding (a comparison)")
    return tree


def scope_predicate(row: dict[str, Any]) -> exp.Expr:
    """Which findings a stored suppression covers, as a tree."""
    pred: exp.Expr = exp.EQ(this=exp.column("detector"),
                            expression=exp.Literal.string(row["detector"]))
    if row["scope"] == "line":
        other: exp.Expr = exp.EQ(this=exp.column("fingerprint"),
                                 expression=exp.Literal.string(row["fingerprint"]))
    elif row["scope"] == "supplier":
        other = exp.EQ(this=exp.column("supplier"),
                       expression=exp.Literal.string(row["supplier"]))
    else:
        other = exp.paren(parse_condition(row["condition"]))
    return exp.and_(pred, other)


def suppressions_view_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The SELECT of ``finding_suppressions``: one branch per stored suppression."""
    rows = con.execute("SELECT * FROM suppressions ORDER BY suppression_id").df()
    selects = []
    for record in rows.to_dict("records"):
        row = {str(k): v for k, v in record.items()}
        selects.append(
            exp.select("run_id", "finding_id",
                       exp.alias_(exp.Literal.number(int(row["suppression_id"])),
                                  "suppression_id"))
            .from_("finding_lines").where(scope_predicate(row)).sql(dialect="duckdb"))
    if not selects:
        return ("SELECT NULL::VARCHAR AS run_id, NULL::VARCHAR AS finding_id, "
                "NULL::BIGINT AS suppression_id WHERE false")
    return "\nUNION ALL\n".join(selects)
