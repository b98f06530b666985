"""The enrich SQL files (``enrich/sql/*.sql``) and the three placeholders they may hold.

A file is plain DuckDB SQL, one statement, with its leading ``--`` comment lines as its
documentation (dropped when rendered, so the statement starts with ``CREATE``). Three
placeholders, each recognised outside string literals and comments only:

``$name``
    A parameter: a constant of the reference book (``rules/reference/params.yaml``) or of the
    recognition vocabulary (:mod:`iccaudit.enrich.vocab`). It becomes a SQL literal, made by
    :func:`literal` from a typed value (a number, a string, a date, a tuple of strings): user
    or reference text never enters the SQL as anything but a quoted literal.
``{name}``
    A slot: SQL the caller makes from the schema (column lists, the FROM item of the run's
    lines). Only :mod:`iccaudit.enrich.views` fills slots, never with data.
``@name(arg, ...)``
    A macro: the file ``sql/macros/name.sql``, whose first line declares its arguments
    (``-- @name(a, b)``) and whose body names them as slots (``{a}``). Each argument is
    rendered first (it may hold placeholders itself), then stands for the slot verbatim.

Rendering is one pass: what a placeholder puts in is not scanned again, so a regular
expression holding ``$`` or ``{2}`` stays as it is. A placeholder without a value is an error.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources

from iccaudit.core.duck import sql_string

#: A value a ``$name`` parameter may take.
SqlValue = bool | int | float | str | dt.date | tuple[str, ...]

#: String literals and comments (kept as they are), then the three placeholders.
_TOKEN = re.compile(r"""
    (?P<skip>'(?:[^']|'')*'|--[^\n]*)
  | @(?P<macro>[a-z_][a-z0-9_]*)\(
  | \{(?P<slot>[a-z_][a-z0-9_]*)\}
  | \$(?P<param>[a-z_][a-z0-9_]*)
""", re.VERBOSE)
_SIGNATURE = re.compile(r"--\s*@(?P<name>[a-z_][a-z0-9_]*)\((?P<args>[^)]*)\)")


class SqlTemplateError(ValueError):
    """A SQL file names a placeholder nobody gave a value, or a macro call is malformed."""


def literal(value: SqlValue) -> str:
    """``value`` as a DuckDB literal: strings quoted (quotes doubled, backslashes literal, as
    standard SQL reads them), dates as ``DATE '…'``, a tuple of strings as a comma-separated
    list (for ``IN (…)``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise SqlTemplateError(f"{value!r} has no SQL literal")
        return repr(value)
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return sql_string(value)
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return ", ".join(literal(v) for v in value)
    raise SqlTemplateError(f"{value!r} ({type(value).__name__}) has no SQL literal")


@cache
def source(name: str) -> str:
    """The text of ``sql/<name>.sql`` (``name`` may be ``macros/<macro>``) as shipped."""
    path = resources.files("iccaudit.enrich").joinpath("sql", *f"{name}.sql".split("/"))
    return path.read_text(encoding="utf-8")


def _body(text: str) -> str:
    """The statement of a file: its leading comment lines (its documentation) dropped."""
    lines = text.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines)


@cache
def _macro(name: str) -> tuple[tuple[str, ...], str]:
    """A macro's arguments (from its ``-- @name(a, b)`` line) and its body."""
    text = source(f"macros/{name}")
    found = _SIGNATURE.match(text.lstrip())
    if found is None or found["name"] != name:
        raise SqlTemplateError(f"sql/macros/{name}.sql: first line must be -- @{name}(args)")
    args = tuple(a.strip() for a in found["args"].split(",") if a.strip())
    return args, _body(text)


def _call_args(text: str, start: int) -> tuple[list[str], int]:
    """The arguments of a macro call whose ``(`` ends just before ``start``, split at the
    top-level commas, and the position after its ``)``."""
    args, depth, i, begin = [], 0, start, start
    while i < len(text):
        char = text[i]
        if char == "'":
            end = text.find("'", i + 1)
            while end != -1 and text.startswith("''", end):
                end = text.find("'", end + 2)
            if end == -1:
                break
            i = end
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif char == ")" or (char == "," and not depth):
            args.append(text[begin:i].strip())
            begin = i + 1
            if char == ")":
                return args, i + 1
        i += 1
    raise SqlTemplateError(f"unclosed macro call: {text[start - 20:start + 40]!r}")


def expand(text: str, params: Mapping[str, SqlValue], slots: Mapping[str, str]) -> str:
    """``text`` with every placeholder replaced, in one pass (see the module)."""
    out, pos = [], 0
    while (token := _TOKEN.search(text, pos)) is not None:
        out.append(text[pos:token.start()])
        pos = token.end()
        if token["skip"] is not None:
            out.append(token["skip"])
        elif token["macro"] is not None:
            names, body = _macro(token["macro"])
            args, pos = _call_args(text, token.end())
            if len(args) != len(names):
                raise SqlTemplateError(f"@{token['macro']} takes {len(names)} argument(s) "
                                       f"({', '.join(names)}), got {len(args)}")
            values = {n: expand(a, params, slots) for n, a in zip(names, args, strict=True)}
            out.append(expand(body, params, values))
        elif token["slot"] is not None:
            if token["slot"] not in slots:
                raise SqlTemplateError(f"no value for slot {{{token['slot']}}}")
            out.append(slots[token["slot"]])
        else:
            if token["param"] not in params:
                raise SqlTemplateError(f"no value for parameter ${token['param']}")
            out.append(literal(params[token["param"]]))
    out.append(text[pos:])
    return "".join(out)


def render(name: str, params: Mapping[str, SqlValue],
           slots: Mapping[str, str] | None = None) -> str:
    """The statement of ``sql/<name>.sql`` with its placeholders filled."""
    return expand(_body(source(name)), params, slots or {})
