"""Findings do not move when the code is reorganised.

The golden files hold the fingerprints (``benchmarks/fingerprints.py``) of the findings that the
code before the redesign produced on the bundled samples and on a generated corpus (seed 11,
40 tenders). A refactor must reproduce them byte for byte; a change that is meant to change
findings updates the golden file in the same commit and says why.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from iccaudit.samples import write_corpus

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "fingerprints"


def _fingerprints_module():
    spec = importlib.util.spec_from_file_location(
        "iccaudit_bench_fingerprints", REPO / "benchmarks" / "fingerprints.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _compare(got: list[str], golden: Path) -> None:
    want = golden.read_text(encoding="utf-8").splitlines()
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing and not extra, (
        f"{len(missing)} finding(s) gone, {len(extra)} new against {golden.name}:\n"
        + "\n".join(["- " + m[:200] for m in missing[:5]] + ["+ " + e[:200] for e in extra[:5]]))
    assert got == want  # same multiset, same order


@pytest.mark.slow
def test_bundled_samples_findings_unchanged() -> None:
    fp = _fingerprints_module()
    _compare(fp.score_and_fingerprint([REPO / "data" / "samples" / "tenders"]),
             GOLDEN / "bundled_samples.tsv")


@pytest.mark.slow
def test_generated_corpus_findings_unchanged(tmp_path: Path) -> None:
    fp = _fingerprints_module()
    write_corpus(tmp_path / "c", seed=11, tenders=40)
    _compare(fp.score_and_fingerprint([tmp_path / "c" / "tenders"]),
             GOLDEN / "corpus_seed11_40.tsv")


@pytest.mark.slow
def test_findings_arrive_with_the_fingerprints_the_store_would_give_them(tmp_path: Path) -> None:
    """The rules' queries and the models' findings make each fingerprint as the finding is
    made; the store's own statement (for findings that arrive without one) gives the same."""
    import shutil

    import duckdb

    from iccaudit.run.options import ScoreOptions
    from iccaudit.run.score import run_score
    from iccaudit.store.views import fill_fingerprints

    db = tmp_path / "f.duckdb"
    result = run_score(ScoreOptions(paths=[REPO / "data" / "samples" / "tenders"], db=db))
    made = result.findings
    assert made["fingerprint"].notna().all() and len(made) > 50
    assert {"rule", "model"} <= set(made["kind"])
    again = tmp_path / "again.duckdb"
    shutil.copy(db, again)
    con = duckdb.connect(str(again))
    try:
        con.execute("UPDATE findings SET fingerprint = NULL")
        fill_fingerprints(con)
        filled = dict(con.execute("SELECT detector || finding_id, fingerprint FROM findings")
                      .fetchall())
    finally:
        con.close()
    assert filled == dict(zip(made["detector"] + made["finding_id"], made["fingerprint"],
                              strict=True))
    # a tender that bills the same line twice: the two findings differ by their occurrence
    dup = made[made["detector"] == "dup-identical-line"]
    assert len(dup) >= 2 and dup["fingerprint"].is_unique


@pytest.mark.slow
def test_model_findings_drafted_in_pieces_are_the_same(tmp_path: Path, monkeypatch) -> None:
    """Drafting the model findings a few tenders at a time (as at ten million lines) gives
    the findings of one piece, fingerprints (occurrences of a content) included."""
    import duckdb

    from iccaudit.detect.models import findings as model_findings
    from iccaudit.run.options import ScoreOptions
    from iccaudit.run.score import run_score

    def stored(db: Path) -> list[tuple]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return con.execute(
                "SELECT * EXCLUDE (run_id) FROM findings WHERE kind = 'model' "
                "ORDER BY finding_id").fetchall()
        finally:
            con.close()

    samples = REPO / "data" / "samples" / "tenders"
    run_score(ScoreOptions(paths=[samples], db=tmp_path / "one.duckdb"))
    monkeypatch.setattr(model_findings, "DRAFT_CHUNK_LINES", 3)
    run_score(ScoreOptions(paths=[samples], db=tmp_path / "pieces.duckdb"))
    one = stored(tmp_path / "one.duckdb")
    assert len(one) > 5 and stored(tmp_path / "pieces.duckdb") == one
