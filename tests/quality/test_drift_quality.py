"""Quality floors on held-out tenders spread over 2024 while prices drift (tests/quality/drift.py,
written apart from the samples generator): head + module pairs priced at their month's
complete server, cooling without a stated capacity, and lines 1.5–2.5× their peers that only
the outlier models can catch. Each figure is printed with its 95 % Wilson interval."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from iccaudit.run import ScoreOptions, run_score
from tests.quality.drift import write_drift_corpus

SEVERITY = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _score(tmp: Path, seed: int, spread: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    labels = write_drift_corpus(tmp / "tenders", seed=seed, tenders=140, spread=spread)
    db = tmp / "f.duckdb"
    run_score(ScoreOptions(paths=[tmp / "tenders"], db=db, models=True))
    con = duckdb.connect(str(db), read_only=True)
    try:
        found = con.execute("""
            SELECT regexp_extract(f.source_file, '[^/\\\\]+$') AS file, li.line_no,
                f.kind, f.mechanism, f.severity
            FROM findings f JOIN line_items li USING (run_id, item_id)""").df()
        lines = con.execute("""SELECT regexp_extract(source_file, '[^/\\\\]+$') AS file,
                                      line_no FROM line_items""").df()
    finally:
        con.close()
    found["sev"] = found["severity"].map(SEVERITY)
    return labels, found.merge(lines.merge(labels, how="left"), how="left")


def _rate(labels: pd.DataFrame, found: pd.DataFrame, label: str, which) -> tuple[int, int]:
    wanted = labels[labels["label"] == label][["file", "line_no"]]
    hit = found[which(found)][["file", "line_no"]].drop_duplicates()
    return len(wanted.merge(hit)), len(wanted)


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "spread", "floors"), [
    # suppliers 3 % apart (the domain's tight 2024 market), and 7 % apart (looser)
    (101, 0.03, {"pairs": 0.9, "cooling": 0.9, "models": 0.8}),
    (202, 0.07, {"pairs": 0.7, "cooling": 0.9, "models": 0.8}),
])
def test_drift_corpus_floors(tmp_path, seed, spread, floors):
    labels, found = _score(tmp_path, seed, spread)
    checks = {
        "pairs": _rate(labels, found, "head_module_split",
                       lambda f: (f["mechanism"] == "head_module_split") & (f["sev"] >= 2)),
        "legit pairs flagged": _rate(labels, found, "legit_pair",
                                     lambda f: f["mechanism"] == "head_module_split"),
        "cooling": _rate(labels, found, "liquid_cooling_markup",
                         lambda f: (f["mechanism"] == "liquid_cooling_markup") & (f["sev"] >= 2)),
        "legit cooling flagged": _rate(labels, found, "legit_cooling",
                                       lambda f: f["mechanism"] == "liquid_cooling_markup"),
        "models": _rate(labels, found, "model_target", lambda f: f["kind"] == "model"),
    }
    for name, (hits, n) in checks.items():
        low, high = wilson(hits, n)
        print(f"seed {seed} spread {spread}: {name} {hits}/{n} = {hits / n:.2f} "
              f"[{low:.2f}, {high:.2f}]")
    for name, floor in floors.items():
        hits, n = checks[name]
        assert n >= 12 and hits / n >= floor, (name, hits, n)
    for name in ("legit pairs flagged", "legit cooling flagged"):
        hits, n = checks[name]
        assert n >= 15 and hits / n <= 0.05, (name, hits, n)
    # model findings fall on planted lines only: no ordinary line is called an outlier
    models = found[found["kind"] == "model"].drop_duplicates(["file", "line_no"])
    on_plain = models["label"].isna() | models["label"].isin(["legit_pair", "legit_cooling"])
    assert len(models) and on_plain.sum() / len(models) <= 0.05, models[on_plain]
