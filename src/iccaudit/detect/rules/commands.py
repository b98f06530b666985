"""``iccaudit rules list|validate|test|explain``: the work behind the CLI's rules commands.

Each function prints and returns an exit code: 0 ok, 1 a usage problem (unknown rule id),
3 invalid rules or failed tests (cli.EXIT_INVALID_RULES).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from iccaudit.detect.rules.ruleset import RuleSet, load_ruleset

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 3


def _console(stderr: bool = False) -> Console:
    # markup off: rule text and file names are printed as they are, never as rich markup
    return Console(stderr=stderr, highlight=False, markup=False, soft_wrap=True)


def _print_problems(ruleset: RuleSet, console: Console) -> None:
    for problem in sorted(ruleset.errors + ruleset.warnings,
                          key=lambda e: (e.path, e.line, e.col, e.code)):
        console.print(problem.render())


def list_rules(dirs: Sequence[Path], fmt: str = "table") -> int:
    """List the rules: a table, JSON, or markdown (one line per rule, for the README)."""
    ruleset = load_ruleset(dirs)
    rules = sorted(ruleset.rules, key=lambda r: (r.mechanism, r.id))
    out = _console()
    if fmt == "json":
        out.print(json.dumps([
            {"id": r.id, "mechanism": r.mechanism, "severity": r.severity, "status": r.status,
             "view": r.view, "title": r.title, "title_zh": r.title_zh, "path": r.path}
            for r in rules], ensure_ascii=False, indent=2))
    elif fmt == "markdown":
        out.print("| id | mechanism | severity | title |")
        out.print("|---|---|---|---|")
        for r in rules:
            title = f"{r.title} ({r.title_zh})".replace("|", "\\|")
            out.print(f"| `{r.id}` | {r.mechanism} | {r.severity} | {title} |")
    else:
        table = Table(title=f"{len(rules)} rules")
        for col in ("id", "mechanism", "severity", "status"):
            table.add_column(col, no_wrap=True)
        table.add_column("view", overflow="fold")
        table.add_column("title", overflow="fold", ratio=1)
        for r in rules:
            table.add_row(r.id, r.mechanism, r.severity, r.status, r.view,
                          f"{r.title_zh} / {r.title}")
        out.print(table)
    if ruleset.errors:
        err = _console(stderr=True)
        _print_problems(RuleSet(errors=ruleset.errors), err)
        err.print(f"{len(ruleset.errors)} error(s): invalid rules are not listed")
        return EXIT_INVALID
    return EXIT_OK


def validate_rules(paths: Sequence[Path]) -> int:
    """Check rule files and print every error and warning with its source line and a caret."""
    ruleset = load_ruleset(paths)
    out = _console()
    _print_problems(ruleset, out)
    out.print(f"{ruleset.files} file(s), {len(ruleset.rules)} valid rule(s), "
              f"{len(ruleset.errors)} error(s), {len(ruleset.warnings)} warning(s)")
    return EXIT_INVALID if ruleset.errors else EXIT_OK


def test_rules(paths: Sequence[Path]) -> int:
    """Run every rule's in-file tests; invalid rules count as failures."""
    from iccaudit.detect.rules.ruletests import run_rule_tests

    ruleset = load_ruleset(paths)
    out = _console()
    _print_problems(RuleSet(errors=ruleset.errors), out)
    results = run_rule_tests(ruleset.rules)
    table = Table(title="rule tests")
    for col in ("test", "result", "detail"):
        table.add_column(col, overflow="fold")
    failed = [r for r in results if not r.passed]
    for r in results:
        table.add_row(r.test_id, "ok" if r.passed else f"FAIL {r.code}", r.detail)
    out.print(table)
    for r in failed:
        out.print(f"{r.path}: {r.code} test {r.case!r} ({r.expect}): {r.detail}")
    out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed, "
              f"{len(ruleset.errors)} invalid rule error(s)")
    return EXIT_INVALID if failed or ruleset.errors else EXIT_OK


def explain_rule(rule_id: str, dirs: Sequence[Path]) -> int:
    """Print a rule's description, rationale and the SQL it compiles to."""
    from iccaudit.detect.rules.compiler import suggest

    ruleset = load_ruleset(dirs)
    rule = ruleset.get(rule_id)
    out = _console()
    if rule is None:
        err = _console(stderr=True)
        if rule_id in ruleset.invalid_ids:
            _print_problems(RuleSet(errors=[e for e in ruleset.errors
                                            if e.rule_id in (rule_id, None)]), err)
            err.print(f"iccaudit: error: rule {rule_id!r} is invalid")
            return EXIT_INVALID
        known = [r.id for r in ruleset.rules]
        err.print(f"iccaudit: error: no rule {rule_id!r}{suggest(rule_id, known)}")
        return EXIT_ERROR
    out.print(f"{rule.id}: {rule.title_zh} / {rule.title}")
    out.print(f"file: {rule.path}")
    out.print(f"mechanism: {rule.mechanism}  severity: {rule.severity}  status: {rule.status}  "
              f"view: {rule.view}")
    out.print("")
    out.print("Description:")
    out.print(rule.description.strip())
    out.print("")
    out.print("Rationale:")
    out.print(rule.rationale.strip())
    if rule.references:
        out.print("")
        out.print("References:")
        for ref in rule.references:
            out.print(f"  - {ref}")
    out.print("")
    out.print("SQL (one row per matching row of the view):")
    out.print(rule.compiled.sql(pretty=True))
    return EXIT_OK
