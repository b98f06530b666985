"""Rule validation: one small validator per concern, every problem of a file collected.

:func:`check_file` reads a rule file (:mod:`.yamldoc`) and runs every validator of
:data:`VALIDATORS` over it. Each validator looks at the fields it owns in the file's data as
written, so a file with a missing field, an unknown column in ``where`` and a bad message
template reports all three at once (the structure is checked by pydantic, the rest does not
wait for it). A validator adds issues with a stable code (:data:`errors.CODES`) and a location;
the validators that check expressions also keep what they compiled, and a file without errors
becomes a :class:`~iccaudit.detect.rules.model.Rule` with its :class:`CompiledRule`.

In the manner of pySigma's rule validators: to add a check, write a class with ``codes`` and
``check(file)``, and list it in :data:`VALIDATORS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from iccaudit.core import schema
from iccaudit.detect.rules import compiler
from iccaudit.detect.rules.compiler import CompiledRule, ExpressionError
from iccaudit.detect.rules.errors import RuleError
from iccaudit.detect.rules.model import Message, Rule, RuleCase
from iccaudit.detect.rules.testrows import ENGINE_COLUMNS, default_row
from iccaudit.detect.rules.yamldoc import YamlDoc, read_yaml

#: A view's columns: name -> its dictionary entry (``.type``) or a type name.
Columns = Mapping[str, Any]


@dataclass
class RuleFile:
    """One rule file under validation: its data as written, the issues found so far, and what
    the validators compiled."""

    doc: YamlDoc
    dictionary: Mapping[str, Columns]
    errors: list[RuleError] = field(default_factory=list)
    warnings: list[RuleError] = field(default_factory=list)
    rule: Rule | None = None  # set when the structure is valid
    columns: Columns | None = None  # the view's, once the view is known
    expressions: dict[str, Any] = field(default_factory=dict)  # where, applies, ... -> tree
    evidence: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    key_mode: str = "item"
    key_column: str | list[str] | None = None

    @property
    def data(self) -> dict[str, Any]:
        return self.doc.data if isinstance(self.doc.data, dict) else {}

    @property
    def rule_id(self) -> str | None:
        raw = self.data.get("id")
        return raw if isinstance(raw, str) else None

    def text(self, key: str) -> str | None:
        """A field's value when it is a string (pydantic reports it otherwise)."""
        value = self.data.get(key)
        return value if isinstance(value, str) else None

    def add(self, code: str, message: str, loc: tuple[int, int]) -> None:
        issue = RuleError(self.doc.path, loc[0], loc[1], code, message, self.rule_id,
                          self.doc.line_text(loc[0]))
        (self.warnings if issue.is_warning else self.errors).append(issue)

    def check_expression(self, key: tuple[str | int, ...], text: str, what: str) -> Any:
        """The expression's checked tree, or None with its issues added."""
        assert self.columns is not None
        try:
            return compiler.check_expression(text, self.columns, what=what)
        except ExpressionError as exc:
            for issue in exc.issues:
                self.add(issue.code, issue.message,
                         self.doc.expr_at(key, issue.offset, issue.token))
            return None


class Validator(Protocol):
    """One concern of a rule file: the codes it may report and the check itself."""

    @property
    def codes(self) -> tuple[str, ...]: ...

    def check(self, f: RuleFile) -> None: ...


class Structure:
    """Fields present, known, of the right type (pydantic): E105-E108, E110, E111."""

    codes = ("E105", "E106", "E107", "E108", "E110", "E111")

    def check(self, f: RuleFile) -> None:
        try:
            f.rule = Rule.model_validate(f.doc.data)
        except ValidationError as exc:
            f.errors.extend(pydantic_errors(f.doc, exc))


class View:
    """The view the rule reads exists: E112."""

    codes = ("E112",)

    def check(self, f: RuleFile) -> None:
        view = f.data.get("view", "items")
        if not isinstance(view, str):
            return  # Structure says so
        if view in f.dictionary:
            f.columns = f.dictionary[view]
            return
        f.add("E112", f"unknown view {view!r}" + compiler.suggest(view, list(f.dictionary))
              + f"; one of: {', '.join(f.dictionary)}", f.doc.at(("view",), value=True))


class Expressions:
    """``where``, ``applies``, ``excess`` and ``score`` are safe expressions over the view's
    columns: E103, E2xx."""

    codes = ("E103", "E200", "E201", "E202", "E203", "E204", "E205", "E206", "E207", "E208",
             "E209", "E210", "E211", "E212", "E213")
    keys = ("where", "applies", "excess", "score")

    def check(self, f: RuleFile) -> None:
        if f.columns is None:
            return
        for key in self.keys:
            text = f.text(key)
            if text is not None:
                f.expressions[key] = f.check_expression((key,), text, key)


