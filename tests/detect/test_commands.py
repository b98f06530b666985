"""`iccaudit rules ...` through the real CLI, the bundled pack on the real views, pytest plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from iccaudit.cli import cli
from iccaudit.core.paths import bundled_rules_dir
from iccaudit.detect.rules.ruleset import load_ruleset

from .conftest import rule_yaml

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
where: total_diff_cny > greatest(1, 0.005 * total_cny)
applies: total_cny IS NOT NULL
message:
  zh: "差额 {total_diff_cny:,.0f}"
  en: "difference {total_diff_cny:,.0f}"
evidence: [total_diff_cny]
tests:
  - name: padded
    expect: hit
    row: {quantity: 2, unit_price_cny: 100, total_cny: 300}
  - name: exact
    expect: miss
    row: {quantity: 2, unit_price_cny: 100, total_cny: 200}
"""


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_bundled_pack_is_valid_against_the_real_dictionary():
    rs = load_ruleset([bundled_rules_dir()])
    assert rs.errors == [], [str(e) for e in rs.errors]
    ids = {r.id for r in rs.rules}
    assert {"dup-identical-line", "bill-total-mismatch", "head-module-no-discount"} <= ids
    for rule in rs.rules:
        assert {c.expect for c in rule.tests} == {"hit", "miss"}, rule.id


def test_validate_prints_every_error_with_a_caret_and_exits_3(write_rule):
    a = write_rule(rule_yaml("rule-a", body=GOOD.replace("total_diff_cny >", "total_dif >")),
                   name="rule-a")
    write_rule(rule_yaml("rule-b", body=GOOD.replace("greatest(", "getenv(")), name="rule-b")
    result = invoke("rules", "validate", str(a.parent))
    assert result.exit_code == 3
    out = result.output
    assert "rule-a.yaml:10:8: E103 unknown column 'total_dif' (did you mean total_diff_cny?)" \
        in out
    assert "rule-b.yaml:10:25: E203 function getenv() is not allowed" in out
    lines = out.splitlines()
    i = next(n for n, line in enumerate(lines) if "E103" in line)
    assert lines[i + 1].strip() == "where: total_dif > greatest(1, 0.005 * total_cny)"
    assert lines[i + 2].index("^") == lines[i + 1].index("total_dif")
    assert "2 error(s)" in out and "Traceback" not in out


def test_validate_ok_and_warnings_exit_0(write_rule):
    p = write_rule(rule_yaml("rule-a", body=GOOD.split("tests:")[0]), name="rule-a")
    result = invoke("rules", "validate", str(p))
    assert result.exit_code == 0, result.output
    assert "W101" in result.output and "0 error(s)" in result.output


def test_rules_test_runs_cases_on_the_real_sandbox(write_rule):
    p = write_rule(rule_yaml("rule-a", body=GOOD), name="rule-a")
    result = invoke("rules", "test", str(p))
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output
    bad = write_rule(rule_yaml("rule-b", body=GOOD.replace("total_cny: 300}", "total_cny: 200}")),
                     name="rule-b")
    result = invoke("rules", "test", str(bad))
    assert result.exit_code == 3
    assert "E304" in result.output and "1 passed, 1 failed" in result.output


def test_list_formats(write_rule):
    p = write_rule(rule_yaml("rule-a", body=GOOD), name="rule-a")
    md = invoke("rules", "list", "--rules", str(p.parent), "--format", "markdown")
    assert md.exit_code == 0
    assert md.output.splitlines()[2] == \
        "| `rule-a` | price_outlier | high | Test rule (测试规则) |"
    js = invoke("rules", "list", "--rules", str(p.parent), "--format", "json")
    assert '"id": "rule-a"' in js.output
    table = invoke("rules", "list", "--rules", str(p.parent))
    assert "rule-a" in table.output and table.exit_code == 0


def test_explain_prints_the_compiled_sql(write_rule):
    p = write_rule(rule_yaml("rule-a", body=GOOD), name="rule-a")
    result = invoke("rules", "explain", "rule-a", "--rules", str(p.parent))
    assert result.exit_code == 0
    assert "A rule written by a test." in result.output
    assert "Tests need rules." in result.output
    assert "FROM items" in result.output and "total_diff_cny > GREATEST(1" in result.output
    missing = invoke("rules", "explain", "rule-b", "--rules", str(p.parent))
    assert missing.exit_code == 1 and "did you mean rule-a?" in missing.output


def test_pytest_collects_rule_cases_and_fails_on_a_broken_rule(tmp_path):
    pack = tmp_path / "pack"
    (pack / "bill_arithmetic").mkdir(parents=True)
    (pack / "conftest.py").write_text(
        "from iccaudit.detect.rules.pytest_plugin import pytest_collect_file  # noqa: F401\n")
    (pack / "bill_arithmetic" / "rule-a.yaml").write_text(rule_yaml("rule-a", body=GOOD),
                                                          encoding="utf-8")
    (pack / "bill_arithmetic" / "rule-b.yaml").write_text(
        rule_yaml("rule-b", body=GOOD.replace("total_diff_cny >", "total_dif >")),
        encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(pack), "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-rA"],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    text = out.stdout
    assert out.returncode == 1, text
    assert "PASSED pack/bill_arithmetic/rule-a.yaml::padded::hit" in text
    assert "PASSED pack/bill_arithmetic/rule-a.yaml::exact::miss" in text
    assert "PASSED pack/bill_arithmetic/rule-a.yaml::validate" in text
    assert "FAILED pack/bill_arithmetic/rule-b.yaml::validate" in text
    assert "E103 unknown column 'total_dif'" in text
