"""The runner: findings rows, ids, multi-line and tender-level findings, run-time failures."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from iccaudit import store
from iccaudit.core import schema
from iccaudit.detect.rules.ruleset import load_ruleset
from iccaudit.detect.rules.ruletests import run_case, run_rule_tests
from iccaudit.detect.rules.runner import FIRE_RATE_MIN_ROWS, run_rules

from .conftest import DICTIONARY, GOLDEN_DIR, build_fixture_sandbox, rule_yaml

PRICE_BODY = """\
where: unit_price_cny > 2 * ref_high_cny
applies: category = 'gpu_server'
excess: (unit_price_cny - ref_high_cny) * quantity
score: ratio_to_ref_high / 4
message:
  zh: "单价 ¥{unit_price_cny:,.0f}，为参考上限的 {ratio:.1f} 倍；品牌 {brand}"
  en: "unit price ¥{unit_price_cny:,.0f} is {ratio:.1f}x the reference high; excess {est_excess_cny:,.0f}"
evidence:
  - unit_price_cny
  - brand
  - ratio: unit_price_cny / ref_high_cny
tests:
  - name: far-above
    expect: hit
    row: {item_name: GPU服务器, unit_price_cny: 9000000}
  - name: normal
    expect: miss
    row: {item_name: GPU服务器, unit_price_cny: 2400000}