class Evidence:
    """Evidence entries are columns or ``{name: expression}`` with plain, unique names: E114,
    E103, E2xx."""

    codes = ("E114", "E103")

    def check(self, f: RuleFile) -> None:
        entries = f.data.get("evidence")
        if f.columns is None or not isinstance(entries, list):
            return
        for i, entry in enumerate(entries):
            if isinstance(entry, str):
                items = [(entry, entry)]
            elif isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values()):
                items = [(str(k), v) for k, v in entry.items()]
            else:
                continue  # Structure says so
            for alias, text in items:
                key = ("evidence", i) if isinstance(entry, str) else ("evidence", i, alias)
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", alias):
                    f.add("E114", f"evidence name {alias!r} must be a plain identifier",
                          f.doc.at(key))
                    continue
                if alias in f.evidence:
                    f.add("E114", f"evidence name {alias!r} appears twice", f.doc.at(key))
                    continue
                if isinstance(entry, str) and alias not in f.columns:
                    f.add("E103", f"unknown column {alias!r} in evidence"
                          + compiler.suggest(alias, list(f.columns))
                          + compiler.describe_non_ascii(alias), f.doc.at(key, value=True))
                    continue
                tree = f.check_expression(key, text, f"evidence {alias}")
                if tree is not None:
                    f.evidence[alias] = tree


class Messages:
    """Message placeholders are columns or evidence names with formats that fit: E103, E113,
    W103."""

    codes = ("E103", "E113", "W103")
    special = frozenset({"est_excess_cny", "score"})

    def check(self, f: RuleFile) -> None:
        message = f.data.get("message")
        if f.columns is None or not isinstance(message, dict):
            return
        columns = f.columns
        has_evidence = bool(f.data.get("evidence"))
        for lang in ("zh", "en"):
            template = message.get(lang)
            if not isinstance(template, str):
                continue  # Structure says so
            loc = f.doc.at(("message", lang), value=True)
            try:
                holders = compiler.placeholders(template)
            except ValueError as exc:
                f.add("E113", f"message.{lang}: {exc}", loc)
                continue
            for name, spec in holders:
                if name in f.evidence:
                    f.fields[name] = f.evidence[name]
                elif name in columns:
                    f.fields[name] = compiler.exp.column(name)
                elif name not in self.special:
                    f.add("E103", f"message.{lang}: unknown placeholder {{{name}}}"
                          + compiler.suggest(name, list(columns) + list(f.evidence))
                          + compiler.describe_non_ascii(name), loc)
                    continue
                sample = (_sample_for(_col_type(columns[name]))
                          if name in columns and name not in f.evidence else 1.5)
                try:
                    format(sample, spec)
                except (ValueError, TypeError) as exc:
                    f.add("E113", f"message.{lang}: format {{{name}:{spec}}} does not fit a "
                          f"{_col_type(columns.get(name)) or 'value'} ({exc})", loc)
                if name not in f.evidence and name not in self.special and has_evidence:
                    f.add("W103", f"message.{lang}: {{{name}}} is not in evidence; auditors "
                          "see it in the message only", loc)


class Implicates:
    """Findings can point at lines: ``implicates`` names columns of the view, or the view has
    ``item_id`` or ``tender_id``: E103, E107, E116."""

    codes = ("E103", "E107", "E116")

    def check(self, f: RuleFile) -> None:
        columns = f.columns
        if columns is None:
            return
        implicates = f.data.get("implicates")
        if implicates is None:
            if "item_id" in columns:
                return
            if "tender_id" in columns:
                f.key_mode = "tender"
                return
            f.add("E116", f"view {f.data.get('view', 'items')!r} has neither item_id nor "
                  "tender_id; name the column of implicated item ids with 'implicates:'",
                  f.doc.at(("view",), value=True))
            return
        if not isinstance(implicates, str | list) or (
                isinstance(implicates, list) and not all(isinstance(n, str) for n in implicates)):
            return  # Structure says so
        names = [implicates] if isinstance(implicates, str) else implicates
        for i, name in enumerate(names):
            if name not in columns:
                key = ("implicates",) if isinstance(implicates, str) else ("implicates", i)
                f.add("E103", f"unknown column {name!r} in implicates"
                      + compiler.suggest(name, list(columns)) + compiler.describe_non_ascii(name),
                      f.doc.at(key, value=True))
        if isinstance(implicates, list):
            f.key_mode, f.key_column = "columns", list(implicates)
            if not implicates:
                f.add("E107", "implicates: give at least one column", f.doc.at(("implicates",)))
        elif implicates in columns:
            typ = _col_type(columns[implicates])
            f.key_mode, f.key_column = ("list" if typ.endswith("[]") else "column"), implicates


