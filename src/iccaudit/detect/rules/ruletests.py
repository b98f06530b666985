"""A rule's in-file tests: each case's rows scored in a fresh sandbox, the rule run on them, and
the result compared with ``expect: hit`` or ``expect: miss``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iccaudit.core import schema
from iccaudit.detect.rules.model import Rule, RuleCase
from iccaudit.detect.rules.runner import one_line, run_pack
from iccaudit.detect.rules.testrows import default_row

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class CaseResult:
    """The outcome of one in-file test case."""

    rule_id: str
    path: str
    case: str
    expect: str
    passed: bool
    code: str | None = None
    detail: str = ""

    @property
    def test_id(self) -> str:
        return f"{self.path}::{self.case}::{self.expect}"


def case_frame(rows: Iterable[dict[str, Any]], run_id: str = "rule-test") -> pd.DataFrame:
    """A line_items frame (all schema.LineItem columns) from test rows over default values."""
    import pandas as pd

    records = []
    for i, row in enumerate(rows, start=1):
        rec = {"run_id": run_id, "item_id": i, **default_row(i), **row}
        rec["source_row"] = rec.get("source_row") or i + 1
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=schema.columns("line_items"))
    for c in ("quantity", "unit_price_cny", "total_cny", "capacity_kw", "claimed_pflops"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    for c in ("item_id", "source_row"):
        frame[c] = frame[c].astype("int64")
    frame["serial_numbers"] = frame["serial_numbers"].map(
        lambda v: list(v) if isinstance(v, list | tuple) else [])
    return frame


SandboxBuilder = Callable[[Any, Path], Any]


_REFERENCE_CACHE: dict[tuple, Any] = {}


def _reference(reference_dir: Path) -> Any:
    """The reference book, loaded once per directory state (YAML parsing is the slow part)."""
    from iccaudit.enrich import load_reference

    folder = Path(reference_dir).resolve()
    state = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                         for p in folder.glob("*") if p.is_file())) if folder.is_dir() else ()
    key = (folder, state)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE.clear()
        _REFERENCE_CACHE[key] = load_reference(folder)
    return _REFERENCE_CACHE[key]


def default_builder() -> SandboxBuilder:
    """iccaudit.enrich.build_sandbox, with the reference book loaded once for many cases."""
    from iccaudit.enrich import build_sandbox

    def build(line_items: Any, reference_dir: Path) -> Any:
        return build_sandbox(line_items, reference_dir, reference=_reference(reference_dir))

    return build


def run_case(rule: Rule, case: RuleCase, *, build: SandboxBuilder | None = None,
             reference_dir: Path | None = None) -> CaseResult:
    """Build a sandbox from the case's rows and check that the rule hits or misses."""
    from iccaudit.core.paths import reference_dir as default_reference

    build = build or default_builder()
    ref = reference_dir or default_reference()
    result = CaseResult(rule.id, rule.path, case.name, case.expect, passed=False)
    try:
        con = build(case_frame(case.line_rows()), ref)
    except Exception as exc:  # noqa: BLE001 - reported as a failed case, one line
        result.code, result.detail = "E305", f"cannot build the sandbox: {one_line(exc)}"
        return result
    try:
        findings, runs = run_pack(con, [rule], "rule-test", include_deprecated=True)
    finally:
        con.close()
    run = runs.iloc[0]
    if run["status"] != "ok":
        result.code, result.detail = "E305", f"the rule failed on the test rows: {run['error']}"
        return result
    hits = int(run["hits"])
    if case.expect == "hit" and hits == 0:
        result.code, result.detail = "E304", "expected a hit, got none"
    elif case.expect == "miss" and hits > 0:
        msg = findings["message"].iloc[0] if len(findings) else ""
        result.code, result.detail = "E306", f"expected a miss, the rule fired: {msg}"
    else:
        result.passed = True
        result.detail = f"{hits} hit(s)" if hits else "no hit"
    return result


def run_rule_tests(rules: Iterable[Rule], *, build: SandboxBuilder | None = None,
                   reference_dir: Path | None = None) -> list[CaseResult]:
    """Every in-file test case of every rule."""
    return [run_case(r, c, build=build, reference_dir=reference_dir)
            for r in rules for c in r.tests]
