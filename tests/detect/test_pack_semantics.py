"""Semantics twice, on the bundled samples: bundled rules compiled to SQL vs pandas references.

The rules run through the real engine on a sandbox built from the ingested sample corpus; each
reference is an independent pandas translation of the rule's `where` (and `applies`) over the
same `items` rows. The sets of flagged lines must be equal and not trivial.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iccaudit import store
from iccaudit.core.paths import bundled_rules_dir, reference_dir
from iccaudit.detect.rules.ruleset import load_ruleset
from iccaudit.detect.rules.runner import run_rules
from iccaudit.enrich import build_sandbox
from iccaudit.normalise import ingest

ROOT = Path(__file__).resolve().parents[2]
USED_WORDS = r"二手|翻新|拆机|9[0-9]新|9成新|九成新|refurbish|\bused\b|\bpulled\b"


def _bill(f: pd.DataFrame) -> pd.Series:
    return f.total_cny.notna() & f.line_total_cny.notna() & (
        f.total_diff_cny.abs() > np.maximum(1, 0.005 * f.line_total_cny.abs()))


def _export(f: pd.DataFrame) -> pd.Series:
    ban = pd.Timestamp("2023-10-25")
    since = pd.to_datetime(f.export_control_date).fillna(ban).clip(lower=ban)
    return (f.export_controlled.fillna(False).astype(bool)
            & f.category.isin(["gpu_server", "gpu_card", "gpu_module"])
            & (pd.to_datetime(f.purchase_date) >= since))


def _cooling(f: pd.DataFrame) -> pd.Series:
    return (f.category == "liquid_cooling") & (f.price_per_kw > 1.5 * f.ref_high_cny)


def _used(f: pd.DataFrame) -> pd.Series:
    words = f.text.fillna("").str.contains(USED_WORDS, regex=True)
    return ((f.condition_class.isin(["used", "refurbished"]) | words)
            & f.ref_basis.isin(["server", "card", "module"])
            & (f.basis_price_cny > 0.7 * f.ref_peak_cny))


REFERENCES = {
    "bill-total-mismatch": _bill,
    "export-controlled-after-ban": _export,
    "cooling-per-kw-markup": _cooling,
    "used-priced-as-new": _used,
}


@pytest.fixture(scope="module")
def scored():
    batch = ingest([ROOT / "data" / "samples" / "tenders"])
    items = batch.items.reset_index(drop=True)
    items.insert(0, "item_id", range(1, len(items) + 1))
    items.insert(0, "run_id", "sem")
    con = build_sandbox(items, reference_dir(bundled_rules_dir()))
    rules = [r for r in load_ruleset([bundled_rules_dir()]).rules if r.id in REFERENCES]
    findings, runs = run_rules(con, rules, "sem")
    view = store.fetch_frame(con, "SELECT * FROM items ORDER BY item_id")
    con.close()
    return findings, runs, view


@pytest.mark.parametrize("rule_id", sorted(REFERENCES))
def test_bundled_rule_agrees_with_pandas_on_the_samples(scored, rule_id):
    findings, runs, view = scored
    assert runs.loc[runs["detector"] == rule_id, "status"].tolist() == ["ok"]
    got = set(findings.loc[findings["detector"] == rule_id, "item_id"].astype(int))
    expected = set(view.loc[REFERENCES[rule_id](view).fillna(False).astype(bool), "item_id"])
    assert got == expected
    assert 0 < len(got) < len(view)
