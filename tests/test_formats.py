"""One tender, five formats: the bundled sample tender T01 as CSV, Word, PDF, HTML and OCDS gives
the same line items and the same findings, each line with where it lies in its document."""

from __future__ import annotations

from pathlib import Path

import duckdb
import openpyxl
import pytest

from iccaudit.normalise import ingest
from iccaudit.report.export import export_findings
from iccaudit.run import ScoreOptions, run_score

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
CSV = SAMPLES / "tenders" / "T01_ZSZX-2024-3168.csv"
DOCUMENTS = {
    "docx": SAMPLES / "formats" / "T01_ZSZX-2024-3168.docx",
    "pdf": SAMPLES / "formats" / "T01_ZSZX-2024-3168.pdf",
    "html": SAMPLES / "formats" / "T01_ZSZX-2024-3168.html",
    "ocds": SAMPLES / "formats" / "T01_ZSZX-2024-3168.ocds.json",
}


def _findings(path: Path, db: Path) -> set[tuple]:
    run_score(ScoreOptions(paths=[path], db=db, seed=0))
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT detector, line_no, mechanism, severity, "
                           "round(est_excess_cny) FROM findings").fetchall()
    return set(rows)


@pytest.fixture(scope="module")
def csv_findings(tmp_path_factory: pytest.TempPathFactory) -> set[tuple]:
    found = _findings(CSV, tmp_path_factory.mktemp("csv") / "f.duckdb")
    assert {f[2] for f in found} >= {"supply_channel", "used_as_new"}  # the planted schemes
    return found


@pytest.mark.parametrize("fmt", sorted(DOCUMENTS))
def test_same_findings_whatever_the_format(fmt, csv_findings, tmp_path):
    assert _findings(DOCUMENTS[fmt], tmp_path / "f.duckdb") == csv_findings


@pytest.mark.parametrize("fmt", sorted(DOCUMENTS))
def test_same_lines_and_every_row_accounted(fmt):
    base, doc = ingest([CSV]), ingest([DOCUMENTS[fmt]])
    record = doc.files.iloc[0]
    assert record["status"] == "ok" and record["format"] == fmt
    assert record["rows_read"] == (record["line_items"] + record["rejects"]
                                   + record["non_items"])
    cols = ["line_no", "item_name", "brand", "model", "quantity", "unit_price_cny", "supplier",
            "date", "claimed_pflops"]
    a = base.items[cols].sort_values("line_no").reset_index(drop=True)
    b = doc.items[cols].sort_values("line_no").reset_index(drop=True)
    assert a.astype(str).equals(b.astype(str))
    assert sorted(doc.rejects["reason"]) == sorted(base.rejects["reason"])


def test_where_each_line_lies():
    places = {fmt: ingest([p]).items["source_sheet"] for fmt, p in DOCUMENTS.items()}
    assert set(places["docx"]) == {"table 1", "table 2"}  # one table split in two
    assert set(places["pdf"]) == {"p.1 table 1", "p.2 table 1", "p.3 table 1"}
    assert places["html"].str.fullmatch(r"/html/body/div/table\[2\]").all()
    assert places["ocds"].str.fullmatch(r"ocds-213czf-ZSZX-2024-3168 / award A1 / item \d+").all()


def test_the_pdf_place_is_in_findings_and_the_excel_export(tmp_path):
    db = tmp_path / "f.duckdb"
    run_score(ScoreOptions(paths=[DOCUMENTS["pdf"]], db=db, seed=0))
    with duckdb.connect(str(db), read_only=True) as con:
        sheets = {r[0] for r in con.execute("SELECT source_sheet FROM findings").fetchall()}
    assert sheets and all(s.startswith("p.") and " table 1" in s for s in sheets)
    (xlsx,) = export_findings(db, xlsx=tmp_path / "f.xlsx")
    book = openpyxl.load_workbook(xlsx)
    ws = book[next(n for n in book.sheetnames if n.startswith("发现"))]
    header = [c.value for c in ws[1]]
    column = header.index("工作表/位置 sheet or place")
    shown = {row[column] for row in ws.iter_rows(min_row=2, values_only=True)}
    assert sheets <= shown


def test_ocds_repeats_are_one_item():
    batch = ingest([DOCUMENTS["ocds"]])
    # the award twice (a draft superseded, then final) and the contract repeating it
    assert batch.n_items == ingest([CSV]).n_items
    assert set(batch.non_items["kind"]) == {"repeat"}
    assert batch.items["currency"].eq("CNY").all()


def test_lines_in_another_currency_leave_the_yuan_findings_alone(csv_findings, tmp_path):
    """Scored beside guaraní lines (OCDS, no rate table), the tender's findings are its own:
    peers, reference prices and the models' groups never mix currencies."""
    paraguay = Path(__file__).resolve().parent / "fixtures" / "ocds_paraguay"
    db = tmp_path / "mixed.duckdb"
    run_score(ScoreOptions(paths=[CSV, paraguay], db=db, seed=0))
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT detector, line_no, mechanism, severity, "
                           "round(est_excess_cny) FROM findings WHERE source_file = ?",
                           [str(CSV)]).fetchall()
        foreign = con.execute("SELECT count(*) FROM findings f JOIN line_items li "
                              "USING (run_id, item_id) WHERE li.currency = 'PYG' "
                              "AND f.est_excess_cny IS NOT NULL").fetchone()
    assert set(rows) == csv_findings
    assert foreign == (0,)
