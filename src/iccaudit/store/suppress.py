"""Suppressions: a dismissal made a standing decision, stored as data (who, why, scope).

A suppression covers the findings of one detector: ``line`` the one finding line (its
fingerprint), ``supplier`` the detector's findings on one supplier's lines, ``rule`` the
detector's findings where a condition holds. The condition is a SQL expression written by a
person; it is parsed with sqlglot, checked against an allow-list of node types, functions and
columns (those of ``finding_lines``), and the view ``finding_suppressions`` is assembled as
trees from the stored rows, never by formatting text into SQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from iccaudit.core import schema

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


def add_suppression(con: duckdb.DuckDBPyConnection, fingerprint: str, scope: str, *,
                    reason: str, created_by: str, condition: str | None = None) -> int:
    """Turn the dismissal of ``fingerprint`` into a suppression; returns its id.

    The finding's current verdict must be ``dismissed``; the detector (and the supplier,
    for scope ``supplier``) are taken from its latest finding line. Runs in one transaction.
    """
    if scope not in ("line", "supplier", "rule"):
        raise SuppressionError(f"scope must be line, supplier or rule, not {scope!r}")
    if not reason.strip() or not created_by.strip():
        raise SuppressionError("say who suppresses and why (--by, --reason)")
    if scope == "rule":
        if not condition:
            raise SuppressionError("scope rule needs --condition (e.g. \"unit = '项'\")")
        parse_condition(condition)
    elif condition:
        raise SuppressionError("--condition only goes with --scope rule")
    found = con.execute("""
        SELECT fl.detector, fl.supplier, fl.verdict, r.run_id
        FROM finding_lines fl JOIN runs r USING (run_id)
        WHERE fl.fingerprint = ? ORDER BY r.started_at DESC LIMIT 1""", [fingerprint]).fetchall()
    if not found:
        raise SuppressionError(f"no finding with fingerprint {fingerprint}")
    detector, supplier, verdict, run_id = found[0]
    if verdict != "dismissed":
        raise SuppressionError(f"finding {fingerprint} is not dismissed (its verdict: "
                               f"{verdict or 'none'}); dismiss it first")
    if scope == "supplier" and not supplier:
        raise SuppressionError(f"finding {fingerprint} names no supplier")
    from iccaudit.store.views import create_views

    con.execute("BEGIN TRANSACTION")
    try:
        (next_id,) = con.execute(
            "SELECT coalesce(max(suppression_id), 0) + 1 FROM suppressions").fetchall()[0]
        row = {"run_id": run_id, "suppression_id": int(next_id), "scope": scope,
               "detector": detector, "fingerprint": fingerprint if scope == "line" else None,
               "supplier": supplier if scope == "supplier" else None,
               "condition": condition if scope == "rule" else None, "reason": reason.strip(),
               "created_by": created_by.strip(),
               "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
               "from_fingerprint": fingerprint}
        schema.Suppression.model_validate(row)
        cols = schema.columns("suppressions")
        con.execute(f"INSERT INTO suppressions ({', '.join(cols)}) VALUES "
                    f"({', '.join('?' for _ in cols)})", [row[c] for c in cols])
        create_views(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(next_id)
