"""pytest collects every rule file: one ``validate`` item, and one item per in-file test.

Test ids read ``rules/cooling/x.yaml::validate`` and ``rules/cooling/x.yaml::cold-plate-8x::hit``.
``rules/conftest.py`` re-exports :func:`pytest_collect_file`, so ``pytest`` (whose testpaths
include ``rules``) fails CI on a broken rule or a failing rule test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iccaudit.detect.rules.ruleset import NON_RULE_DIRS, NON_RULE_FILES, RULE_SUFFIXES


def is_rule_file(path: Path) -> bool:
    """A YAML file of a pack that is not reference data or the models' settings."""
    return (path.suffix in RULE_SUFFIXES and path.name not in NON_RULE_FILES
            and not NON_RULE_DIRS.intersection(path.parts[:-1]))


def pytest_collect_file(file_path: Path, parent: Any) -> Any:
    """The pytest hook: rule files become :class:`RuleFile` collectors."""
    if is_rule_file(Path(file_path)):
        return RuleFile.from_parent(parent, path=file_path)
    return None


class RuleProblem(Exception):
    """A rule error or a failed rule test (reported in one or a few lines)."""


class RuleFile(pytest.File):
    """One rule file: validated once, then one item per in-file test case."""

    def collect(self) -> Iterator[pytest.Item]:
        from iccaudit.detect.rules.ruleset import load_ruleset

        ruleset = load_ruleset([Path(self.path)])
        yield RuleItem.from_parent(self, name="validate", ruleset=ruleset, case=None)
        for rule in ruleset.rules:
            for case in rule.tests:
                yield RuleItem.from_parent(self, name=f"{case.name}::{case.expect}",
                                           ruleset=ruleset, case=(rule, case))


class RuleItem(pytest.Item):
    """Either the validation of the file, or one in-file test case."""

    def __init__(self, *, ruleset: Any, case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ruleset = ruleset
        self.case = case

    def runtest(self) -> None:
        if self.case is None:
            if self.ruleset.errors:
                raise RuleProblem("\n".join(e.render() for e in self.ruleset.errors))
            return
        from iccaudit.detect.rules.ruletests import run_case

        rule, case = self.case
        result = run_case(rule, case)
        if not result.passed:
            raise RuleProblem(f"{result.test_id}: {result.code} {result.detail}")

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, RuleProblem):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"rule {self.name}"
