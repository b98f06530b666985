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


def lexicon_dirs(paths: Sequence[Path]) -> list[Path]:
    """The lexicon folders among ``paths``: a folder named lexicon, a file in one, or the
    ``lexicon/`` of a rule pack folder given."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.name == "lexicon" and p.is_dir():
            found.append(p)
        elif p.is_file() and p.parent.name == "lexicon":
            found.append(p.parent)
        elif (p / "lexicon").is_dir():
            found.append(p / "lexicon")
    return list(dict.fromkeys(found))


def _check_lexicons(paths: Sequence[Path], out: Console) -> tuple[int, int, int]:
    """Load each lexicon folder among ``paths``, print its problems; (folders, concepts,
    problems)."""
    from iccaudit.enrich.lexicon import LexiconError
    from iccaudit.enrich.lexicon_check import load_lexicon

    folders = concepts = problems = 0
    for folder in lexicon_dirs(paths):
        folders += 1
        try:
            concepts += len(load_lexicon(folder).concepts)
        except LexiconError as exc:
            for problem in exc.problems:
                out.print(problem.render())
            problems += len(exc.problems)
    return folders, concepts, problems


def validate_rules(paths: Sequence[Path]) -> int:
    """Check rule files and the lexicon; print every error and warning with its source line
    (rules: with a caret)."""
    ruleset = load_ruleset(paths)
    out = _console()
    _print_problems(ruleset, out)
    folders, concepts, problems = _check_lexicons(paths, out)
    out.print(f"{ruleset.files} file(s), {len(ruleset.rules)} valid rule(s), "
              f"{len(ruleset.errors)} error(s), {len(ruleset.warnings)} warning(s)")
    if folders:
        out.print(f"lexicon: {concepts} concept(s), {problems} problem(s)")
    return EXIT_INVALID if ruleset.errors or problems else EXIT_OK


def test_lexicon(folders: Sequence[Path], out: Console) -> tuple[int, int]:
    """Run every lexicon example; print the failures; (passed, failed)."""
    from iccaudit.enrich.lexicon import Lexicon, LexiconError, Reader
    from iccaudit.enrich.lexicon_check import check_lexicon, load_lexicon

    passed = failed = 0
    for folder in folders:
        try:
            lex: Lexicon = load_lexicon(folder)
        except LexiconError as exc:
            for problem in exc.problems:
                out.print(problem.render())
            failed += len(exc.problems)
            reader = Reader()  # count what did pass, when the files could be read at all
            for path in sorted(Path(folder).glob("*.y*ml")):
                reader.read(path)
            if reader.problems:
                continue
            lex = reader.build(Path(folder), "")
            bad = len(check_lexicon(lex))
            passed += max(sum(len(c.examples) for c in lex.concepts.values()) - bad, 0)
            continue
        passed += sum(len(c.examples) for c in lex.concepts.values())
    return passed, failed


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
    folders = lexicon_dirs(paths)
    lex_failed = 0
    if folders:
        lex_passed, lex_failed = test_lexicon(folders, out)
        out.print(f"lexicon examples: {lex_passed} passed, {lex_failed} failed")
    return EXIT_INVALID if failed or ruleset.errors or lex_failed else EXIT_OK


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
