"""Rule files: the pydantic model, safe YAML loading with locations, and the whole-pack loader.

A rule is one YAML file. Loading never stops at the first problem: every file of the pack is
read, and every error is collected with its file, line and column, so that a rule author fixes
them all in one go::

    rules/cooling/per-kw.yaml:7:12: E103 unknown column 'unit_prce' (did you mean ...?)

YAML is read with ``SafeLoader`` only; tags (``!!python/object``), anchors and aliases are
refused outright (aliases are the billion-laughs vector and rules never need them) and files
over :data:`MAX_FILE_BYTES` are not read at all. Error codes are stable and documented in
docs/rules.md: E1xx file and schema, E2xx expression safety, E3xx tests, W1xx lint warnings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from iccaudit.core import schema
from iccaudit.detect.rules import compiler
from iccaudit.detect.rules.compiler import CompiledRule, ExpressionError

MAX_FILE_BYTES = 256_000
ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
RULE_SUFFIXES = (".yaml", ".yml")
#: Files and folders of a pack that are not rules.
NON_RULE_DIRS = {"reference"}
NON_RULE_FILES = {"models.yaml", "models.yml"}
#: line_items columns a test row may not set: the engine assigns them.
_ENGINE_COLUMNS = {"run_id", "item_id"}


#: Every error and warning code, stable across versions (docs/rules.md explains each).
CODES: dict[str, str] = {
    "E100": "YAML syntax error",
    "E101": "file cannot be read, is not UTF-8, or is over the size limit",
    "E102": "YAML tag, anchor or alias (refused in rule files)",
    "E103": "unknown column (in an expression, evidence, a message or implicates)",
    "E104": "the file is not one YAML mapping (empty, a list, several documents)",
    "E105": "missing required field",
    "E106": "unknown field",
    "E107": "wrong type or value of a field",
    "E108": "id or test name not kebab-case",
    "E109": "rule id used by another file of the pack",
    "E110": "unknown mechanism",
    "E111": "unknown severity",
    "E112": "unknown view",
    "E113": "bad message template or format spec",
    "E114": "bad or repeated evidence name",
    "E115": "key repeated in a mapping",
    "E116": "view has neither item_id nor tender_id and no implicates",
    "E200": "SQL syntax error or empty expression",
    "E201": "a statement or several statements instead of one expression",
    "E202": "construct not on the allow-list",
    "E203": "function not on the allow-list",
    "E204": "subquery or table reference",
    "E205": "qualified column name",
    "E206": "star (*)",
    "E207": "window function",
    "E208": "aggregate function",
    "E209": "parameter ($1, ?)",
    "E210": "expression over 10 kB",
    "E211": "expression nested too deep",
    "E212": "IN with something other than literals",
    "E213": "cast to a type that is not allowed",
    "E301": "test row names a column that line_items does not have",
    "E302": "test row value of the wrong type",
    "E303": "test name repeated",
    "E304": "test expected a hit, the rule did not fire",
    "E305": "test could not run (sandbox or rule failed at run time)",
    "E306": "test expected a miss, the rule fired",
    "W101": "missing hit or miss test",
    "W103": "message placeholder not in evidence",
    "W104": "file name differs from the rule id",
}


# --------------------------------------------------------------------------------------------
# Errors


@dataclass
class RuleError:
    """One problem in a rule file, with its location (1-based line and column).

    ``str()`` gives ``path:line:col: CODE message``; :meth:`render` adds the source line and a
    caret under the column, like Falco.
    """

    path: str
    line: int
    col: int
    code: str
    message: str
    rule_id: str | None = None
    source_line: str | None = None

    @property
    def is_warning(self) -> bool:
        return self.code.startswith("W")

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"

    def render(self) -> str:
        """The one-line error, then the source line with a caret under the column."""
        text = str(self)
        if self.source_line is None:
            return text
        line = self.source_line.rstrip("\n").expandtabs(1)
        prefix = line[: max(self.col - 1, 0)]
        # CJK characters take two terminal cells: keep the caret under the right character.
        pad = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in prefix)
        return f"{text}\n    {line}\n    {' ' * pad}^"


# --------------------------------------------------------------------------------------------
# The rule model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Strict):
    """Message templates; ``{column}`` or ``{column:,.0f}`` placeholders."""

    zh: str
    en: str


class RuleCase(_Strict):
    """An in-file test: line_items rows (``row`` or ``rows``) and whether the rule must fire."""

    name: str = Field(pattern=ID_PATTERN)
    expect: Literal["hit", "miss"]
    row: dict[str, Any] | None = None
    rows: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _one_of_row_rows(self) -> RuleCase:
        if (self.row is None) == (self.rows is None):
            raise ValueError("give exactly one of 'row' (one line) or 'rows' (several lines)")
        if self.rows is not None and not self.rows:
            raise ValueError("'rows' is empty")
        return self

    def line_rows(self) -> list[dict[str, Any]]:
        return [self.row] if self.row is not None else list(self.rows or [])


class Rule(_Strict):
    """One detection rule, as written in its YAML file.

    Parameters
    ----------
    id : str
        kebab-case, unique across the pack; the finding's ``detector``.
    title, title_zh : str
        Short English and Chinese titles.
    mechanism : str
        One of :data:`iccaudit.core.schema.MECHANISMS`.
    severity : str
        One of :data:`iccaudit.core.schema.SEVERITIES`.
    status : {'experimental', 'stable', 'deprecated'}
        Deprecated rules are loaded and validated but not run.
    view : str
        The view the rule reads (a key of the data dictionary), default ``items``.
    where : str
        One boolean SQL expression over the view's columns; a row where it is true is a hit.
    applies : str, optional
        Rows the rule can judge (default: rows where ``where`` is not NULL).
    excess : str, optional
        SQL expression of the estimated overpayment in CNY (``est_excess_cny``).
    score : str, optional
        SQL expression in [0, 1] (clamped); default 1.0.
    evidence : list
        Column names, or ``{alias: expression}`` entries, stored as a JSON object.
    implicates : str or list of str, optional
        For views that are not one row per line: the column holding the implicated item
        id(s), or a list of item id columns (``[head_item_id, module_item_id]``). A list gives
        one finding row per line, all sharing one ``group_id``.
    expected_fire_rate : float, optional
        The share of applicable rows on which the rule may fire before the run warns
        (default 0.2). A rule that flags a whole class of lines by design (e.g. every
        export-controlled card bought after the ban) states a higher share here.
    tests : list of RuleCase
        In-file tests run by ``iccaudit rules test`` and by pytest.
    """

    id: str = Field(pattern=ID_PATTERN, max_length=80)
    title: str = Field(min_length=1, max_length=200)
    title_zh: str = Field(min_length=1, max_length=200)
    mechanism: schema.Mechanism
    severity: schema.Severity
    status: Literal["experimental", "stable", "deprecated"] = "experimental"
    description: str = Field(min_length=1)
    rationale: str = Field(min_length=1)
    references: list[str] = Field(default_factory=list)
    view: str = "items"
    where: str
    applies: str | None = None
    excess: str | None = None
    score: str | None = None
    message: Message
    evidence: list[str | dict[str, str]] = Field(default_factory=list)
    implicates: str | list[str] | None = None
    expected_fire_rate: float | None = Field(None, gt=0, le=1)
    tests: list[RuleCase] = Field(default_factory=list)

    _path: str = PrivateAttr(default="")
    _compiled: CompiledRule | None = PrivateAttr(default=None)

    @property
    def path(self) -> str:
        """The file the rule was loaded from."""
        return self._path

    @property
    def compiled(self) -> CompiledRule:
        """The checked expressions (set by the loader)."""
        if self._compiled is None:
            raise RuntimeError(f"rule {self.id} was not compiled; load it with load_ruleset")
        return self._compiled

    def evidence_items(self) -> list[tuple[str, str]]:
        """``[(alias, expression text), ...]`` in the file's order."""
        out: list[tuple[str, str]] = []
        for entry in self.evidence:
            if isinstance(entry, str):
                out.append((entry, entry))
            else:
                out.extend(entry.items())
        return out


