"""A rule as written in its YAML file (pydantic), and the loaded pack (:class:`RuleSet`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from iccaudit.core import schema
from iccaudit.detect.rules.compiler import CompiledRule
from iccaudit.detect.rules.errors import RuleError

ID_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"


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
    severity_if_model : str, optional
        The severity of a hit on a line whose category only the learned fallback guessed
        (``recognised_by = 'model'``, view ``items``): a rule that should be high only on
        wording the lexicon recognised says ``medium`` or ``low`` here.
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
    severity_if_model: schema.Severity | None = None
    tests: list[RuleCase] = Field(default_factory=list)

    _path: str = PrivateAttr(default="")
    _compiled: CompiledRule | None = PrivateAttr(default=None)

    @property
    def path(self) -> str:
        """The file the rule was loaded from."""
        return self._path

    @property
    def version(self) -> str:
        """A short hash of what decides the rule's hits and money: the view, ``where``,
        ``applies``, ``excess``, ``score`` (as their parsed SQL, so layout and comments do not
        count; thresholds are literals inside them) and ``implicates``. Titles, description,
        messages, evidence, severity and tests are left out: rewording a rule keeps the
        verdicts on its findings, changing its logic does not."""
        import hashlib
        import json

        c = self.compiled
        logic = {
            "view": self.view,
            **{name: None if tree is None else tree.sql(dialect="duckdb")
               for name, tree in (("where", c.where), ("applies", c.applies),
                                  ("excess", c.excess), ("score", c.score))},
            "implicates": self.implicates,
        }
        text = json.dumps(logic, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    @property
    def compiled(self) -> CompiledRule:
        """The checked expressions (set by the loader)."""
        if self._compiled is None:
            raise RuntimeError(f"rule {self.id} was not compiled; load it with load_ruleset")
        return self._compiled


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
