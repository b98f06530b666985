"""Safety check and compilation of rule expressions, with sqlglot trees only.

A rule author writes small SQL *expressions* (``where``, ``applies``, ``excess``, ``score`` and
evidence aliases). Each one is parsed with sqlglot (dialect duckdb) and walked against an
ALLOW-list of node types: anything not listed (subqueries, table functions, window functions,
aggregates, parameters, statements, unknown functions ...) is refused with a stable code and
the offset of the offending token. The rule's query is then assembled as a tree
(``exp.select(...).from_(view).where(tree)``); user text is never formatted into SQL.

The sandbox connection is locked as well (no external access, configuration locked), so this
module is the first of two walls, not the only one.
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

DIALECT = "duckdb"
MAX_EXPRESSION_BYTES = 10_000
MAX_DEPTH = 100

#: Scalar functions a rule may call: SQL name -> sqlglot node class. Keep it short: every entry
#: is documented in docs/rules.md and must be harmless on any input.
ALLOWED_FUNCTIONS: dict[str, type[exp.Expr]] = {
    "regexp_matches": exp.RegexpLike,
    "lower": exp.Lower,
    "upper": exp.Upper,
    "length": exp.Length,  # also len(); works on strings and lists
    "abs": exp.Abs,
    "round": exp.Round,
    "floor": exp.Floor,
    "ceil": exp.Ceil,
    "least": exp.Least,
    "greatest": exp.Greatest,
    "coalesce": exp.Coalesce,
    "nullif": exp.Nullif,
    "ln": exp.Ln,
    "log10": exp.Log,
    "sqrt": exp.Sqrt,
    "date_diff": exp.DateDiff,
    "year": exp.Year,
    "contains": exp.Contains,
    "starts_with": exp.StartsWith,
    "ends_with": exp.EndsWith,
    "if": exp.If,
}
_FUNCTION_NAMES = {cls: name for name, cls in ALLOWED_FUNCTIONS.items()}

#: Operators and structure (not functions).
_ALLOWED_NODES: tuple[type[exp.Expr], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren,
    exp.And, exp.Or, exp.Not, exp.Xor,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Escape,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.DPipe,
    exp.Case, exp.Cast, exp.TryCast, exp.DataType, exp.Interval,
)

_CAST_TYPES = {
    exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT, exp.DataType.Type.DECIMAL,
    exp.DataType.Type.INT, exp.DataType.Type.BIGINT, exp.DataType.Type.SMALLINT,
    exp.DataType.Type.TINYINT, exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT,
    exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.BOOLEAN,
}

_STATEMENT_NAMES = (
    "Drop", "Create", "Insert", "Update", "Delete", "Merge", "Alter", "Attach", "Detach",
    "Copy", "Pragma", "Install", "Command", "Set", "Use", "Select", "Union", "Except",
    "Intersect", "Transaction", "Commit", "Rollback", "Describe", "Show", "Summarize", "Load",
    "Export", "Import", "Values", "Cache", "Uncache", "Refresh", "Kill",
)
_STATEMENTS = tuple(c for c in (getattr(exp, n, None) for n in _STATEMENT_NAMES) if c)
_SUBQUERIES = tuple(
    c for c in (getattr(exp, n, None) for n in ("Subquery", "Query", "Select", "Exists", "Table",
                                                 "From", "Join", "Lateral", "Unnest"))
    if c
)


@dataclass
class ExprIssue:
    """A problem in one expression; ``offset`` is a 0-based character offset into it."""

    code: str
    message: str
    offset: int = 0
    token: str | None = None


class ExpressionError(Exception):
    """Raised by :func:`check_expression` with every issue found in the expression."""

    def __init__(self, issues: list[ExprIssue]) -> None:
        super().__init__("; ".join(f"{i.code} {i.message}" for i in issues))
        self.issues = issues


def _offset(node: exp.Expr) -> tuple[int, str | None]:
    """Character offset and text of a node, from sqlglot's token metadata (or a descendant's)."""
    for n in node.walk():
        meta = getattr(n, "_meta", None) or {}
        if "start" in meta:
            text = n.name if isinstance(n, exp.Identifier | exp.Anonymous) else None
            return int(meta["start"]), text
    return 0, None


def describe_non_ascii(name: str) -> str:
    """Explain look-alike characters (Cyrillic і in 'unit_prіce'), empty when all ASCII."""
    for i, ch in enumerate(name):
        if ord(ch) > 127:
            uname = unicodedata.name(ch, "unknown")
            return f"; it contains the non-ASCII character {ch!r} (U+{ord(ch):04X} {uname}) " \
                   f"at position {i + 1}"
    return ""


def suggest(name: str, choices: list[str]) -> str:
    """' (did you mean x?)' or ''."""
    folded = unicodedata.normalize("NFKC", name).lower()
    match = difflib.get_close_matches(folded, choices, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _is_literal(node: exp.Expr) -> bool:
    if isinstance(node, exp.Neg):
        return _is_literal(node.this)
    if isinstance(node, exp.Cast | exp.Paren):
        return _is_literal(node.this)
    return isinstance(node, exp.Literal | exp.Null | exp.Boolean)


def _depth(node: exp.Expr, limit: int) -> int:
    """Tree depth, iteratively (a recursive walk could itself overflow on hostile input)."""
    best = 0
    stack: list[tuple[exp.Expr, int]] = [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        if best > limit:
            return best
        stack.extend((c, d + 1) for c in n.iter_expressions())
    return best


def _paren_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch == "(":
            depth += 1
            best = max(best, depth)
        elif ch == ")":
            depth -= 1
    return best


def check_expression(text: str, columns: Mapping[str, Any], *, what: str = "expression"
                     ) -> exp.Expr:
    """Parse ``text`` and check it against the allow-list and the view's ``columns``.

    Returns the checked tree with column names normalised to the dictionary's spelling.
    Raises :class:`ExpressionError` listing every issue found.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError([ExprIssue("E200", f"{what} is empty")])
    size = len(text.encode("utf-8"))
    if size > MAX_EXPRESSION_BYTES:
        raise ExpressionError([ExprIssue(
            "E210", f"{what} is {size:,} bytes, over the limit of {MAX_EXPRESSION_BYTES:,}")])
    if _paren_depth(text) > MAX_DEPTH:
        raise ExpressionError([ExprIssue(
            "E211", f"{what} nests parentheses deeper than {MAX_DEPTH}")])
    tree = _parse(text, what)
    if _depth(tree, MAX_DEPTH + 20) > MAX_DEPTH + 20:  # operators add levels beyond parentheses
        raise ExpressionError([ExprIssue("E211", f"{what} nests deeper than {MAX_DEPTH}")])
    issues = _walk(tree, columns)
    if issues:
        raise ExpressionError(issues)
    return tree