class TestRows:
    """Test rows are valid ``line_items`` rows: E301, E302."""

    codes = ("E301", "E302")

    def check(self, f: RuleFile) -> None:
        line_fields = [c for c in schema.LineItem.model_fields if c not in ENGINE_COLUMNS]
        for i, case in enumerate(_tests(f)):
            name = case.get("name")
            single = case.get("row")
            rows = [single] if isinstance(single, dict) else case.get("rows")
            if not isinstance(rows, list):
                continue  # Structure says so
            key: tuple[str | int, ...] = ("tests", i, "row" if single is not None else "rows")
            for j, row in enumerate(rows):
                if not isinstance(row, dict):
                    continue
                rkey = key if single is not None else key + (j,)
                bad = [c for c in row if c not in line_fields]
                for c in bad:
                    why = ("is set by the engine" if c in ENGINE_COLUMNS else
                           "is not a line_items column" + compiler.suggest(str(c), line_fields))
                    f.add("E301", f"test {name!r}: {c!r} {why}", f.doc.at(rkey + (c,)))
                if bad:
                    continue
                try:
                    schema.LineItem.model_validate(
                        {"run_id": "t", "item_id": 1, **default_row(1), **row})
                except ValidationError as exc:
                    for e in exc.errors():
                        col = e["loc"][0] if e["loc"] else "?"
                        f.add("E302", f"test {name!r}: {col}: {e['msg']}",
                              f.doc.at(rkey + (col,), value=True))


class TestNames:
    """Test names are unique: E303."""

    codes = ("E303",)

    def check(self, f: RuleFile) -> None:
        names = [c.get("name") for c in _tests(f)]
        for i, n in enumerate(names):
            if isinstance(n, str) and n in names[:i]:
                f.add("E303", f"test name {n!r} appears twice",
                      f.doc.at(("tests", i, "name"), value=True))


class TestCoverage:
    """A rule is tested on both sides: W101."""

    codes = ("W101",)

    def check(self, f: RuleFile) -> None:
        tests = f.data.get("tests")
        if tests is not None and not isinstance(tests, list):
            return  # Structure says so
        if not tests:
            f.add("W101", "no tests; add at least one 'expect: hit' and one 'expect: miss'",
                  (1, 1))
            return
        expects = {c.get("expect") for c in _tests(f)}
        loc = f.doc.at(("tests",)) if ("tests",) in f.doc.marks else (1, 1)
        for missing in sorted({"hit", "miss"} - expects):
            f.add("W101", f"no '{missing}' test; a rule needs both sides tested", loc)


class FileName:
    """The file is named after the rule: W104."""

    codes = ("W104",)

    def check(self, f: RuleFile) -> None:
        stem = Path(f.doc.path).stem
        if f.rule_id is not None and stem != f.rule_id:
            f.add("W104", f"file name {stem!r} differs from the rule id {f.rule_id!r}",
                  f.doc.at(("id",), value=True))


#: Every check a rule file goes through, in order (a later one may use what an earlier one
#: found: the view's columns, the compiled evidence).
VALIDATORS: tuple[Validator, ...] = (
    Structure(), View(), Expressions(), Evidence(), Messages(), Implicates(), TestRows(),
    TestNames(), TestCoverage(), FileName(),
)


def check_file(path: Path, shown: str, dictionary: Mapping[str, Columns]
               ) -> tuple[Rule | None, str | None, list[RuleError], list[RuleError]]:
    """Read, validate and compile one rule file: (rule or None, id, errors, warnings)."""
    doc, errors = read_yaml(path, shown)
    if doc is None:
        return None, None, errors, []
    f = RuleFile(doc, dictionary)
    for validator in VALIDATORS:
        validator.check(f)
    fields = dict(f.fields)
    if f.rule is not None and f.rule.severity_if_model is not None:
        if "recognised_by" not in dictionary.get(f.rule.view, {}):
            f.add("E103", f"severity_if_model needs the column recognised_by, which view "
                          f"{f.rule.view!r} does not have (use view items)",
                  f.doc.at(("severity_if_model",), value=True))
        else:
            fields["__recognised_by"] = compiler.exp.column("recognised_by")
    if f.errors or f.rule is None or f.expressions.get("where") is None:
        return None, f.rule_id, f.errors, f.warnings
    rule = f.rule
    rule._path = shown
    rule._compiled = CompiledRule(
        rule_id=rule.id, view=rule.view, where=f.expressions["where"],
        applies=f.expressions.get("applies"), excess=f.expressions.get("excess"),
        score=f.expressions.get("score"), evidence=f.evidence, fields=fields,
        key_mode=f.key_mode, key_column=f.key_column)
    return rule, rule.id, [], f.warnings


