"""Hostile tender files through the real `iccaudit score`: each becomes a one-line file error
or a reject naming file, row and reason; never a traceback; counts reconcile; a run that reads
nothing writes no database and leaves an existing one unchanged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from . import corpus as C
from .conftest import assert_one_line_error, check_database, invoke

#: name -> (writer of the file into a folder, the words its one-line error must hold)
FILE_ERRORS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty.csv": (lambda d: _raw(d, "empty.csv", b""), "the file is empty"),
    "blank_lines.csv": (lambda d: _raw(d, "blank_lines.csv", b"\n \n\r\n"), "only blank lines"),
    "garbage.csv": (lambda d: _raw(d, "garbage.csv", bytes(range(256)) * 64), "binary data"),
    "nul.csv": (lambda d: _raw(d, "nul.csv", C.csv_bytes([C.HEADER, C.ROW])
                               + ",".join(C.ROW2).replace("英维克", "英\x00维克").encode() + b"\n"),
                "NUL byte on line 3"),
    "nul_far.csv": (lambda d: _raw(d, "nul_far.csv", C.csv_bytes([C.HEADER] + [C.ROW] * 3000)
                                   + b"9,a\x00b,c,d,1,t,5,5,z\n"), "NUL byte on line 3002"),
    "mixed_encoding.csv": (
        lambda d: _raw(d, "mixed_encoding.csv", C.csv_bytes([C.HEADER, C.ROW])
                       + ",".join(C.ROW2).encode("gb18030") + b"\n"
                       + ",".join(C.ROW).encode() + b"\n"),
        "mixed text encodings: UTF-8 up to line 2, line 3 is not UTF-8"),
    "unclosed_quote.csv": (
        lambda d: _raw(d, "unclosed_quote.csv", C.csv_bytes([C.HEADER, C.ROW])
                       + b'3,"GPU,x,y,1,t,5,5,z\n' + ",".join(C.ROW2).encode() + b"\n"),
        "line 3: a quoted cell (\") is never closed"),
    "truncated.xlsx": (lambda d: _raw(d, "truncated.xlsx", _half(C.good_xlsx(d / "g.xlsx"))),
                       "cannot read: not a valid xlsx file"),
    "header_only.csv": (lambda d: _raw(d, "header_only.csv", C.csv_bytes([C.HEADER])),
                        "no line items in 1 file(s)"),
}


def _raw(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _half(path: Path) -> bytes:
    data = path.read_bytes()
    path.unlink()
    return data[: len(data) // 2]


def _score(path: Path, db: Path):
    return invoke(["score", str(path), "--db", str(db), "--no-models", "--format", "json"])


@pytest.mark.parametrize("name", sorted(FILE_ERRORS))
def test_unreadable_file_is_a_one_line_error_and_no_database(tmp_path, name):
    write, words = FILE_ERRORS[name]
    path = write(tmp_path)
    db = tmp_path / "out" / "f.duckdb"
    line = assert_one_line_error(_score(path, db), "nothing could be read", words)
    if name != "header_only.csv":
        assert str(path) in line  # the file is named
    assert not db.exists() and not db.parent.exists()


def test_existing_database_is_unchanged_when_nothing_could_be_read(tmp_path):
    db = tmp_path / "f.duckdb"
    good = _raw(tmp_path, "good.csv", C.csv_bytes([C.HEADER, C.ROW, C.ROW2]))
    assert _score(good, db).code == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for name in ("empty.csv", "garbage.csv", "truncated.xlsx"):
        path = FILE_ERRORS[name][0](tmp_path)
        assert_one_line_error(_score(path, db), "nothing could be read")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert check_database(db)["runs"] == 1


def test_a_batch_of_hostile_files_keeps_the_good_ones_and_reconciles(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for write, _ in FILE_ERRORS.values():
        write(folder)
    _raw(folder, "zz_good.csv", C.csv_bytes([C.HEADER, C.ROW, C.ROW2]))
    db = tmp_path / "f.duckdb"
    outcome = _score(folder, db)
    assert outcome.code == 0 and "Traceback" not in outcome.text, outcome.text
    counts = check_database(db)
    assert counts["line_items"] == 2
    con = duckdb.connect(str(db), read_only=True)
    status = dict(con.execute("SELECT regexp_extract(source_file, '[^/]+$'), status FROM files"
                              ).fetchall())
    errors = dict(con.execute("SELECT regexp_extract(source_file, '[^/]+$'), error FROM files"
                              ).fetchall())
    con.close()
    assert status.pop("zz_good.csv") == "ok" and status.pop("header_only.csv") == "ok"
    assert set(status.values()) == {"error"}
    for name, (_, words) in FILE_ERRORS.items():
        if name != "header_only.csv":
            assert words in errors[name] and "\n" not in errors[name], (name, errors[name])


# ---------------------------------------------------------------- rejects naming row and reason

NUMBERS = ["1.2.3", "1e309", "-0", "NaN", "∞", "¥-5", "inf", "-1e3"]


def _rejects(db: Path) -> dict[int, tuple[str, str, str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT source_row, reason, \"column\", detail FROM rejects").fetchall()
    finally:
        con.close()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_hostile_numbers_and_dates_are_rejects_with_row_and_reason(tmp_path):
    rows = [C.HEADER + ["合同日期"]]
    rows += [[str(i), "GPU服务器", "x", "y", "1", "台", v, "", "z", ""]
             for i, v in enumerate(NUMBERS, 1)]  # editor lines 2..9: unit price
    rows += [[str(i), "GPU服务器", "x", "y", v, "台", "100", "", "z", ""]
             for i, v in enumerate(NUMBERS, 1)]  # lines 10..17: quantity
    rows += [C.ROW + [d] for d in ("2024-02-30", "2023-02-29", "2024-02-29")]  # 18..20
    path = _raw(tmp_path, "numbers.csv", C.csv_bytes(rows))
    db = tmp_path / "f.duckdb"
    outcome = _score(path, db)
    assert outcome.code == 0, outcome.text
    rejects = _rejects(db)
    price = {r: rejects.get(r, ("item",))[0] for r in range(2, 10)}
    assert price == {2: "price_unparseable", 3: "price_unparseable", 4: "item",  # -0 is 0
                     5: "price_unparseable", 6: "price_unparseable", 7: "price_negative",
                     8: "price_unparseable", 9: "price_negative"}
    qty = {r: rejects[r][0] for r in range(10, 18)}
    assert qty == {10: "quantity_unparseable", 11: "quantity_unparseable",
                   12: "quantity_not_positive", 13: "quantity_unparseable",
                   14: "quantity_unparseable", 15: "quantity_unparseable",
                   16: "quantity_unparseable", 17: "quantity_not_positive"}
    assert rejects[3] == ("price_unparseable", "单价(元)", "column 单价(元): not a number '1e309'")
    assert {r: rejects.get(r, ("item",))[0] for r in (18, 19, 20)} == {
        18: "date_invalid", 19: "date_invalid", 20: "item"}
    assert "'2024-02-30'" in rejects[18][2] and rejects[18][1] == "合同日期"
    counts = check_database(db)
    assert counts["line_items"] + counts["rejects"] + counts["non_items"] == len(rows)


def test_duplicate_headers_first_column_wins_and_both_are_kept_raw(tmp_path):
    path = _raw(tmp_path, "dup.csv", C.csv_bytes([C.HEADER + ["单价(元)"], C.ROW + ["1"]]))
    db = tmp_path / "f.duckdb"
    assert _score(path, db).code == 0
    con = duckdb.connect(str(db), read_only=True)
    price, raw = con.execute("SELECT unit_price_cny, raw FROM line_items").fetchone()
    con.close()
    assert price == 2_450_000.0
    cells = json.loads(raw)
    assert (cells["单价(元)"], cells["单价(元) (2)"]) == ("2450000", "1")


def test_formulas_with_and_without_cached_values(tmp_path):
    """Excel stores a formula's last result; a file never opened in Excel has none. The cached
    value is read; a missing one is an empty cell (the unit price still makes the line)."""
    db = tmp_path / "f.duckdb"
    for cached in (True, False):
        path = C.formulas_xlsx(tmp_path / f"f_{cached}.xlsx", cached=cached)
        assert _score(path, db).code == 0
    con = duckdb.connect(str(db), read_only=True)
    got = con.execute("""SELECT regexp_extract(source_file, 'f_(\\w+)\\.xlsx', 1), source_row,
                                unit_price_cny, total_cny FROM line_items ORDER BY ALL""").fetchall()
    con.close()
    assert got == [("False", 2, 2_450_000.0, None), ("False", 3, 4_800_000.0, None),
                   ("True", 2, 2_450_000.0, 19_600_000.0), ("True", 3, 4_800_000.0, 4_800_000.0)]
    check_database(db)


def test_formula_price_without_cached_value_is_a_reject_naming_the_row(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["货物名称", "数量", "单价"])
    ws.append(["GPU服务器", 2, "=1000*2"])  # never computed: no cached value
    ws.append(["交换机", 1, 5000])
    path = tmp_path / "priced_by_formula.xlsx"
    wb.save(path)
    db = tmp_path / "f.duckdb"
    assert _score(path, db).code == 0
    assert _rejects(db) == {2: ("price_missing", "单价", "column 单价: empty")}
    check_database(db)


def test_merged_header_and_very_hidden_sheet(tmp_path):
    path = C.merged_hidden_xlsx(tmp_path / "merged.xlsx")
    db = tmp_path / "f.duckdb"
    assert _score(path, db).code == 0
    con = duckdb.connect(str(db), read_only=True)
    got = con.execute("""SELECT source_sheet, source_row, item_name, unit_price_cny, total_cny
                         FROM line_items ORDER BY ALL""").fetchall()
    con.close()
    assert got == [("清单", 3, "GPU服务器", 2_450_000.0, 19_600_000.0),
                   ("隐藏", 2, "交换机", 100_000.0, None)]
    check_database(db)