def _parse(text: str, what: str) -> exp.Expr:
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.CRITICAL)  # sqlglot warns when it falls back to a Command
    try:
        statements = sqlglot.parse(text, read=DIALECT)
    except sqlglot.errors.ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        offset = _line_col_to_offset(text, err.get("line"), err.get("col"), err.get("highlight"))
        desc = err.get("description") or str(exc).splitlines()[0]
        raise ExpressionError([ExprIssue("E200", f"SQL syntax error in {what}: {desc}",
                                         offset, err.get("highlight") or None)]) from None
    except sqlglot.errors.TokenError as exc:
        raise ExpressionError([ExprIssue(
            "E200", f"SQL syntax error in {what}: {str(exc).splitlines()[0]}")]) from None
    except RecursionError:
        raise ExpressionError([ExprIssue(
            "E211", f"{what} nests deeper than {MAX_DEPTH}")]) from None
    finally:
        log.setLevel(level)
    real = [s for s in statements if s is not None]
    if not real:
        raise ExpressionError([ExprIssue("E200", f"{what} is empty (only a comment?)")])
    if len(statements) != 1 or len(real) != 1:
        semi = text.find(";")
        raise ExpressionError([ExprIssue(
            "E201", f"{what} must be one expression, not several statements "
                    "(remove the ';')", max(semi, 0), ";")])
    tree = real[0]
    if isinstance(tree, _STATEMENTS):
        kind = tree.key.upper()
        raise ExpressionError([ExprIssue(
            "E201", f"{what} must be an expression, not a statement ({kind})", 0)])
    return tree


def _line_col_to_offset(text: str, line: int | None, col: int | None,
                        highlight: str | None) -> int:
    if not line or not col:
        return 0
    lines = text.split("\n")
    base = sum(len(x) + 1 for x in lines[: line - 1])
    # sqlglot's col points at the end of the highlighted token
    return max(0, base + col - len(highlight or " "))


