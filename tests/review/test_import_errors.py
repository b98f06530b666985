"""Bad workbooks are refused row by row, all or nothing: the database is unchanged."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import openpyxl
import pytest

from iccaudit.report.export import FINDING_COLUMNS, FINGERPRINT_HEADER, VERDICT_HEADER
from tests.review.conftest import SAMPLES, iccaudit, query

HEADERS = [h for _, h in FINDING_COLUMNS]
COL = {c: i + 1 for i, (c, _) in enumerate(FINDING_COLUMNS)}


def digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


@pytest.fixture
def workbook(db, tmp_path) -> Path:
    path = tmp_path / "findings.xlsx"
    iccaudit("export", "--db", str(db), "--xlsx", str(path))
    return path


def edit(path: Path, cells: dict[tuple[int, str], object]) -> None:
    wb = openpyxl.load_workbook(path)
    ws = wb["发现 findings"]
    for (row, col), value in cells.items():
        ws.cell(row=row, column=COL[col], value=value)
    wb.save(path)


def refused(db: Path, path: Path) -> list[str]:
    """Import, expect a refusal; the per-row problems it printed."""
    before = digest(db)
    proc = iccaudit("verdicts", "import", str(path), "--db", str(db), "--reviewer", "li",
                    check=False)
    assert proc.returncode == 1, proc.stdout
    assert "Traceback" not in proc.stderr
    assert "nothing recorded" in proc.stderr.splitlines()[-1]
    assert digest(db) == before  # the file is byte for byte as it was
    return proc.stderr.splitlines()[:-1]


def test_every_bad_row_is_named_and_nothing_is_recorded(db, workbook):
    edit(workbook, {
        (2, "verdict_new"): "confirmed",                                # good
        (3, "verdict_new"): "maybe",                                    # unknown status
        (4, "verdict_new"): "dismissed", (4, "fingerprint"): "0123456789abcdef",  # unknown fp
        (5, "verdict_new"): "confirmed", (5, "source_row"): 999,        # key column edited
        (6, "reason_new"): "a reason but no verdict",
        (7, "verdict_new"): "confirmed", (7, "tender_id"): "=cmd|' /C calc'!A0",
    })
    problems = refused(db, workbook)
    assert len(problems) == 5, problems
    text = "\n".join(problems)
    assert "row 3: unknown verdict 'maybe' (one of confirmed, dismissed, needs-info)" in text
    assert "row 4: unknown fingerprint '0123456789abcdef'" in text
    assert "row 5: column '行 row' edited: '999', exported as" in text
    assert "row 6: a reason without a verdict" in text
    assert "row 7: column '项目编号 tender' edited" in text
    assert query(db, "SELECT count(*) FROM verdicts") == [(0,)]


def test_workbook_from_another_database(db, workbook, tmp_path):
    other = tmp_path / "other.duckdb"
    iccaudit("score", str(SAMPLES / "T01_ZSZX-2024-3168.csv"), "--db", str(other), "--quiet",
             "--no-models", "--format", "json")
    edit(workbook, {(2, "verdict_new"): "confirmed"})
    problems = refused(other, workbook)
    assert len(problems) == 1 and "exported from another database" in problems[0]


def test_not_an_export(db, tmp_path):
    path = tmp_path / "plain.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append([VERDICT_HEADER, FINGERPRINT_HEADER])
    wb.save(path)
    problems = refused(db, path)
    assert "not a workbook written by `iccaudit export --xlsx`" in problems[0]


def test_finding_that_no_longer_exists(db, workbook):
    # a rescore without the models: the model findings of the export are gone
    iccaudit("rescore", "--db", str(db), "--no-models", "--format", "json")
    ws = openpyxl.load_workbook(workbook)["发现 findings"]
    model_row = next(r for r in range(2, ws.max_row + 1)
                     if ws.cell(row=r, column=COL["kind"]).value == "model")
    fp = ws.cell(row=model_row, column=COL["fingerprint"]).value
    edit(workbook, {(model_row, "verdict_new"): "confirmed", (2, "verdict_new"): "confirmed"})
    problems = refused(db, workbook)
    assert problems == [(f"{workbook.name}: sheet '发现 findings' row {model_row}: finding "
                        f"'{fp}' no longer exists in the latest run; export again")]


def test_concurrent_reviews(db, workbook, tmp_path):
    # two reviewers start from the same export; the second's verdict on a finding the first
    # already judged differently is a conflict, and the same verdict is not recorded twice
    second = tmp_path / "second.xlsx"
    second.write_bytes(workbook.read_bytes())
    edit(workbook, {(2, "verdict_new"): "dismissed", (2, "reason_new"): "framework contract",
                    (3, "verdict_new"): "confirmed"})
    iccaudit("verdicts", "import", str(workbook), "--db", str(db), "--reviewer", "wang")
    edit(second, {(2, "verdict_new"): "confirmed", (3, "verdict_new"): "confirmed"})
    problems = refused(db, second)
    assert len(problems) == 1 and "row 2:" in problems[0]
    assert "got the verdict 'dismissed' from wang after this workbook was exported" in problems[0]
    again = iccaudit("verdicts", "import", str(workbook), "--db", str(db), "--reviewer", "wang")
    assert "recorded 0 verdict(s)" in again.stdout and "2 already recorded" in again.stdout
    assert query(db, "SELECT count(*) FROM verdicts") == [(2,)]


def test_import_while_another_process_holds_the_database(db, workbook):
    edit(workbook, {(2, "verdict_new"): "confirmed"})
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(60)"), str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        proc = iccaudit("verdicts", "import", str(workbook), "--db", str(db), "--reviewer",
                        "li", check=False)
        assert proc.returncode == 1
        assert "in use by another iccaudit process" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM verdicts").fetchall() == [(0,)]
    finally:
        con.close()
