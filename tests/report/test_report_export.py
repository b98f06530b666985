"""Excel, CSV and Parquet exports: sheets, print layout, number formats, formula injection."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from iccaudit import store
from iccaudit.report import export as export_mod
from iccaudit.report.export import FINDING_COLUMNS, export_findings, neutralise
from tests.report.dbfactory import FORMULA_SUPPLIER, FORMULA_TENDER, HOSTILE_MESSAGE, RUN_OLD

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def latest_findings(db) -> pd.DataFrame:
    con = store.connect(db, read_only=True)
    try:
        return con.execute("SELECT * FROM findings WHERE run_id = ?",
                           [store.latest_run_id(con)]).df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def exported(fixture_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    paths = export_findings(fixture_db, xlsx=out / "f.xlsx", csv=out / "f.csv",
                            parquet=out / "f.parquet")
    return dict(zip(("xlsx", "csv", "parquet"), paths, strict=True))


def test_excel_sheets_and_layout(exported, fixture_db):
    wb = load_workbook(exported["xlsx"])
    assert wb.sheetnames == ["发现 findings", "拒收 rejects", "汇总 summary"]
    ws = wb["发现 findings"]
    assert ws.max_row == 1 + len(latest_findings(fixture_db))
    assert [c.value for c in ws[1]] == [h for _, h in FINDING_COLUMNS]
    assert ws.freeze_panes == "A2"
    last = get_column_letter(len(FINDING_COLUMNS))
    assert ws.auto_filter.ref == f"A1:{last}{ws.max_row}"
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True
    assert ws.print_title_rows == "$1:$1"
    assert 8 <= ws.column_dimensions["A"].width <= 60
    excess_col = [h for _, h in FINDING_COLUMNS].index("估计超额 est. excess (CNY)") + 1
    money = [ws.cell(row=r, column=excess_col) for r in range(2, ws.max_row + 1)]
    assert all(c.number_format == "¥#,##0" for c in money)
    assert max(c.value or 0 for c in money) == 15_600_000
    rejects = wb["拒收 rejects"]
    assert rejects.max_row == 3 and rejects.freeze_panes == "A2"
    assert {rejects.cell(row=r, column=4).value for r in (2, 3)} == {"price_missing",
                                                                    "quantity_unparseable"}
    summary = [[c for c in row] for row in wb["汇总 summary"].iter_rows(values_only=True)]
    flat = [c for row in summary for c in row if c is not None]
    assert "d/broken.xlsx" in flat and "liquid_cooling_markup" in flat
    assert 22_500_000 in flat  # money at risk, the corroborating model finding not added


def test_excel_neutralises_formulas(exported):
    wb = load_workbook(exported["xlsx"])
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula"
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(DANGEROUS), cell.coordinate
    values = {c.value for row in wb["发现 findings"].iter_rows() for c in row}
    assert "'" + FORMULA_TENDER in values and "'" + FORMULA_SUPPLIER in values
    assert "'=金额不符" in values and "'-1+1 数量×单价与总价不符" in values
    assert HOSTILE_MESSAGE in values  # <script> is harmless in a cell and kept as written


def test_csv_has_bom_and_round_trips(exported, fixture_db):
    raw = exported["csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(exported["csv"], encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(back.columns) == [h for _, h in FINDING_COLUMNS]
    expected = latest_findings(fixture_db)
    assert len(back) == len(expected)
    col = dict(FINDING_COLUMNS)
    tenders = back[col["tender_id"]]
    assert not tenders.str.startswith(DANGEROUS).any()
    # strip the neutralising quote and we are back at the stored text
    restored = tenders.str.replace(r"^'(?=[=+\-@\t\r])", "", regex=True)
    assert sorted(restored) == sorted(expected["tender_id"])
    assert sorted(back[col["finding_id"]]) == sorted(expected["finding_id"])


def test_parquet_round_trips_unchanged(exported, fixture_db):
    back = pd.read_parquet(exported["parquet"])
    expected = latest_findings(fixture_db)
    assert list(back.columns) == [c for c, _ in FINDING_COLUMNS]
    merged = back.merge(expected, on="finding_id", suffixes=("", "_db"))
    assert len(merged) == len(expected) == len(back)
    for c in ("tender_id", "message", "title", "source_file", "evidence", "detector"):
        assert (merged[c] == merged[f"{c}_db"]).all(), c  # parquet keeps the raw values
    pd.testing.assert_series_equal(merged["est_excess_cny"], merged["est_excess_cny_db"],
                                   check_names=False)
    assert FORMULA_TENDER in set(back["tender_id"])


def test_export_other_run_and_errors(fixture_db, tmp_path):
    (path,) = export_findings(fixture_db, csv=tmp_path / "old.csv", run_id=RUN_OLD)
    assert "dup-identical-line" in path.read_text(encoding="utf-8-sig")
    with pytest.raises(store.StoreError):
        export_findings(fixture_db, xlsx=tmp_path / "x.xlsx", run_id="nope")
    assert not (tmp_path / "x.xlsx").exists()
    assert list(tmp_path.glob(".*.tmp")) == []


def test_long_tables_continue_on_more_sheets(fixture_db, tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "EXCEL_MAX_ROWS", 4)  # 3 data rows per sheet
    (path,) = export_findings(fixture_db, xlsx=tmp_path / "f.xlsx")
    wb = load_workbook(path)
    parts = [n for n in wb.sheetnames if n.startswith("发现 findings")]
    assert parts == ["发现 findings", "发现 findings (2)", "发现 findings (3)"]
    assert sum(wb[n].max_row - 1 for n in parts) == len(latest_findings(fixture_db))


def test_neutralise():
    frame = pd.DataFrame({
        "text": ["=1+2", "+CMD", "-x", "@A1", "\tTAB", "ok", None, "a\x00b\x1fc"],
        "num": [-1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        "mixed": ["=x", 1, None, "safe", 2.5, "@y", "z", "-3"],
    })
    out = neutralise(frame)
    text = list(out["text"])
    assert pd.isna(text[6])  # missing stays missing
    assert text[:6] + text[7:] == ["'=1+2", "'+CMD", "'-x", "'@A1", "'\tTAB", "ok",
                                   "a\ufffdb\ufffdc"]
    assert list(out["num"]) == list(frame["num"])  # numbers are numbers, never prefixed
    assert list(out["mixed"]) == ["'=x", 1, None, "safe", 2.5, "'@y", "z", "'-3"]
    assert next(iter(frame["text"])) == "=1+2"  # the input frame is not modified


def test_cli_export(fixture_db, tmp_path):
    from iccaudit.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["export", "--db", str(fixture_db), "--xlsx",
                              str(tmp_path / "a.xlsx"), "--parquet", str(tmp_path / "a.pq")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a.xlsx").exists() and (tmp_path / "a.pq").exists()
    res = runner.invoke(cli, ["export", "--db", str(fixture_db), "--csv", str(tmp_path / "b.csv"),
                              "--run", "nope"])
    assert res.exit_code == 1 and "no run 'nope'" in res.output
    assert "Traceback" not in res.output