"""


def rules_from(write_rule, *texts_and_names):
    paths = [write_rule(text, name=name) for text, name in texts_and_names]
    rs = load_ruleset(paths, DICTIONARY)
    assert not rs.errors, [str(e) for e in rs.errors]
    return rs.rules


def golden_rules(*names):
    rs = load_ruleset([GOLDEN_DIR / f"{n}.yaml" for n in names], DICTIONARY)
    assert not rs.errors
    return rs.rules


def as_records(findings: pd.DataFrame) -> list[dict]:
    clean = findings.astype(object).where(findings.notna(), None)
    return clean.to_dict("records")


def test_findings_follow_the_schema_and_point_at_lines(write_rule, sandbox):
    rules = rules_from(write_rule, (rule_yaml("price-high", body=PRICE_BODY), "price-high"))
    con = sandbox([
        {"item_name": "GPU服务器", "unit_price_cny": 9e6, "quantity": 2, "brand": None,
         "source_file": "a.xlsx", "source_sheet": "清单", "source_row": 7, "line_no": "3",
         "tender_id": "T-1"},
        {"item_name": "GPU服务器", "unit_price_cny": 2.4e6},
        {"item_name": "交换机", "unit_price_cny": 9e6},  # not applicable, and no hit either
    ])
    findings, runs = run_rules(con, rules, "r1")
    assert list(findings.columns) == schema.columns("findings")
    for rec in as_records(findings):
        schema.Finding.model_validate(rec)
    (f,) = as_records(findings)
    assert (f["item_id"], f["source_file"], f["source_sheet"], f["source_row"],
            f["line_no"], f["tender_id"]) == (1, "a.xlsx", "清单", 7, "3", "T-1")
    assert f["est_excess_cny"] == pytest.approx((9e6 - 2.5e6) * 2)
    assert f["score"] == pytest.approx(0.9)
    assert (f["title"], f["title_en"]) == ("测试规则", "Test rule")
    assert f["message"] == "单价 ¥9,000,000，为参考上限的 3.6 倍；品牌 —"
    assert f["message_en"] == ("unit price ¥9,000,000 is 3.6x the reference high; "
                               "excess 13,000,000")
    assert json.loads(f["evidence"]) == {"unit_price_cny": 9e6, "brand": None, "ratio": 3.6}
    assert list(json.loads(f["evidence"])) == ["unit_price_cny", "brand", "ratio"]
    (run,) = as_records(runs)
    assert run == {"run_id": "r1", "detector": "price-high", "kind": "rule", "status": "ok",
                   "rows_evaluated": 3, "rows_applicable": 2, "hits": 1, "error": None,
                   "warning": None}


def test_finding_ids_are_deterministic(write_rule):
    rules = rules_from(write_rule, (rule_yaml("price-high", body=PRICE_BODY), "price-high"))
    rows = [{"item_name": "GPU服务器", "unit_price_cny": 9e6}] * 3
    a, _ = run_rules(build_fixture_sandbox(case_frame_(rows)), rules, "r1")
    b, _ = run_rules(build_fixture_sandbox(case_frame_(rows)), rules, "r2")
    assert a["finding_id"].tolist() == b["finding_id"].tolist()
    assert a["finding_id"].is_unique and len(a) == 3
    other = rules_from(write_rule, (rule_yaml("price-high-2", body=PRICE_BODY), "price-high-2"))
    c, _ = run_rules(build_fixture_sandbox(case_frame_(rows)), other, "r1")
    assert set(c["finding_id"]).isdisjoint(a["finding_id"])


def case_frame_(rows):
    from iccaudit.detect.rules.ruletests import case_frame

    return case_frame(rows, run_id="r1")


def test_multi_line_finding_shares_a_group_and_counts_money_once(sandbox):
    rules = golden_rules("pair-no-discount")
    con = sandbox([
        {"item_name": "机头", "unit_price_cny": 450_000, "tender_id": "T-9"},
        {"item_name": "GPU模组", "unit_price_cny": 2_100_000, "tender_id": "T-9"},
        {"item_name": "机头", "unit_price_cny": 400_000, "tender_id": "T-8"},
        {"item_name": "GPU模组", "unit_price_cny": 1_800_000, "tender_id": "T-8"},
    ])
    findings, runs = run_rules(con, rules, "r1")
    assert sorted(findings["item_id"].tolist()) == [1, 2]
    assert findings["group_id"].nunique() == 1
    assert findings["finding_id"].is_unique
    assert findings["est_excess_cny"].notna().sum() == 1
    assert findings["est_excess_cny"].sum() == pytest.approx(2_550_000 - 0.93 * 2_500_000)
    assert set(findings["tender_id"]) == {"T-9"}
    assert runs["hits"].iloc[0] == 1


def test_tender_level_finding_has_no_line_but_a_file(sandbox):
    rules = golden_rules("claim-above-cards")
    con = sandbox([
        {"claimed_pflops": 500.0, "quantity": 10, "tender_id": "T-1", "source_file": "t1.csv"},
        {"claimed_pflops": None, "quantity": 10, "tender_id": "T-2", "source_file": "t2.csv"},
        {"claimed_pflops": 70.0, "quantity": 10, "tender_id": "T-3", "source_file": "t3.csv"},
    ])
    findings, runs = run_rules(con, rules, "r1")
    (f,) = as_records(findings)
    assert f["item_id"] is None and f["source_row"] is None
    assert (f["tender_id"], f["source_file"]) == ("T-1", "t1.csv")
    schema.Finding.model_validate(f)
    assert runs["rows_evaluated"].iloc[0] == 3 and runs["rows_applicable"].iloc[0] == 2


def test_a_rule_failing_at_run_time_is_not_evaluated_and_others_go_on(write_rule, sandbox):
    broken = rule_yaml("casts-text", body="""\
        where: CAST(item_name AS BIGINT) > 0
        message: {zh: "x", en: "x"}
        """)
    rules = rules_from(write_rule, (broken, "casts-text"),
                       (rule_yaml("price-high", body=PRICE_BODY), "price-high"))
    con = sandbox([{"item_name": "GPU服务器", "unit_price_cny": 9e6}])
    findings, runs = run_rules(con, rules, "r1")
    by = runs.set_index("detector")
    assert by.loc["casts-text", "status"] == "not_evaluated"
    err = by.loc["casts-text", "error"]
    assert "GPU服务器" in err and "\n" not in err
    assert pd.isna(by.loc["casts-text", "hits"])  # never "zero findings"
    assert by.loc["price-high", "status"] == "ok" and by.loc["price-high", "hits"] == 1
    assert findings["detector"].tolist() == ["price-high"]


def test_fire_rate_warning(write_rule, sandbox):
    rules = rules_from(write_rule, (rule_yaml("price-high", body=PRICE_BODY), "price-high"))
    n = FIRE_RATE_MIN_ROWS + 2
    noisy = sandbox([{"item_name": "GPU服务器", "unit_price_cny": 9e6}] * n)
    _, runs = run_rules(noisy, rules, "r1")
    assert f"fired on {n} of {n} applicable rows (100%)" in runs["warning"].iloc[0]
    quiet = sandbox([{"item_name": "GPU服务器", "unit_price_cny": 9e6}] * 2
                    + [{"item_name": "GPU服务器", "unit_price_cny": 2e6}] * n)
    _, runs = run_rules(quiet, rules, "r1")
    assert runs["warning"].isna().all() and runs["hits"].iloc[0] == 2
    few = sandbox([{"item_name": "GPU服务器", "unit_price_cny": 9e6}] * (FIRE_RATE_MIN_ROWS - 1))
    _, runs = run_rules(few, rules, "r1")
    assert runs["warning"].isna().all()  # too few rows for a share to mean anything


def test_deprecated_rules_are_loaded_but_not_run(write_rule, sandbox):
    rules = rules_from(write_rule,
                       (rule_yaml("old-rule", status="deprecated", body=PRICE_BODY), "old-rule"))
    findings, runs = run_rules(sandbox([{"item_name": "GPU服务器", "unit_price_cny": 9e6}]),
                               rules, "r1")
    assert findings.empty and runs["status"].tolist() == ["skipped"]


def test_no_rules_and_no_hits_give_empty_frames_with_columns(write_rule, sandbox):
    findings, runs = run_rules(sandbox([{}]), [], "r1")
    assert list(findings.columns) == schema.columns("findings") and findings.empty
    assert list(runs.columns) == schema.columns("rule_runs") and runs.empty


def test_frames_are_written_to_a_real_database(write_rule, sandbox, tmp_path):
    rules = rules_from(write_rule, (rule_yaml("price-high", body=PRICE_BODY), "price-high"))
    findings, runs = run_rules(sandbox([{"item_name": "GPU服务器", "unit_price_cny": 9e6}]),
                               rules, "r1")
    con = store.connect(tmp_path / "f.duckdb")
    store.ensure_schema(con)
    assert store.insert_frame(con, "findings", findings) == 1
    assert store.insert_frame(con, "rule_runs", runs) == 1
    row = con.execute("SELECT detector, item_id, est_excess_cny FROM findings").fetchone()
    assert row == ("price-high", 1, 6_500_000.0)
    con.close()


# --- in-file tests --------------------------------------------------------------------------

def test_in_file_tests_pass_and_fail_with_codes(write_rule):
    good = rules_from(write_rule, (rule_yaml("price-high", body=PRICE_BODY), "price-high"))
    results = run_rule_tests(good, build=build_fixture_sandbox)
    assert [(r.case, r.passed) for r in results] == [("far-above", True), ("normal", True)]
    assert results[0].test_id.endswith("price-high.yaml::far-above::hit")

    wrong = PRICE_BODY.replace("unit_price_cny: 9000000}", "unit_price_cny: 100}").replace(
        "unit_price_cny: 2400000}", "unit_price_cny: 9900000}")
    bad = rules_from(write_rule, (rule_yaml("price-bad", body=wrong), "price-bad"))
    results = run_rule_tests(bad, build=build_fixture_sandbox)
    assert [(r.passed, r.code) for r in results] == [(False, "E304"), (False, "E306")]
    assert "9,900,000" in results[1].detail


def test_in_file_test_of_a_rule_failing_at_run_time(write_rule):
    body = """\
        where: CAST(item_name AS BIGINT) > 0
        message: {zh: "x", en: "x"}
        tests:
          - {name: any, expect: miss, row: {item_name: abc}}
        """
    (rule,) = rules_from(write_rule, (rule_yaml("casts-text", body=body), "casts-text"))
    result = run_case(rule, rule.tests[0], build=build_fixture_sandbox)
    assert not result.passed and result.code == "E305" and "abc" in result.detail


def test_golden_rules_pass_their_own_tests():
    rules = golden_rules("price-above-reference", "pair-no-discount", "claim-above-cards")
    results = run_rule_tests(rules, build=build_fixture_sandbox)
    assert len(results) == 6 and all(r.passed for r in results), results


def test_the_runner_leaves_no_temp_tables_behind(write_rule, sandbox):
    rules = rules_from(write_rule, (rule_yaml("price-high", body=PRICE_BODY), "price-high"))
    con = sandbox([{"item_name": "GPU服务器", "unit_price_cny": 9e6}])
    run_rules(con, rules, "r1")
    left = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '__rules_%'")
    assert left.fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM items").fetchall() == [(1,)]



def test_expected_fire_rate_raises_the_warning_bar(write_rule, sandbox):
    body = PRICE_BODY + "expected_fire_rate: 1.0\n"
    rules = rules_from(write_rule, (rule_yaml("price-high", body=body), "price-high"))
    assert rules[0].expected_fire_rate == 1.0
    noisy = sandbox([{"item_name": "GPU服务器", "unit_price_cny": 9e6}] * (FIRE_RATE_MIN_ROWS + 2))
    _, runs = run_rules(noisy, rules, "r1")
    assert runs["hits"].iloc[0] == FIRE_RATE_MIN_ROWS + 2
    assert runs["warning"].isna().all()


def test_money_on_a_line_is_counted_once():
    from iccaudit.detect.rules.runner import count_money_once

    frame = pd.DataFrame({
        "item_id": pd.array([1, 1, 1, 2, None], dtype="Int64"),
        "detector": ["used-priced-as-new", "minor-brand", "export", "minor-brand", "claim"],
        "est_excess_cny": [1_415_000.0, 1_000_000.0, None, 500.0, 7.0],
        "evidence": ['{"a": 1}', '{"b": 2}', "{}", "{}", "{}"],
    })
    out = count_money_once(frame)
    assert out["est_excess_cny"].iloc[0] == 1_415_000.0
    assert pd.isna(out["est_excess_cny"].iloc[1])
    moved = json.loads(out["evidence"].iloc[1])
    assert moved == {"b": 2, "est_excess_if_alone_cny": 1_000_000.0,
                     "excess_counted_by": "used-priced-as-new"}
    assert out["est_excess_cny"].iloc[3] == 500.0 and out["est_excess_cny"].iloc[4] == 7.0
    assert out["evidence"].iloc[2] == "{}"  # no money, untouched
    assert out["est_excess_cny"].sum() == 1_415_000.0 + 500.0 + 7.0


def test_money_counted_once_on_a_tie_goes_to_the_first_detector_by_name():
    import json

    import pandas as pd

    from iccaudit.detect.rules.runner import count_money_once

    frame = pd.DataFrame({
        "item_id": pd.array([7, 7, 3, 7], dtype="Int64"),
        "detector": ["zeta", "alpha", "solo", "mid"],
        "est_excess_cny": [100.0, 100.0, 5.0, 40.0],
        "evidence": ['{"z": 1}', '{"a": 1}', "{}", "{}"],
    })
    before = frame.copy()
    out = count_money_once(frame)
    assert out["est_excess_cny"].tolist()[1:3] == [100.0, 5.0]
    assert out["est_excess_cny"].isna().tolist() == [True, False, False, True]
    assert json.loads(out["evidence"].iloc[0])["excess_counted_by"] == "alpha"
    assert json.loads(out["evidence"].iloc[3]) == {"est_excess_if_alone_cny": 40.0,
                                                   "excess_counted_by": "alpha"}
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is left as it was


BILL_BODY = """\
where: total_cny > quantity * unit_price_cny * {factor}
excess: total_cny - quantity * unit_price_cny
message:
  zh: "合价不符 {{total_cny}}"
  en: "total off {{total_cny}}"
