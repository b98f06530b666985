"""What a rule file's problems look like: a stable code and a location, rendered with a caret.

Codes are stable across versions and documented in docs/rules.md: E1xx file and schema, E2xx
expression safety, E3xx tests, W1xx lint warnings.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

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