@dataclass
class RuleSet:
    """The loaded pack: valid rules, errors (with locations) and lint warnings."""

    rules: list[Rule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    warnings: list[RuleError] = field(default_factory=list)
    invalid_ids: set[str] = field(default_factory=set)
    files: int = 0

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


# --------------------------------------------------------------------------------------------
# Safe YAML with locations


@dataclass
class _Doc:
    path: str
    text: str
    data: Any
    # key path -> (key line, key col, value node); 0-based marks
    marks: dict[tuple, tuple[int, int, Any]]

    def line_text(self, line: int) -> str | None:
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else None

    def at(self, path: tuple, *, value: bool = False) -> tuple[int, int]:
        """1-based location of a key (or its value), falling back to the nearest parent."""
        while path and path not in self.marks:
            path = path[:-1]
        if not path:
            return 1, 1
        kline, kcol, node = self.marks[path]
        if value and node is not None:
            return node.start_mark.line + 1, node.start_mark.column + 1
        return kline + 1, kcol + 1

    def expr_at(self, path: tuple, offset: int, token: str | None) -> tuple[int, int]:
        """Location of a character offset inside an expression value."""
        if path not in self.marks or self.marks[path][2] is None:
            return self.at(path)
        node = self.marks[path][2]
        expr = node.value if isinstance(node.value, str) else ""
        start, end = node.start_mark, node.end_mark
        raw = self.text[start.index:end.index]
        offset = max(0, min(offset, len(expr)))
        if node.style in (None, "'", '"') and "\n" not in raw:
            col = start.column + (1 if node.style else 0) + offset
            return start.line + 1, col + 1
        if node.style == "|":
            before = expr[:offset]
            eline = before.count("\n")
            ecol = offset - (before.rfind("\n") + 1)
            content = self.text.splitlines()[start.line + 1:]
            body = next((c for c in content if c.strip()), "")
            indent = len(body) - len(body.lstrip(" "))
            return start.line + 2 + eline, indent + ecol + 1
        # folded or multi-line flow scalars: find the token's occurrence in the raw text
        if token:
            k = expr[:offset].count(token)
            pos = -1
            for _ in range(k + 1):
                pos = raw.find(token, pos + 1)
                if pos < 0:
                    break
            if pos >= 0:
                absolute = start.index + pos
                line = self.text.count("\n", 0, absolute)
                col = absolute - (self.text.rfind("\n", 0, absolute) + 1)
                return line + 1, col + 1
        return start.line + 1, start.column + 1


def _walk_marks(node: Any, path: tuple, marks: dict, dupes: list) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                dupes.append((key_node.start_mark, key))
            seen.add(key)
            marks[path + (key,)] = (key_node.start_mark.line, key_node.start_mark.column,
                                    value_node)
            _walk_marks(value_node, path + (key,), marks, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[path + (i,)] = (item.start_mark.line, item.start_mark.column, item)
            _walk_marks(item, path + (i,), marks, dupes)


#: Nesting of YAML lists and mappings a rule file may use (a rule needs about five).
MAX_YAML_DEPTH = 32


#: libyaml's parser when PyYAML was built with it (several times faster), else PyYAML's own;
#: both report the same marks, and only safe types are ever constructed.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path, shown: str) -> tuple[_Doc | None, list[RuleError]]:
    def err(code: str, message: str, line: int = 1, col: int = 1, text: str | None = None
            ) -> tuple[None, list[RuleError]]:
        src = None
        if text is not None:
            lines = text.splitlines()
            src = lines[line - 1] if 0 < line <= len(lines) else None
        return None, [RuleError(shown, line, col, code, message, source_line=src)]

    try:
        size = path.stat().st_size
    except OSError as exc:
        return err("E101", f"cannot read the file: {exc.strerror or exc}")
    if size > MAX_FILE_BYTES:
        return err("E101", f"file is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,} "
                           "for one rule")
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        return err("E101", f"cannot read the file: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        return err("E101", f"not UTF-8 (byte {exc.start})")

    # First pass over the event stream: refuse tags, anchors and aliases before anything is
    # constructed, so neither object construction nor alias expansion can happen.
    depth = 0  # the composer below recurses per level: refuse deep nesting here, iteratively
    try:
        for event in yaml.parse(text, Loader=_SafeLoader):
            mark = event.start_mark
            where = (mark.line + 1, mark.column + 1, text)
            depth += isinstance(event, yaml.CollectionStartEvent)
            depth -= isinstance(event, yaml.CollectionEndEvent)
            if depth > MAX_YAML_DEPTH:
                return err("E100", f"YAML nested deeper than {MAX_YAML_DEPTH} levels", *where)
            if isinstance(event, yaml.AliasEvent):
                return err("E102", f"YAML aliases (*{event.anchor}) are not allowed in rules",
                           *where)
            if getattr(event, "anchor", None):
                return err("E102", f"YAML anchors (&{event.anchor}) are not allowed in rules",
                           *where)
            tag = getattr(event, "tag", None)
            if tag and not isinstance(event, yaml.DocumentStartEvent):
                shown_tag = tag.replace("tag:yaml.org,2002:", "!!")
                return err("E102", f"YAML tags ({shown_tag}) are not allowed in rules", *where)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is None:
            return err("E100", f"YAML syntax error: {problem}")
        return err("E100", f"YAML syntax error: {problem}", mark.line + 1, mark.column + 1, text)

    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return err("E104", "the file is empty; a rule file holds one YAML mapping")
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return err("E104", f"one rule per file: {problem}", line, col, text)
    finally:
        loader.dispose()
    if not isinstance(node, yaml.MappingNode):
        return err("E104", "a rule file holds one YAML mapping (id: ..., title: ...)", 1, 1,
                   text)
    marks: dict[tuple, tuple[int, int, Any]] = {}
    dupes: list = []
    _walk_marks(node, (), marks, dupes)
    doc = _Doc(shown, text, data, marks)
    if dupes:
        mark, key = dupes[0]
        return err("E115", f"key {key!r} appears twice", mark.line + 1, mark.column + 1, text)
    return doc, []


# --------------------------------------------------------------------------------------------
# The dictionary


def default_dictionary() -> Mapping[str, Mapping[str, Any]]:
    """The views' data dictionary (``iccaudit.enrich.dictionary.DICTIONARY``)."""
    from iccaudit.enrich.dictionary import DICTIONARY

    return DICTIONARY


def _col_type(col: Any) -> str:
    return str(getattr(col, "type", col if isinstance(col, str) else "")).upper()


_SAMPLE_VALUES: dict[str, Any] = {"VARCHAR": "x", "BOOLEAN": True, "DATE": None}


def _sample_for(type_name: str) -> Any:
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


# --------------------------------------------------------------------------------------------
# Loading one file


_UNION_TAGS = {"str", "dict[str,str]", "list[str]"}
_PYDANTIC_CODES = {
    "missing": "E105",
    "extra_forbidden": "E106",
}


def _pydantic_errors(doc: _Doc, exc: ValidationError) -> list[RuleError]:
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


def _load_file(path: Path, shown: str, dictionary: Mapping[str, Mapping[str, Any]]
               ) -> tuple[Rule | None, str | None, list[RuleError], list[RuleError]]:
    """Load, validate and compile one rule file; returns (rule, id, errors, warnings)."""
    doc, errors = _read_yaml(path, shown)
    if doc is None:
        return None, None, errors, []
    raw_id = doc.data.get("id") if isinstance(doc.data, dict) else None
    rule_id = raw_id if isinstance(raw_id, str) else None
    try:
        rule = Rule.model_validate(doc.data)
    except ValidationError as exc:
        return None, rule_id, _pydantic_errors(doc, exc), []

    errors = []
    warnings = []

    def add(code: str, message: str, loc: tuple[int, int]) -> None:
        e = RuleError(shown, loc[0], loc[1], code, message, rule.id, doc.line_text(loc[0]))
        (warnings if e.is_warning else errors).append(e)

    if rule.view not in dictionary:
        add("E112", f"unknown view {rule.view!r}" + compiler.suggest(rule.view, list(dictionary))
            + f"; one of: {', '.join(dictionary)}", doc.at(("view",), value=True))
        return None, rule.id, errors, warnings
    columns = dictionary[rule.view]

    def check(key: tuple, text: str, what: str):
        try:
            return compiler.check_expression(text, columns, what=what)
        except ExpressionError as exc:
            for issue in exc.issues:
                add(issue.code, issue.message, doc.expr_at(key, issue.offset, issue.token))
            return None

    where = check(("where",), rule.where, "where")
    applies = check(("applies",), rule.applies, "applies") if rule.applies else None
    excess = check(("excess",), rule.excess, "excess") if rule.excess else None
    score = check(("score",), rule.score, "score") if rule.score else None

    evidence: dict[str, Any] = {}
    for i, entry in enumerate(rule.evidence):
        items = [(entry, entry)] if isinstance(entry, str) else list(entry.items())
        for alias, text in items:
            key = (("evidence", i) if isinstance(entry, str) else ("evidence", i, alias))
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", alias):
                add("E114", f"evidence name {alias!r} must be a plain identifier",
                    doc.at(key))
                continue
            if alias in evidence:
                add("E114", f"evidence name {alias!r} appears twice", doc.at(key))
                continue
            if isinstance(entry, str) and alias not in columns:
                add("E103", f"unknown column {alias!r} in evidence"
                    + compiler.suggest(alias, list(columns)) + compiler.describe_non_ascii(alias),
                    doc.at(key, value=True))
                continue
            tree = check(key, text, f"evidence {alias}")
            if tree is not None:
                evidence[alias] = tree

    # messages: placeholders must be view columns or evidence names
    fields: dict[str, Any] = {}
    special = {"est_excess_cny", "score"}
    for lang in ("zh", "en"):
        template = getattr(rule.message, lang)
        loc = doc.at(("message", lang), value=True)
        try:
            holders = compiler.placeholders(template)
        except ValueError as exc:
            add("E113", f"message.{lang}: {exc}", loc)
            continue
        for name, spec in holders:
            if name in evidence:
                fields[name] = evidence[name]
            elif name in columns:
                fields[name] = compiler.exp.column(name)
            elif name not in special:
                add("E103", f"message.{lang}: unknown placeholder {{{name}}}"
                    + compiler.suggest(name, list(columns) + list(evidence))
                    + compiler.describe_non_ascii(name), loc)
                continue
            sample = (_sample_for(_col_type(columns[name])) if name in columns and name not in
                      evidence else 1.5)
            try:
                format(sample, spec)
            except (ValueError, TypeError) as exc:
                add("E113", f"message.{lang}: format {{{name}:{spec}}} does not fit a "
                    f"{_col_type(columns.get(name)) or 'value'} ({exc})", loc)
            if name not in evidence and name not in special and rule.evidence:
                add("W103", f"message.{lang}: {{{name}}} is not in evidence; auditors see it "
                    "in the message only", loc)

    # how findings point at lines
    key_mode: str = "item"
    key_column: str | list[str] | None = None
    if rule.implicates is not None:
        names = [rule.implicates] if isinstance(rule.implicates, str) else rule.implicates
        for i, name in enumerate(names):
            if name not in columns:
                key = ("implicates",) if isinstance(rule.implicates, str) else ("implicates", i)
                add("E103", f"unknown column {name!r} in implicates"
                    + compiler.suggest(name, list(columns)) + compiler.describe_non_ascii(name),
                    doc.at(key, value=True))
        if isinstance(rule.implicates, list):
            key_mode, key_column = "columns", list(rule.implicates)
            if not rule.implicates:
                add("E107", "implicates: give at least one column", doc.at(("implicates",)))
        elif rule.implicates in columns:
            typ = _col_type(columns[rule.implicates])
            key_mode, key_column = ("list" if typ.endswith("[]") else "column"), rule.implicates
    elif "item_id" not in columns:
        if "tender_id" in columns:
            key_mode = "tender"
        else:
            add("E116", f"view {rule.view!r} has neither item_id nor tender_id; name the column "
                "of implicated item ids with 'implicates:'", doc.at(("view",), value=True))

    # test rows are line_items rows
    line_fields = [c for c in schema.LineItem.model_fields if c not in _ENGINE_COLUMNS]
    for i, case in enumerate(rule.tests):
        key = ("tests", i, "row") if case.row is not None else ("tests", i, "rows")
        for j, row in enumerate(case.line_rows()):
            rkey = key if case.row is not None else key + (j,)
            bad = [c for c in row if c not in line_fields]
            for c in bad:
                why = ("is set by the engine" if c in _ENGINE_COLUMNS else
                       "is not a line_items column" + compiler.suggest(str(c), line_fields))
                add("E301", f"test {case.name!r}: {c!r} {why}", doc.at(rkey + (c,)))
            if bad:
                continue
            try:
                schema.LineItem.model_validate(
                    {"run_id": "t", "item_id": 1, **default_row(1), **row})
            except ValidationError as exc:
                for e in exc.errors():
                    col = e["loc"][0] if e["loc"] else "?"
                    add("E302", f"test {case.name!r}: {col}: {e['msg']}",
                        doc.at(rkey + (col,), value=True))

    # lint
    expects = {c.expect for c in rule.tests}
    tests_loc = doc.at(("tests",)) if ("tests",) in doc.marks else (1, 1)
    if not rule.tests:
        add("W101", "no tests; add at least one 'expect: hit' and one 'expect: miss'", (1, 1))
    else:
        for missing in sorted({"hit", "miss"} - expects):
            add("W101", f"no '{missing}' test; a rule needs both sides tested", tests_loc)
    names = [c.name for c in rule.tests]
    for i, n in enumerate(names):
        if n in names[:i]:
            add("E303", f"test name {n!r} appears twice", doc.at(("tests", i, "name"), value=True))
    stem = Path(shown).stem
    if stem != rule.id:
        add("W104", f"file name {stem!r} differs from the rule id {rule.id!r}",
            doc.at(("id",), value=True))

    if errors or where is None:
        return None, rule.id, errors, warnings
    rule._path = shown
    rule._compiled = CompiledRule(
        rule_id=rule.id, view=rule.view, where=where, applies=applies, excess=excess,
        score=score, evidence=evidence, fields=fields, key_mode=key_mode, key_column=key_column,
    )
    return rule, rule.id, [], warnings


def default_row(i: int) -> dict[str, Any]:
    """A valid line_items row (without run_id/item_id) that test rows override."""
    return {
        "source_file": "rule-test.csv",
        "source_sheet": None,
        "source_row": i + 1,
        "tender_id": "T-TEST",
        "project_name": "规则测试项目",
        "line_no": str(i),
        "item_name": "测试货物",
        "brand": None,
        "model": None,
        "spec": None,
        "quantity": 1.0,
        "unit": "台",
        "unit_price_cny": 1000.0,
        "total_cny": None,
        "supplier": None,
        "date": None,
        "condition": None,
        "serial_numbers": [],
        "capacity_kw": None,
        "manufacture_date": None,
        "price_includes_vat": None,
        "claimed_pflops": None,
        "raw": "{}",
    }


# --------------------------------------------------------------------------------------------
# The pack


def _shown(path: Path) -> str:
    """The path as a rule author wants to see it: relative to the working directory if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """Rule files under the given files or folders (skipping reference/ and models.yaml)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if (f.suffix in RULE_SUFFIXES and f.is_file() and f.name not in NON_RULE_FILES
                        and not NON_RULE_DIRS.intersection(rel[:-1])
                        and not any(part.startswith(".") for part in rel)):
                    out.append(f)
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def load_ruleset(paths: Iterable[Path],
                 dictionary: Mapping[str, Mapping[str, Any]] | None = None) -> RuleSet:
    """Load every rule file under ``paths`` (files or folders), collecting all errors.

    Rules with errors are left out of ``.rules`` and their ids are in ``.invalid_ids``;
    duplicate ids are errors on every file but the first.
    """
    if dictionary is None:
        dictionary = default_dictionary()
    result = RuleSet()
    first: dict[str, str] = {}
    for path in rule_files(paths):
        shown = _shown(path)
        result.files += 1
        if not path.exists():
            result.errors.append(RuleError(shown, 1, 1, "E101", "no such file or folder"))
            continue
        rule, rule_id, errors, warnings = _load_file(path, shown, dictionary)
        result.warnings.extend(warnings)
        if rule_id is not None and rule_id in first:
            line, col, src = _id_location(path)
            result.errors.append(RuleError(
                shown, line, col, "E109",
                f"rule id {rule_id!r} is already used by {first[rule_id]}", rule_id, src))
            result.invalid_ids.add(rule_id)
            continue
        if rule_id is not None:
            first[rule_id] = shown
        if errors or rule is None:
            result.errors.extend(errors)
            result.invalid_ids.add(rule_id or Path(shown).stem)
            continue
        result.rules.append(rule)
    # a duplicated id invalidates the first copy too: which one would run is not obvious
    if any(e.code == "E109" for e in result.errors):
        dup = {e.rule_id for e in result.errors if e.code == "E109"}
        result.rules = [r for r in result.rules if r.id not in dup]
    return result


def _id_location(path: Path) -> tuple[int, int, str | None]:
    """Where the ``id:`` value is (the file was already read safely once)."""
    doc, _ = _read_yaml(path, str(path))
    if doc is None:
        return 1, 1, None
    line, col = doc.at(("id",), value=True)
    return line, col, doc.line_text(line)


def _is_pack(folder: Path) -> bool:
    """A whole pack: it has sub-folders that hold rule files."""
    return any(
        sub.is_dir() and sub.name not in NON_RULE_DIRS and rule_files([sub])
        for sub in folder.iterdir()
    ) if folder.is_dir() else False


def resolve_rule_dirs(bundled: Path, user_dirs: list[Path]) -> list[Path]:
    """The rule folders a run uses: the bundled pack adjusted by ``--rules`` folders.

    - no user folders: the bundled pack's mechanism folders;
    - a user folder that is a whole pack (has sub-folders with rules) replaces the bundled pack;
    - a user folder named like a bundled sub-folder (``my/cooling`` vs ``rules/cooling``)
      replaces that sub-folder;
    - any other user folder (or file) is added.
    """
    bundled = Path(bundled)
    dirs: list[Path] = []
    if bundled.is_dir():
        dirs = [d for d in sorted(bundled.iterdir())
                if d.is_dir() and d.name not in NON_RULE_DIRS and not d.name.startswith(".")]
    for user in map(Path, user_dirs):
        if _is_pack(user):
            dirs = [d for d in sorted(user.iterdir())
                    if d.is_dir() and d.name not in NON_RULE_DIRS and not d.name.startswith(".")]
            loose = [f for f in user.iterdir() if f.suffix in RULE_SUFFIXES
                     and f.name not in NON_RULE_FILES]
            dirs.extend(sorted(loose))
            continue
        same = [d for d in dirs if d.name == user.name and d.parent.resolve() == bundled.resolve()]
        if same:
            dirs = [user if d == same[0] else d for d in dirs]
        else:
            dirs.append(user)
    return dirs
