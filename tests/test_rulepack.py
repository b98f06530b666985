"""The bundled rule pack: coverage of every scheme, in-file tests on both sides, README list.

The rules' own hit/miss cases run through the pytest plugin (``rules/conftest.py``); this file
checks the pack as a whole.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from iccaudit.cli import cli
from iccaudit.core.schema import MECHANISMS
from iccaudit.detect.rules.ruleset import load_ruleset

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "rules"
README = ROOT / "README.md"
#: extendable is the mechanism of user-added rules; models cover what no rule prices
RULE_MECHANISMS = tuple(m for m in MECHANISMS if m != "extendable")


@pytest.fixture(scope="module")
def pack():
    ruleset = load_ruleset([PACK])
    assert not ruleset.errors, [e.render() for e in ruleset.errors]
    return ruleset


def test_every_mechanism_has_a_stable_rule(pack):
    stable = {r.mechanism for r in pack.rules if r.status == "stable"}
    missing = set(RULE_MECHANISMS) - stable
    assert not missing, f"mechanisms without a stable rule: {sorted(missing)}"


@pytest.mark.parametrize("expect", ["hit", "miss"])
def test_every_rule_has_hit_and_miss_tests(pack, expect):
    lacking = [r.id for r in pack.rules if not any(c.expect == expect for c in r.tests)]
    assert not lacking, f"rules without an expect: {expect} test: {lacking}"


def test_rules_live_in_their_mechanism_folder_and_file(pack):
    wrong = [r.path for r in pack.rules
             if Path(r.path).parent.name != r.mechanism or Path(r.path).stem != r.id]
    assert not wrong, f"rules not at rules/<mechanism>/<id>.yaml: {wrong}"


def test_every_rule_speaks_both_languages_and_explains_itself(pack):
    for r in pack.rules:
        assert re.search(r"[\u4e00-\u9fff]", r.title_zh), r.id
        assert re.search(r"[\u4e00-\u9fff]", r.message.zh), r.id
        assert r.message.en.strip() and r.title.strip(), r.id
        assert len(r.rationale.split()) >= 20, f"{r.id}: rationale too short to state thresholds"


def test_supply_channel_is_low_severity_without_excess(pack):
    rules = [r for r in pack.rules if r.mechanism == "supply_channel"]
    assert rules
    assert all(r.severity == "low" and r.excess is None for r in rules)


def test_price_rules_estimate_the_overpayment(pack):
    # mechanisms where the money can be priced must say how much
    priced = {"head_module_split", "liquid_cooling_markup", "price_outlier", "duplicate_line",
              "bill_arithmetic", "offbrand_premium"}
    lacking = [r.id for r in pack.rules if r.mechanism in priced and r.excess is None]
    assert not lacking, f"price rules without excess: {lacking}"


def _readme_rules() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- rules:begin -->(.*?)<!-- rules:end -->", text, re.DOTALL)
    assert m, "README.md lacks the <!-- rules:begin --> / <!-- rules:end --> markers"
    return m.group(1)


def test_readme_rule_list_equals_rules_list_markdown():
    result = CliRunner().invoke(cli, ["rules", "list", "--format", "markdown"])
    assert result.exit_code == 0, result.output
    generated = [ln for ln in result.output.splitlines() if ln.startswith("|")]
    in_readme = [ln for ln in _readme_rules().splitlines() if ln.startswith("|")]
    assert len(generated) > 2
    assert in_readme == generated, (
        "README rule list is stale: regenerate it with `iccaudit rules list --format markdown`")
