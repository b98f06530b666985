"""Model findings are drafted while the rules run and completed once their findings are known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from iccaudit.core import schema
from iccaudit.detect.models.findings import Drafted, corroborate


def _drafted() -> Drafted:
    cols = schema.columns("findings")
    frame = pd.DataFrame({c: [None, None, None] for c in cols})
    frame["item_id"] = pd.array([10, 11, 12], dtype="Int64")
    frame["est_excess_cny"] = [100.0, 200.0, np.nan]
    frame["message"] = ["甲", "乙", "丙"]
    frame["message_en"] = ["a", "b", "c"]
    # a group name that holds the very text the evidence is completed at
    head = pa.array(['{"group":"x\\"corroborates\\":[]","corroborates":'] * 3, pa.large_string())
    tail = pa.array([',"est_excess_if_alone_cny":100.0}', ',"est_excess_if_alone_cny":200.0}',
                     ',"est_excess_if_alone_cny":null}'], pa.large_string())
    return Drafted(frame, head, tail)


def test_rules_on_the_same_line_are_named_and_keep_the_money() -> None:
    rules = pd.DataFrame({"item_id": pd.array([11, 11, None, 12], dtype="Int64"),
                          "detector": ["zeta-rule", "alpha-rule", "tender-level", "alpha-rule"]})
    out = corroborate(_drafted(), rules)
    assert list(out.columns) == schema.columns("findings")
    assert out["est_excess_cny"].tolist()[0] == 100.0  # no rule on line 10: its money stays
    assert out["est_excess_cny"].iloc[1:].isna().all()
    assert out["message"].tolist() == ["甲", "乙；佐证规则 alpha-rule, zeta-rule",
                                       "丙；佐证规则 alpha-rule"]
    assert out["message_en"].iloc[1] == "b; corroborates alpha-rule, zeta-rule"
    evidence = [json.loads(e) for e in out["evidence"]]
    assert [e["corroborates"] for e in evidence] == [[], ["alpha-rule", "zeta-rule"],
                                                     ["alpha-rule"]]
    assert evidence[0]["group"] == 'x"corroborates":[]'  # the text in a value is left alone
    assert [e["est_excess_if_alone_cny"] for e in evidence] == [100.0, 200.0, None]


def test_without_rule_findings_the_draft_is_completed_as_it_is() -> None:
    for rules in (None, pd.DataFrame({"item_id": pd.array([], dtype="Int64"),
                                      "detector": pd.Series([], dtype=str)})):
        out = corroborate(_drafted(), rules)
        assert out["message"].tolist() == ["甲", "乙", "丙"]
        assert out["est_excess_cny"].tolist()[:2] == [100.0, 200.0]
        assert all(json.loads(e)["corroborates"] == [] for e in out["evidence"])
