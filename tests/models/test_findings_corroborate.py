"""Model findings are drafted into a table while the rules run and completed once their
findings are known."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from iccaudit.core import schema
from iccaudit.detect.models.findings import DRAFTED, _drafted_ddl, corroborate


@pytest.fixture
def drafted() -> duckdb.DuckDBPyConnection:
    """Three drafted findings, on lines 12, 10 and 11, in that (drafted) order: line 12 in
    the first chunk."""
    con = duckdb.connect()
    con.execute(_drafted_ddl(DRAFTED))
    # a group name that holds the very text the evidence is completed at
    head = '{"group":"x\\"corroborates\\":[]","corroborates":'
    rows = pa.table({
        "run_id": ["r"] * 3, "finding_id": ["f12", "f10", "f11"], "group_id": ["g"] * 3,
        "item_id": pa.array([12, 10, 11], pa.int64()), "source_file": ["a.csv"] * 3,
        "tender_id": ["T"] * 3, "detector": ["model:x"] * 3, "kind": ["model"] * 3,
        "mechanism": ["price_outlier"] * 3, "severity": ["low"] * 3, "score": [0.9] * 3,
        "est_excess_cny": [np.nan, 100.0, 200.0], "title": ["t"] * 3,
        "message": ["丙", "甲", "乙"], "message_en": ["c", "a", "b"],
        "__chunk": pa.array([0, 1, 1], pa.int32()), "__ev_head": [head] * 3,
        "__ev_tail": [',"est_excess_if_alone_cny":null}', ',"est_excess_if_alone_cny":100.0}',
                      ',"est_excess_if_alone_cny":200.0}']})
    con.register("rows", rows)
    con.execute(f"INSERT INTO {DRAFTED} BY NAME SELECT * FROM rows")
    con.unregister("rows")
    yield con
    con.close()


def test_rules_on_the_same_line_are_named_and_keep_the_money(drafted) -> None:
    rules = pd.DataFrame({"item_id": pd.array([11, 11, None, 12], dtype="Int64"),
                          "detector": ["zeta-rule", "alpha-rule", "tender-level", "alpha-rule"]})
    found = corroborate(drafted, rules)
    out = found.frame()
    assert list(out.columns) == schema.columns("findings")
    assert out["item_id"].tolist() == [12, 10, 11]  # in the drafted order
    assert out["est_excess_cny"].isna().tolist() == [True, False, True]
    assert out["est_excess_cny"].iloc[1] == 100.0  # no rule on line 10: its money stays
    assert out["message"].tolist() == ["丙；佐证规则 alpha-rule", "甲",
                                       "乙；佐证规则 alpha-rule, zeta-rule"]
    assert out["message_en"].iloc[2] == "b; corroborates alpha-rule, zeta-rule"
    evidence = [json.loads(e) for e in out["evidence"]]
    assert [e["corroborates"] for e in evidence] == [["alpha-rule"], [],
                                                     ["alpha-rule", "zeta-rule"]]
    assert evidence[0]["group"] == 'x"corroborates":[]'  # the text in a value is left alone
    assert [e["est_excess_if_alone_cny"] for e in evidence] == [None, 100.0, 200.0]
    # the lean columns the run keeps agree with the rows written
    assert found.lean["item_id"].tolist() == [12, 10, 11]
    assert found.lean["est_excess_cny"].isna().tolist() == [True, False, True]


def test_without_rule_findings_the_draft_is_completed_as_it_is(drafted) -> None:
    for rules in (None, pd.DataFrame({"item_id": pd.array([], dtype="Int64"),
                                      "detector": pd.Series([], dtype=str)})):
        out = corroborate(drafted, rules).frame()
        assert out["message"].tolist() == ["丙", "甲", "乙"]
        assert out["est_excess_cny"].tolist()[1:] == [100.0, 200.0]
        assert all(json.loads(e)["corroborates"] == [] for e in out["evidence"])


def test_money_of_a_line_in_another_currency_moves_into_its_evidence(drafted) -> None:
    foreign = (np.array([10], "int64"), np.array(["USD"], object))
    found = corroborate(drafted, None, foreign)
    out = found.frame()
    assert out["item_id"].tolist() == [12, 10, 11]  # the corrected row stays in its place
    usd = json.loads(out["evidence"].iloc[1])
    assert (usd["currency"], usd["est_excess"]) == ("USD", 100.0)
    assert out["est_excess_cny"].isna().tolist() == [True, True, False]
    assert found.lean["est_excess_cny"].isna().tolist() == [True, True, False]
    # streamed to the store in batches: the same rows
    streamed = found.reader(2).read_all()
    assert streamed.column("finding_id").to_pylist() == ["f12", "f10", "f11"]
    assert streamed.column("evidence").to_pylist() == out["evidence"].tolist()
