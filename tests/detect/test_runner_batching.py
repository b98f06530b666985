"""The runner's shared work (one scan for the hits of a view's rules, one tender table, each
distinct message value formatted once) gives exactly what each rule run alone gives."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from iccaudit.core.paths import reference_dir
from iccaudit.detect.rules.messages import render_messages
from iccaudit.detect.rules.ruletests import case_frame, default_builder
from iccaudit.detect.rules.runner import run_rules

from .conftest import build_fixture_sandbox, rule_yaml
from .test_runner import PRICE_BODY, golden_rules, rules_from

CHEAP_BODY = """\
where: unit_price_cny < 0.5 * ref_high_cny
applies: ref_high_cny IS NOT NULL
excess: NULL
message:
  zh: "单价 ¥{unit_price_cny:,.0f}"
  en: "unit price ¥{unit_price_cny:,.0f} ({brand})"
evidence:
  - unit_price_cny
"""

BROKEN_BODY = """\
where: CAST(item_name AS BIGINT) > 0
message: {zh: "x", en: "x"}
"""

ROWS = [
    {"item_name": "GPU服务器", "spec": "8*H100", "unit_price_cny": 9e6, "quantity": 2.0},
    {"item_name": "GPU服务器", "spec": "8*H100", "unit_price_cny": 2.4e6, "brand": "浪潮"},
    {"item_name": "GPU服务器", "spec": "8*H100", "unit_price_cny": 1e6, "tender_id": "T-2"},
    {"item_name": "GPU服务器", "spec": "8*H100", "unit_price_cny": 9.9e6, "tender_id": "T-2"},
    {"item_name": "交换机", "unit_price_cny": 9e6},
]


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _sorted(findings: pd.DataFrame) -> list[dict]:
    return sorted(_records(findings), key=lambda r: (r["detector"], r["finding_id"]))


def _together_and_alone(con, rules):
    together, runs = run_rules(con, rules, "r1")
    alone = [run_rules(con, [r], "r1") for r in rules]
    alone_findings = pd.concat([f for f, _ in alone], ignore_index=True)
    alone_runs = pd.concat([r for _, r in alone], ignore_index=True)
    return together, runs, alone_findings, alone_runs


@pytest.mark.parametrize("builder", ["enrich", "fixture"])
def test_rules_of_one_view_find_the_same_together_as_alone(write_rule, builder):
    rules = rules_from(write_rule, (rule_yaml("price-high", body=PRICE_BODY), "price-high"),
                       (rule_yaml("price-low", body=CHEAP_BODY), "price-low"),
                       (rule_yaml("casts-text", body=BROKEN_BODY), "casts-text"))
    frame = case_frame(ROWS, run_id="r1")
    con = (default_builder()(frame, reference_dir()) if builder == "enrich"
           else build_fixture_sandbox(frame))
    try:
        together, runs, alone, alone_runs = _together_and_alone(con, rules)
        assert set(together["detector"]) == {"price-high", "price-low"}
        assert _sorted(together) == _sorted(alone)
        assert _records(runs) == _records(alone_runs)
        assert runs.set_index("detector").loc["casts-text", "status"] == "not_evaluated"
        left = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '__rules%'")
        assert left.fetchall() == [(0,)]
    finally:
        con.close()


def test_list_and_tender_rules_together_as_alone():
    # multi-line (pairs) and tender-level (no line) findings read the tender table
    rules = golden_rules("pair-no-discount", "claim-above-cards", "price-above-reference")
    rows = [
        {"item_name": "机头", "unit_price_cny": 450_000, "tender_id": "T-9"},
        {"item_name": "GPU模组", "unit_price_cny": 2_100_000, "tender_id": "T-9"},
        {"claimed_pflops": 500.0, "quantity": 10, "tender_id": "T-1", "source_file": "t1.csv"},
        {"item_name": "GPU服务器", "spec": "8*H100", "unit_price_cny": 9e6, "tender_id": "T-1",
         "source_file": "t1.csv"},
    ]
    con = build_fixture_sandbox(case_frame(rows, run_id="r1"))
    try:
        together, _, alone, _ = _together_and_alone(con, rules)
        assert len(together) >= 3 and together["item_id"].isna().any()
        assert _sorted(together) == _sorted(alone)
    finally:
        con.close()


def _reference_render(template: str, frame: pd.DataFrame) -> list[str]:
    """Each value formatted on its own, as documented: NULL is —, whole floats print as
    integers without a spec, a spec that does not fit falls back to the plain value."""
    import string

    def plain(v):
        if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return str(v)

    out = []
    for _, row in frame.iterrows():
        text = ""
        for literal, name, spec, _ in string.Formatter().parse(template):
            text += literal
            if name is None:
                continue
            v = row[f"f_{name}"]
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                text += "—"
                continue
            if isinstance(v, np.ndarray):
                v = v.tolist()
            try:
                text += format(v, spec) if spec else plain(v)
            except (TypeError, ValueError):
                text += plain(v)
        out.append(text)
    return out


def test_messages_format_each_value_as_python_would():
    frame = pd.DataFrame({
        "f_price": [1234567.0, -0.0, 0.0, None, 1234567.0, float("nan"), 2.5, -0.0],
        "f_count": pd.array([3, None, 3, 4, 5, 6, 7, 3], dtype="Int64"),
        "f_name": ["H100", None, "H100", "A800", "h100", "H100", "", "H100"],
        "f_mixed": [1, 1.0, True, "1", None, 2, 2.0, False],
        "f_ids": [np.array([1, 2]), np.array([3]), None, np.array([1, 2]), None, None,
                  np.array([], dtype=int), np.array([4])],
    })
    for template in ("¥{price:,.0f} / {price} / {price:.1f}", "{count} lines, {count:,}",
                     "{name} {name:>6}", "{mixed} {mixed:.1f}", "{ids}"):
        got = render_messages(template, frame).tolist()
        assert got == _reference_render(template, frame), template
    assert render_messages("{price:,.0f}", frame).tolist()[1:3] == ["-0", "0"]
