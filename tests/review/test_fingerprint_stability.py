"""Fingerprints follow the finding line, not the run: the same line and rule logic give the
same fingerprint whatever the run, row order or file name; a change of the rule's logic
gives new ones; a change of reference prices keeps them (a reference price is data the rule
compares with, not its logic)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from iccaudit.store.verdicts import insert_verdicts
from tests.review.conftest import REPO, SAMPLES, iccaudit, query

LATEST = "(SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)"


def fingerprints(db: Path, where: str = "true") -> dict[str, str]:
    """fingerprint -> detector of the latest run's findings."""
    return dict(query(db, f"SELECT fingerprint, detector FROM findings "
                          f"WHERE run_id = {LATEST} AND {where}"))


def confirm_all(db: Path) -> dict[str, str]:
    """A verdict on every finding of the latest run; fingerprint -> status."""
    rows = query(db, f"SELECT fingerprint, run_id FROM findings WHERE run_id = {LATEST}")
    frame = pd.DataFrame(rows, columns=["fingerprint", "run_id"])
    frame["status"] = ["confirmed" if i % 3 else "dismissed" for i in range(len(frame))]
    frame["reason"] = None
    con = duckdb.connect(str(db))
    try:
        insert_verdicts(con, frame, reviewer="test", source="test")
    finally:
        con.close()
    return dict(zip(frame["fingerprint"], frame["status"], strict=True))


@pytest.fixture
def pack(tmp_path) -> Path:
    """A copy of the bundled rule pack to edit (used through $ICCAUDIT_RULES)."""
    copy = tmp_path / "rules"
    shutil.copytree(REPO / "rules", copy)
    return copy


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_every_finding_has_a_unique_fingerprint_and_rule_version(scored):
    rows = query(scored, f"SELECT count(*), count(DISTINCT fingerprint), count(rule_version), "
                         f"count(DISTINCT kind) FROM findings WHERE run_id = {LATEST}")
    n, distinct, versions, kinds = rows[0]
    assert n > 50 and distinct == n and versions == n and kinds == 2


def test_same_lines_reordered_and_renamed_keep_their_fingerprints(tmp_path):
    src = SAMPLES / "T01_ZSZX-2024-3168.csv"
    with src.open(encoding="utf-8", newline="") as f:
        header, *rows = list(csv.reader(f))
    moved = tmp_path / "elsewhere" / "renamed_copy.csv"
    moved.parent.mkdir()
    with moved.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *reversed(rows)])
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    for path, db in ((src, a), (moved, b)):
        iccaudit("score", str(path), "--db", str(db), "--quiet", "--no-models", "--format", "json")
    fa, fb = fingerprints(a), fingerprints(b)
    assert len(fa) >= 3 and fa == fb
    # while the rows themselves moved
    rows_of = "SELECT list(source_row ORDER BY fingerprint) FROM findings"
    assert query(a, rows_of) != query(b, rows_of)


def test_rule_logic_changes_fingerprints_wording_does_not(db, pack):
    before = fingerprints(db)
    rule = pack / "liquid_cooling_markup" / "cooling-per-kw-markup.yaml"
    replace(rule, "title: Liquid cooling priced far above the per-kW reference",
            "title: Liquid cooling far above its per-kW reference price")
    replace(rule, "约为参考价上限", "为参考价上限约")
    iccaudit("rescore", "--db", str(db), "--format", "json", env={"ICCAUDIT_RULES": str(pack)})
    assert fingerprints(db) == before  # reworded: same logic, same fingerprints

    replace(rule, "price_per_kw > 1.5 * ref_high_cny", "price_per_kw > 1.4 * ref_high_cny")
    iccaudit("rescore", "--db", str(db), "--format", "json", env={"ICCAUDIT_RULES": str(pack)})
    after = fingerprints(db)
    cooling_before = {fp for fp, d in before.items() if d == "cooling-per-kw-markup"}
    cooling_after = {fp for fp, d in after.items() if d == "cooling-per-kw-markup"}
    assert cooling_before and cooling_after and not cooling_before & cooling_after
    others = {fp: d for fp, d in before.items() if d != "cooling-per-kw-markup"}
    assert {fp: d for fp, d in after.items() if d != "cooling-per-kw-markup"} == others


def test_reference_price_change_keeps_verdicts_of_findings_that_remain(db, pack):
    """Immersion cooling's reference high 12,000 -> 30,000 CNY/kW: the rule fires above
    1.5 x that, 45,000/kW. The samples' immersion findings at about 81 k and 97 k per kW stay,
    with the same fingerprint and so the same verdict (their money and message change); the
    one at about 35 k per kW is no longer raised: its verdict stays in the history, on no
    finding of the new run."""
    verdicts = confirm_all(db)
    cooling = query(db, f"""
        SELECT fingerprint, est_excess_cny,
               json_extract(evidence, '$.price_per_kw')::DOUBLE AS per_kw
        FROM findings WHERE run_id = {LATEST} AND detector = 'cooling-per-kw-markup'
          AND json_extract_string(evidence, '$.cooling_type') = 'immersion'
        ORDER BY per_kw""")
    assert [round(r[2] / 1000) for r in cooling] == [35, 81, 97]
    replace(pack / "reference" / "cooling.yaml", "    low: 9000\n    high: 12000",
            "    low: 9000\n    high: 30000")
    iccaudit("rescore", "--db", str(db), "--format", "json", env={"ICCAUDIT_RULES": str(pack)})

    now = dict(query(db, "SELECT fingerprint, est_excess_cny FROM latest_findings "
                         "WHERE detector = 'cooling-per-kw-markup'"))
    gone, *kept = cooling
    assert gone[0] not in now
    for fp, money, _ in kept:
        assert fp in now and now[fp] < money  # the same finding, less money at risk
    carried = dict(query(db, "SELECT fingerprint, verdict FROM latest_findings"))
    for fp, verdict in carried.items():
        # every finding raised again carries its verdict; none raised anew has one
        assert verdict == verdicts.get(fp)
    assert {fp for fp, _, _ in kept} <= {fp for fp, v in carried.items() if v}
    # the verdict of the finding no longer raised is kept in the history
    assert query(db, "SELECT status FROM current_verdicts WHERE fingerprint = ?",
                 [gone[0]]) == [(verdicts[gone[0]],)]
    # the rules' versions did not move: a reference price is not rule logic
    assert query(db, "SELECT count(DISTINCT rule_version) FROM findings "
                     "WHERE detector = 'cooling-per-kw-markup'") == [(1,)]
