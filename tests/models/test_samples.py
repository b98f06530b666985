"""Quality floors of the outlier models on the labelled sample corpus, through the real
ingest and enrich stages (no pipeline, no rules: the models alone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=[7, 8])
def corpus(request, tmp_path_factory):
    """(items view, labels) of a generated corpus; seed 7 is the one in data/samples."""
    from iccaudit.core.paths import bundled_rules_dir, reference_dir
    from iccaudit.detect.models import read_items, read_locations
    from iccaudit.enrich import build_sandbox
    from iccaudit.normalise import ingest
    from iccaudit.samples import write_corpus

    out = tmp_path_factory.mktemp(f"corpus{request.param}")
    write_corpus(out, seed=request.param, tenders=16)
    batch = ingest([out / "tenders"])
    items = batch.items.sort_values(["source_file", "source_sheet", "source_row"],
                                    na_position="first", kind="stable").reset_index(drop=True)
    items.insert(0, "item_id", range(1, len(items) + 1))
    items.insert(0, "run_id", "test")
    con = build_sandbox(items, reference_dir(bundled_rules_dir()))
    try:
        view = read_items(con)  # what the models score: narrow, no location columns
        assert "source_file" not in view.column_names
        where = read_locations(con, view.column("item_id").to_numpy())
        assert len(where) == view.num_rows == len(items)
        yield con, view, where, pd.read_csv(out / "labels.csv", dtype=str), out
    finally:
        con.close()


def _label_lines(where: pd.DataFrame, labels: pd.DataFrame, out: Path) -> pd.DataFrame:
    """One row per item: is it labelled price_outlier, is it labelled novel."""
    root = str((out / "tenders").resolve())
    files = where["source_file"].map(lambda p: str(Path(p).resolve()))  # per file, few values
    rel = files.str.removeprefix(root + "/")
    keys = pd.DataFrame({"item_id": where["item_id"], "file": rel,
                         "sheet": where["source_sheet"].fillna(""), "line_no": where["line_no"]})
    lab = labels.assign(sheet=labels["sheet"].fillna(""),
                        novel=labels.get("novel", pd.Series("0", index=labels.index)).fillna("0"))
    merged = keys.merge(lab, on=["file", "sheet", "line_no"], how="left")
    merged["po"] = merged["mechanism"].eq("price_outlier")
    merged["nov"] = merged["novel"].eq("1")
    return merged.groupby("item_id", as_index=False)[["po", "nov"]].any()


def test_labels_match_lines(corpus):
    _, _, where, labels, out = corpus
    truth = _label_lines(where, labels, out)
    assert truth["po"].sum() == (labels["mechanism"] == "price_outlier").sum() > 0


def test_ensemble_roc_auc_on_labelled_price_outliers(corpus):
    from sklearn.metrics import roc_auc_score

    from iccaudit.detect.models import load_settings
    from iccaudit.detect.models.scoring import score_items

    _, view, where, labels, out = corpus
    truth = _label_lines(where, labels, out)
    lines = score_items(view, load_settings(), seed=0).lines.merge(truth, on="item_id")
    assert lines["po"].sum() >= 3
    assert roc_auc_score(lines["po"], lines["score"]) >= 0.9


def test_recall_on_novel_outliers(corpus):
    from iccaudit.detect.models import run_models

    con, _, where, labels, out = corpus
    truth = _label_lines(where, labels, out)
    findings, runs = run_models(con, "test", None, 0, None)
    novel = truth.loc[truth["nov"], "item_id"]
    assert len(novel) >= 3
    assert np.isin(novel, findings["item_id"].astype("int64")).mean() >= 0.8
    assert (runs["status"] == "ok").any()