def _walk(tree: exp.Expr, columns: Mapping[str, Any]) -> list[ExprIssue]:
    issues: list[ExprIssue] = []
    lower_cols = {c.lower(): c for c in columns}

    def bad(code: str, message: str, node: exp.Expr) -> None:
        off, tok = _offset(node)
        issues.append(ExprIssue(code, message, off, tok))

    stack = [tree]
    while stack:
        node = stack.pop()
        descend = True
        if isinstance(node, exp.Star):
            bad("E206", "'*' is not allowed; name the columns", node)
            descend = False
        elif isinstance(node, exp.Placeholder | exp.Parameter):
            bad("E209", "parameters ($1, ?) are not allowed", node)
        elif isinstance(node, exp.Window):
            bad("E207", "window functions (OVER ...) are not allowed; use a view column",
                node)
            descend = False
        elif isinstance(node, exp.AggFunc):
            bad("E208", f"aggregate function {node.sql_name().lower()}() is not allowed; a "
                        "rule looks at one row at a time (use a view column)", node)
            descend = False
        elif isinstance(node, _SUBQUERIES):
            bad("E204", "subqueries and tables are not allowed in a rule expression", node)
            descend = False
        elif isinstance(node, _STATEMENTS):
            bad("E201", f"statements ({node.key.upper()}) are not allowed", node)
            descend = False
        elif isinstance(node, exp.Column):
            if node.table or node.args.get("db") or node.args.get("catalog"):
                bad("E205", f"qualified name {node.sql(DIALECT)!r}: write the column "
                            "name alone", node)
                descend = False
            else:
                name = node.name
                ident = node.this
                quoted = isinstance(ident, exp.Identifier) and ident.quoted
                canon = name if name in columns else (None if quoted else
                                                      lower_cols.get(name.lower()))
                if canon is None:
                    bad("E103", f"unknown column {name!r}" + suggest(name, list(columns))
                        + describe_non_ascii(name), node)
                elif canon != name:
                    ident.set("this", canon)
                descend = False
        elif isinstance(node, exp.Anonymous):
            fname = node.name.lower()
            bad("E203", f"function {fname}() is not allowed" + suggest(fname,
                list(ALLOWED_FUNCTIONS)), node)
            descend = False
        elif isinstance(node, exp.Var):
            if not isinstance(node.parent, exp.DateDiff | exp.Interval):
                bad("E202", f"{node.sql(DIALECT)!r} is not allowed here", node)
        elif isinstance(node, exp.Func) and type(node) in _FUNCTION_NAMES:
            pass
        elif isinstance(node, exp.Func) and not isinstance(node, _ALLOWED_NODES):
            bad("E203", f"function {node.sql_name().lower()}() is not allowed", node)
            descend = False
        elif isinstance(node, exp.DataType):
            if node.this not in _CAST_TYPES or node.expressions:
                bad("E213", f"cast to {node.sql(DIALECT)} is not allowed (use DOUBLE, BIGINT, "
                            "VARCHAR, DATE, TIMESTAMP or BOOLEAN)", node)
            descend = False
        elif isinstance(node, exp.In):
            extra = [k for k in ("query", "unnest", "field") if node.args.get(k)]
            if extra or not all(_is_literal(e) for e in node.expressions):
                bad("E212", "IN takes a list of literals only, e.g. unit IN ('台', '套')", node)
        elif not isinstance(node, _ALLOWED_NODES):
            bad("E202", f"{type(node).__name__} ({node.sql(DIALECT)[:40]!r}) is not allowed "
                        "in a rule expression", node)
            descend = False
        if descend:
            stack.extend(node.iter_expressions())
    issues.sort(key=lambda i: i.offset)
    return issues


def placeholders(template: str) -> list[tuple[str, str]]:
    """``[(name, format_spec), ...]`` of a message template; raises ValueError if malformed."""
    import string

    out = []
    for _lit, name, spec, conv in string.Formatter().parse(template):
        if name is None:
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or conv:
            raise ValueError(f"placeholder {{{name}}} must be a plain column name")
        out.append((name, spec or ""))
    return out


# --------------------------------------------------------------------------------------------
# Compiled rules


