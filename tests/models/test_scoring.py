"""run_models end to end on an items table: groups, features, gating, evidence, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from iccaudit.core import schema
from iccaudit.detect.models import load_settings, run_models
from iccaudit.detect.models.features import compute_features
from iccaudit.detect.models.scoring import score_items

from .conftest import items_db


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v)
         for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def test_findings_follow_the_schema(fresh_db):
    findings, runs = run_models(fresh_db, "run-1", None, 0, None)
    assert len(findings) > 0 and list(findings.columns) == schema.columns("findings")
    for row in _records(findings):
        schema.Finding.model_validate(row)
    for row in _records(runs):
        schema.RuleRun.model_validate(row)
    assert (findings["kind"] == "model").all()
    assert findings["finding_id"].is_unique
    assert findings["score"].between(0, 1).all()


def test_same_seed_same_findings(labelled_items, tmp_path):
    # IForest is the randomised detector: include it so that the seed matters.
    import yaml

    from iccaudit.core.paths import models_config

    cfg = yaml.safe_load(models_config().read_text(encoding="utf-8"))
    cfg["ensemble"] = ["copod", "iforest"]
    cfg["detector_params"] = {"iforest": {"n_estimators": 20}}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    items = labelled_items[0]
    a, ra = run_models(items_db(items), "r", path, 5, None)
    b, rb = run_models(items_db(items), "r", path, 5, None)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(ra, rb)
    c, _ = run_models(items_db(items), "r", path, 6, None)
    assert not a["score"].equals(c["score"])  # the seed reaches IForest


def test_small_groups_are_not_evaluated(labelled_items, settings):
    items = labelled_items[0].copy()
    # Three H200 servers and three racks in a category of their own: too few peers.
    idx = items.index[items["category"] == "gpu_server"][:3]
    items.loc[idx, "accel_model"] = "H200"
    idx2 = items.index[items["category"] == "rack_power"][:3]
    items.loc[idx2, "category"] = "ups"
    items.loc[idx2[0], "unit_price_cny"] *= 10
    findings, runs = run_models(items_db(items), "r", None, 0, None)
    name = settings.model_name
    skipped = runs.set_index("detector").loc[[f"{name}:gpu_server/H200", f"{name}:ups"]]
    assert (skipped["status"] == "not_evaluated").all()
    assert skipped["hits"].isna().all() and (skipped["rows_applicable"] == 3).all()
    assert skipped["error"].str.contains("min_peers").all()
    # The lines of a skipped group give no finding, and the H200 lines were not compared
    # with the other models of their category (no fallback across models).
    assert not set(findings["item_id"]) & set(items.loc[idx.union(idx2), "item_id"])


def test_missing_values_are_imputed_with_the_median_not_zero(labelled_items, settings):
    items = labelled_items[0].copy()
    h100 = items.index[(items["category"] == "gpu_server") & (items["accel_model"] == "H100")]
    plain, marked = h100[:10], h100[10]
    # No card count on 10 ordinary lines and on one line marked up 4x.
    items.loc[plain.union([marked]), ["cards_per_unit", "card_count"]] = np.nan
    items.loc[marked, "unit_price_cny"] = 4 * 2_450_000
    items.loc[marked, "ratio_to_ref_high"] = 4 * 2_450_000 / items.loc[marked, "ref_high_cny"]
    items.loc[marked, "ratio_to_peer_median"] = 4 * 2_450_000 / items.loc[marked, "peer_median"]
    feats = compute_features(items, ["price_per_card"])
    assert np.isnan(feats["price_per_card"][items.index.get_indexer(plain)]).all()
    scored = score_items(items, settings, seed=0)
    by_id = scored.lines.set_index("item_id")
    # A zero would put log price per card at 0, far below ~12.6: the plain lines would be the
    # most abnormal of their group. With the median they stay ordinary.
    plain_scores = by_id.loc[items.loc[plain, "item_id"], "score"]
    assert (plain_scores < settings.score_threshold).all()
    # The marked line is found through its unit price, and the evidence says what was imputed.
    findings, _ = run_models(items_db(items), "r", None, 0, None)
    row = findings[findings["item_id"] == items.loc[marked, "item_id"]]
    assert len(row) == 1
    ev = json.loads(row["evidence"].iloc[0])
    assert ev["imputed"] == ["price_per_card"]
    assert ev["price_feature"] == "unit_price"
    drv = {d["feature"]: d for d in ev["drivers"]}
    assert drv["price_per_card"]["imputed"] is True and drv["price_per_card"]["value"] is None


def test_feature_missing_for_whole_group_is_dropped(settings):
    items = compute_features(pd.DataFrame({"unit_price_cny": [0.0, -1.0, 5.0]}), ["unit_price"])
    assert np.isnan(items["unit_price"][:2]).all()  # zero and negative prices are missing


def test_dropped_features_are_recorded(labelled_items, settings):
    scored = score_items(labelled_items[0], settings, seed=0)
    net = scored.groups[scored.groups["group"].str.startswith("network")]
    assert len(net) and net["dropped"].str.contains("ratio_to_ref: missing for the whole group").all()
    assert not net["features"].str.contains("ratio_to_ref").any()


def test_only_lines_above_their_peers_are_flagged(labelled_items, settings):
    items = labelled_items[0]
    scored = score_items(items, settings, seed=0).lines
    flagged = scored[scored["flagged"]]
    assert len(flagged) > 0
    assert (flagged["price_value"] > flagged["peer_median"]).all()
    assert (flagged["ratio"] >= settings.min_price_ratio).all()
    # The cheap lines (30 % of the price) score high as outliers but are never findings.
    cheap_ids = set(scored.loc[scored["ratio"] < 0.5, "item_id"])
    assert cheap_ids and not cheap_ids & set(flagged["item_id"])
    assert (flagged["est_excess_cny"].dropna() > 0).all()
    excess = flagged.dropna(subset=["est_excess_cny"]).merge(
        items[["item_id", "unit_price_cny", "quantity"]], on="item_id")
    unit_price_rows = excess[excess["price_feature"] == "unit_price"]
    np.testing.assert_allclose(
        unit_price_rows["est_excess_cny"],
        (unit_price_rows["unit_price_cny"] - unit_price_rows["peer_median"])
        * unit_price_rows["quantity"],
    )


def test_quality_floor_on_synthetic_items(labelled_items, settings):
    from sklearn.metrics import roc_auc_score

    items, labels = labelled_items
    lines = score_items(items, settings, seed=0).lines
    truth = lines["item_id"].map(dict(zip(items["item_id"], labels, strict=True))).to_numpy()
    assert roc_auc_score(truth, lines["score"]) >= 0.95
    flagged = lines["flagged"].to_numpy()
    assert flagged[truth == 1].mean() >= 0.9  # recall
    assert truth[flagged].mean() >= 0.7  # precision


def test_corroborated_lines_keep_finding_without_money(labelled_items):
    items = labelled_items[0]
    alone, _ = run_models(items_db(items), "r", None, 0, None)
    assert alone["est_excess_cny"].notna().sum() > 2
    hit = alone.dropna(subset=["est_excess_cny"])["item_id"].iloc[:2].tolist()
    rules = pd.DataFrame({"item_id": [hit[0], hit[0], hit[1]],
                          "detector": ["zz-rule", "aa-rule", "aa-rule"]})
    findings, _ = run_models(items_db(items), "r", None, 0, rules)
    assert len(findings) == len(alone)
    by_id = findings.set_index("item_id")
    assert json.loads(by_id.loc[hit[0], "evidence"])["corroborates"] == ["aa-rule", "zz-rule"]
    assert by_id.loc[hit, "est_excess_cny"].isna().all()
    assert "aa-rule" in by_id.loc[hit[1], "message"]
    assert "corroborates aa-rule" in by_id.loc[hit[1], "message_en"]
    others = findings[~findings["item_id"].isin(hit)]
    pd.testing.assert_series_equal(
        others["est_excess_cny"].reset_index(drop=True),
        alone[~alone["item_id"].isin(hit)]["est_excess_cny"].reset_index(drop=True),
    )
    assert all(json.loads(e)["corroborates"] == [] for e in others["evidence"])


def test_liquid_cooling_markup_and_message(labelled_items):
    items = labelled_items[0].copy()
    cold = items.index[items["cooling_type"] == "cold_plate"]
    i = cold[0]
    items.loc[i, "unit_price_cny"] *= 8
    items.loc[i, "price_per_kw"] *= 8
    findings, _ = run_models(items_db(items), "r", None, 0, None)
    row = findings[findings["item_id"] == items.loc[i, "item_id"]].iloc[0]
    assert row["mechanism"] == "liquid_cooling_markup"
    assert row["severity"] == "high"
    assert "每千瓦单价 ¥" in row["message"] and "倍；主要依据：" in row["message"]
    assert "price per kW" in row["message_en"] and "x the peer median ¥" in row["message_en"]
    ev = json.loads(row["evidence"])
    assert ev["ratio_to_peer_median"] > 6 and ev["group"] == "liquid_cooling/cold_plate"


def test_severity_follows_the_calibration(fresh_db, settings):
    findings, _ = run_models(fresh_db, "r", None, 0, None)
    ev = pd.DataFrame([json.loads(e) for e in findings["evidence"]])
    high = (findings["severity"] == "high").to_numpy()
    assert high.any()
    assert (ev.loc[high, "ratio_to_peer_median"] >= 3).all()
    assert (findings.loc[high, "score"] >= 0.95).all()
    assert set(findings["severity"]) <= {"low", "medium", "high"}


def test_no_items_view_gives_not_evaluated_not_an_error():
    import duckdb

    findings, runs = run_models(duckdb.connect(), "r", None, 0, None)
    assert findings.empty and list(findings.columns) == schema.columns("findings")
    assert runs["status"].tolist() == ["not_evaluated"]
    assert "cannot read items" in runs["error"].iloc[0]


def test_items_without_required_column(labelled_items):
    findings, runs = run_models(items_db(labelled_items[0].drop(columns=["quantity"])), "r",
                                None, 0, None)
    assert findings.empty and "quantity" in runs["error"].iloc[0]


def test_ids_are_hashes_of_detector_and_item(fresh_db):
    import hashlib

    findings, _ = run_models(fresh_db, "r", None, 0, None)
    row = findings.iloc[0]
    key = f"{row['detector']}|{row['item_id']}"
    assert row["group_id"] == hashlib.sha256(key.encode()).hexdigest()[:16]


@pytest.mark.parametrize("config_change", [{"min_peers": 10_000}])
def test_everything_too_small_gives_only_not_evaluated(labelled_items, tmp_path, config_change):
    import yaml

    from iccaudit.core.paths import models_config

    cfg = {**yaml.safe_load(models_config().read_text(encoding="utf-8")), **config_change}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    findings, runs = run_models(items_db(labelled_items[0]), "r", path, 0, None)
    assert findings.empty and (runs["status"] == "not_evaluated").all()
    assert runs["rows_applicable"].sum() == len(labelled_items[0])
    assert load_settings(path).min_peers == 10_000


def test_evidence_gives_the_tenders_own_figures(labelled_items):
    """A value back from the log scale is off in its last bits (¥38,700 as
    38700.00000000002): the evidence gives the line's own price and quantity, and no value
    with more than 12 significant digits."""
    items = labelled_items[0]
    findings, _ = run_models(items_db(items), "r", None, 0, None)
    assert len(findings) > 10
    own = items.set_index("item_id")
    checked = 0
    for item_id, text in zip(findings["item_id"], findings["evidence"], strict=True):
        ev = json.loads(text)
        drivers = {d["feature"]: d for d in ev["drivers"]}
        for feature, column in (("unit_price", "unit_price_cny"), ("quantity", "quantity")):
            if feature in drivers and drivers[feature]["value"] is not None:
                assert drivers[feature]["value"] == own.loc[item_id, column], (feature, ev)
                checked += 1
        values = [ev["value"], ev["peer_median"]]
        values += [v for d in ev["drivers"] for v in (d["value"], d["peer_median"])]
        for v in values:
            if v is not None:
                assert float(f"{v:.12g}") == v, (v, ev)
    assert checked > 10