"""


def test_staged_findings_are_the_findings_with_their_money_corrected(write_rule, sandbox):
    """What a run writes (the staged table) and counts (the lean rows) is what run_rules
    gives: money counted once on a line two rules price, and kept out of yuan on a line in
    another currency, though each rule's findings were staged before the others ran."""
    from iccaudit.core.duck import fetch_frame
    from iccaudit.detect.rules.runner import LEAN_COLUMNS, STAGED_FINDINGS, run_rules_staged

    rules = rules_from(
        write_rule,
        (rule_yaml("price-high", body=PRICE_BODY), "price-high"),
        (rule_yaml("price-high-too", body=PRICE_BODY), "price-high-too"),
        (rule_yaml("bill-off", body=BILL_BODY.format(factor=1.05)), "bill-off"),
        (rule_yaml("bill-off-more", body=BILL_BODY.format(factor=1.1)), "bill-off-more"),
    )
    con = sandbox([
        {"item_name": "GPU服务器", "unit_price_cny": 9e6, "quantity": 2, "total_cny": 18e6},
        {"item_name": "GPU服务器", "unit_price_cny": 2.4e6, "quantity": 1, "total_cny": 3e6},
        {"item_name": "交换机", "unit_price_cny": 100.0, "quantity": 10, "total_cny": 1500.0,
         "currency": "USD"},
        {"item_name": "交换机", "unit_price_cny": 100.0, "quantity": 10, "total_cny": 1000.0},
    ])
    full, runs = run_rules(con, rules, "r1")
    lean, staged_runs, staged = run_rules_staged(con, rules, "r1")
    try:
        stored = fetch_frame(staged, f'SELECT * FROM "{STAGED_FINDINGS}"')
    finally:
        staged.close()
    evidence = " ".join(full["evidence"])
    assert "excess_counted_by" in evidence and '"currency":"USD"' in evidence
    key = ["detector", "finding_id"]
    want = as_records(full.sort_values(key, ignore_index=True))
    got = as_records(stored.sort_values(key, ignore_index=True)[full.columns])
    assert [{k: v for k, v in r.items() if k not in ("item_id", "source_row")} for r in got] == \
        [{k: v for k, v in r.items() if k not in ("item_id", "source_row")} for r in want]
    assert [r["item_id"] for r in got] == [r["item_id"] for r in want]
    assert as_records(lean.sort_values(key, ignore_index=True)) == as_records(
        full.sort_values(key, ignore_index=True)[list(LEAN_COLUMNS)])
    pd.testing.assert_frame_equal(staged_runs, runs)


def test_findings_formatted_in_slices_are_the_findings_at_once(write_rule, sandbox,
                                                               monkeypatch):
    """A rule's result is turned into findings a slice at a time (a rule with millions of
    findings never becomes one Python frame); slices of two rows give the same findings."""
    from iccaudit.detect.rules import runner

    rules = rules_from(
        write_rule,
        (rule_yaml("price-high", body=PRICE_BODY), "price-high"),
        (rule_yaml("bill-off", body=BILL_BODY.format(factor=1.05)), "bill-off"),
    )
    rows = [{"item_name": "GPU服务器", "unit_price_cny": 9e6 + k, "quantity": 2,
             "total_cny": 2e7 + k, "brand": None if k % 2 else "浪潮"} for k in range(7)]
    con = sandbox(rows)
    whole, runs = run_rules(con, rules, "r1")
    monkeypatch.setattr(runner, "_FORMAT_ROWS", 2)
    sliced, sliced_runs = run_rules(con, rules, "r1")
    assert len(whole) == 14 and whole["message"].str.contains("浪潮").any()
    assert as_records(sliced) == as_records(whole)
    pd.testing.assert_frame_equal(sliced_runs, runs)