@dataclass
class CompiledRule:
    """A rule's checked trees, ready to be assembled into queries.

    Parameters
    ----------
    rule_id, view : str
        The rule and the view it reads.
    where, applies, excess, score : sqlglot expressions (``applies``/``excess``/``score`` may
        be None).
    evidence : dict of alias -> expression, in the rule's order.
    fields : dict of placeholder name -> expression, for the messages.
    key_mode : ``item`` (view has item_id), ``list`` (a list column of item ids),
        ``columns`` (several item id columns), ``column`` (one item id column) or ``tender``
        (a tender-level finding without a line).
    key_column : the column(s) behind the ``list``/``columns``/``column`` modes.
    """

    rule_id: str
    view: str
    where: exp.Expr
    applies: exp.Expr | None = None
    excess: exp.Expr | None = None
    score: exp.Expr | None = None
    evidence: dict[str, exp.Expression] = field(default_factory=dict)
    fields: dict[str, exp.Expression] = field(default_factory=dict)
    key_mode: str = "item"
    key_column: str | list[str] | None = None

    def applicable(self) -> exp.Expr:
        """Rows the rule can judge: its ``applies`` expression, else ``where IS NOT NULL``."""
        if self.applies is not None:
            return exp.paren(self.applies.copy())
        return exp.Not(this=exp.Is(this=exp.paren(self.where.copy()), expression=exp.Null()))

    def condition(self) -> exp.Expr:
        """The hit condition: ``where``, within ``applies`` when the rule declares it."""
        if self.applies is not None:
            return exp.and_(exp.paren(self.applies.copy()), exp.paren(self.where.copy()))
        return exp.paren(self.where.copy())

    def key_expr(self) -> exp.Expr:
        if self.key_mode == "item":
            return exp.column("item_id")
        if self.key_mode in ("column", "list"):
            assert isinstance(self.key_column, str)
            return exp.column(self.key_column)
        if self.key_mode == "columns":
            assert isinstance(self.key_column, list)
            return exp.Array(expressions=[
                exp.cast(exp.column(c), "BIGINT") for c in self.key_column])
        return exp.Null()

    def group_key_expr(self) -> exp.Expr:
        """A text key of the implicated lines (or the tender): the base of the finding ids."""
        if self.key_mode in ("item", "column"):
            key = self.key_column if isinstance(self.key_column, str) else "item_id"
            return exp.cast(exp.column(key), "VARCHAR")
        if self.key_mode in ("list", "columns"):
            return exp.func("array_to_string", exp.func("list_sort", self.key_expr()),
                            exp.Literal.string(","))
        return exp.column("tender_id")

    def columns_used(self) -> set[str]:
        """The view columns the rule reads (to materialise only those, once per view)."""
        trees = [self.where, self.applies, self.excess, self.score,
                 *self.evidence.values(), *self.fields.values()]
        used = {c.name for t in trees if t is not None for c in t.find_all(exp.Column)}
        if self.key_mode == "item":
            used.add("item_id")
        elif self.key_mode == "tender":
            used.add("tender_id")
        elif isinstance(self.key_column, list):
            used.update(self.key_column)
        elif self.key_column:
            used.add(self.key_column)
        return used

    def hits_query(self, source: str | None = None) -> exp.Select:
        """One row per matching view row: key, group key, score, excess, evidence, fields.

        ``source`` reads a materialised copy of the view instead of the view itself.
        """
        # clamped to [0, 1]; a NULL score means "no graded opinion": the default 1.0
        score = (exp.func("coalesce", exp.func("least", exp.func(
            "greatest", exp.cast(exp.paren(self.score.copy()), "DOUBLE"), exp.Literal.number(0)),
            exp.Literal.number(1)), exp.Literal.number(1))
                 if self.score is not None else exp.cast(exp.Literal.number(1), "DOUBLE"))
        excess = (exp.cast(exp.paren(self.excess.copy()), "DOUBLE") if self.excess is not None
                  else exp.cast(exp.Null(), "DOUBLE"))
        evidence: exp.Expr
        if self.evidence:
            struct = exp.Struct(expressions=[
                exp.PropertyEQ(this=exp.to_identifier(alias, quoted=True), expression=e.copy())
                for alias, e in self.evidence.items()
            ])
            evidence = exp.cast(exp.func("to_json", struct), "VARCHAR")
        else:
            evidence = exp.Literal.string("{}")
        projections = [
            exp.alias_(self.key_expr(), "__key", quoted=True),
            exp.alias_(self.group_key_expr(), "__group", quoted=True),
            exp.alias_(score, "__score", quoted=True),
            exp.alias_(excess, "__excess", quoted=True),
            exp.alias_(evidence, "__evidence", quoted=True),
        ]
        tender = (exp.column("tender_id") if self.key_mode == "tender"
                  else exp.cast(exp.Null(), "VARCHAR"))
        projections.append(exp.alias_(tender, "__tender", quoted=True))
        for name, e in self.fields.items():
            projections.append(exp.alias_(e.copy(), f"f_{name}", quoted=True))
        # every part is a fresh tree (copied above or made here): the builders need not
        # copy them again (a deep copy of each rule's trees was a fifth of a re-run's rules)
        return exp.select(*projections, copy=False).from_(
            exp.to_table(source or self.view), copy=False).where(self.condition(), copy=False)

    def stats_projections(self, index: int) -> list[exp.Expr]:
        """count(applicable) and count(hits) for the batched per-view statistics query."""
        def count_if(cond: exp.Expr, alias: str) -> exp.Expr:
            return exp.alias_(
                exp.Filter(this=exp.Count(this=exp.Star()),
                           expression=exp.Where(this=cond)), alias, quoted=True)

        return [count_if(self.applicable(), f"a{index}"),
                count_if(self.condition(), f"h{index}")]

    def sql(self, pretty: bool = True) -> str:
        """The hits query as DuckDB SQL (for ``rules explain`` and the golden files)."""
        return self.hits_query().sql(DIALECT, pretty=pretty)