def _tests(f: RuleFile) -> list[dict[str, Any]]:
    tests = f.data.get("tests")
    return [t if isinstance(t, dict) else {} for t in tests] if isinstance(tests, list) else []


def _col_type(col: Any) -> str:
    return str(getattr(col, "type", col if isinstance(col, str) else "")).upper()


def _sample_for(type_name: str) -> object:
    """A value of a column type, to try a message's format spec on."""
    import datetime as dt

    if type_name.endswith("[]"):
        return ["x"]
    if type_name in ("DOUBLE", "FLOAT", "REAL") or type_name.startswith("DECIMAL"):
        return 1.5
    if type_name in ("BIGINT", "INTEGER", "INT", "SMALLINT", "HUGEINT", "UBIGINT"):
        return 1
    if type_name == "DATE":
        return dt.date(2024, 1, 2)
    if type_name.startswith("TIMESTAMP"):
        return dt.datetime(2024, 1, 2, 3, 4)
    if type_name == "BOOLEAN":
        return True
    return "x"


_UNION_TAGS = {"str", "dict[str,str]", "list[str]"}
_PYDANTIC_CODES = {
    "missing": "E105",
    "extra_forbidden": "E106",
}


def pydantic_errors(doc: YamlDoc, exc: ValidationError) -> list[RuleError]:
    """pydantic's errors as located rule errors, each location once, with stable codes."""
    out = []
    seen: set[tuple] = set()
    for e in exc.errors():
        # pydantic names the union member that failed (evidence.0.str, evidence.0.dict[...]):
        # drop those tags and report each location once, with the alternatives spelled out
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
        if loc in seen:
            continue
        seen.add(loc)
        etype = e["type"]
        name = ".".join(str(p) for p in loc) or "rule"
        code = _PYDANTIC_CODES.get(etype, "E107")
        if etype == "missing":
            line, col = doc.at(loc[:-1], value=True) if len(loc) > 1 else (1, 1)
            msg = f"missing required field {name!r}"
        elif etype == "extra_forbidden":
            line, col = doc.at(loc)
            fields = list(Rule.model_fields) if len(loc) == 1 else (
                list(Message.model_fields) if loc[0] == "message" else list(RuleCase.model_fields))
            msg = f"unknown field {loc[-1]!r}" + compiler.suggest(str(loc[-1]), fields)
        elif loc and loc[0] == "mechanism":
            line, col = doc.at(loc, value=True)
            code = "E110"
            msg = (f"unknown mechanism {e.get('input')!r}"
                   + compiler.suggest(str(e.get("input")), list(schema.MECHANISMS))
                   + f"; one of: {', '.join(schema.MECHANISMS)}")
        elif loc and loc[0] == "severity":
            line, col = doc.at(loc, value=True)
            code = "E111"
            msg = f"unknown severity {e.get('input')!r}; one of: {', '.join(schema.SEVERITIES)}"
        elif loc and loc[-1] == "id" or (loc[:1] == ("tests",) and loc[-1] == "name"):
            line, col = doc.at(loc, value=True)
            code = "E108"
            msg = f"{name} {e.get('input')!r} must be kebab-case (lower-case words joined by -)"
        elif loc[:1] == ("evidence",) and len(loc) == 2:
            line, col = doc.at(loc, value=True)
            msg = f"{name}: give a column name or {{name: expression}}"
        elif loc == ("message",):
            line, col = doc.at(loc, value=True)
            msg = "message: give {zh: ..., en: ...}"
        elif loc == ("implicates",):
            line, col = doc.at(loc, value=True)
            msg = "implicates: give a column name or a list of column names"
        else:
            line, col = doc.at(loc, value=True)
            msg = f"{name}: {e['msg'].removeprefix('Value error, ')}"
        out.append(RuleError(doc.path, line, col, code, msg, source_line=doc.line_text(line)))
    return out
