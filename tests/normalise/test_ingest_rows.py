"""Row classification (non-items, rejects), tender ids, line numbers and the file limits."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import pytest

from iccaudit.core import schema
from iccaudit.normalise import tables as table
from iccaudit.read import excel as readers

HEADER = ["序号", "货物名称", "规格型号", "数量", "单位", "单价(元)", "总价(元)", "合同日期", "制冷量"]


def _row(no, name="GPU服务器", qty="8", price="2450000", total="", date="2024-03-05", cap=""):
    return [no, name, "NF5688M7", qty, "台", price, total, date, cap]


def test_totals_blanks_notes_sections_are_non_items(files, read, rows_of):
    path = files.text("t.csv", [
        ["XX项目采购清单"],                                        # 1 title
        HEADER,                                                   # 2 header
        ["一、计算设备"],                                          # 3 section heading
        _row("1"),                                                # 4 item
        _row("2", name="液冷", price="500000"),                   # 5 item
        ["", "", "", "", "", "", "", "", ""],                     # 6 blank
        ["小计", "", "", "", "", "", "2950000"],                  # 7 total
        ["(二)", "", "", "", ""],                                 # 8 section heading
        _row("3", price="100"),                                   # 9 item
        ["合 计", "", "", "", "", "", "2950100"],                 # 10 total, spaced
        ["", "总价合计：", "", "", "", "", "2950100"],            # 11 total in the name column
        ["大写：贰佰玖拾伍万零壹佰元整"],                          # 12 total in words
        ["Total", "", "", "", "", "", "2950100"],                 # 13
        ["备注：以上价格均含税"],                                   # 14 note
        ["说明", "交货期30天"],                                    # 15 note
        ["注：质保三年"],                                          # 16 note
        ["本表由供应商盖章后有效"],                                 # 17 trailing free text
    ])
    batch = read(path)
    kinds = batch.non_items.set_index("source_row")["kind"].to_dict()
    assert kinds == {1: "title", 2: "header", 3: "title", 6: "blank", 7: "total", 8: "title",
                     10: "total", 11: "total", 12: "total", 13: "total", 14: "note", 15: "note",
                     16: "note", 17: "note"}
    assert batch.items["source_row"].tolist() == [4, 5, 9]
    assert batch.rejects.empty
    assert set(batch.non_items["kind"]) <= set(schema.NON_ITEM_KINDS)


@pytest.mark.parametrize(
    ("cells", "reason", "column", "shown"),
    [
        ({"price": "面议"}, "price_missing", "单价(元)", "面议"),
        ({"price": "详见附件"}, "price_missing", "单价(元)", "详见附件"),
        ({"price": ""}, "price_missing", "单价(元)", None),
        ({"price": "1.2.3"}, "price_unparseable", "单价(元)", "1.2.3"),
        ({"price": "abc"}, "price_unparseable", "单价(元)", "abc"),
        ({"price": "1e309"}, "price_unparseable", "单价(元)", "1e309"),
        ({"price": "∞"}, "price_unparseable", "单价(元)", "∞"),
        ({"price": "NaN"}, "price_unparseable", "单价(元)", "NaN"),
        ({"price": "¥-5"}, "price_negative", "单价(元)", "¥-5"),
        ({"total": "abc"}, "price_unparseable", "总价(元)", "abc"),
        ({"qty": "0"}, "quantity_not_positive", "数量", "0"),
        ({"qty": "-1"}, "quantity_not_positive", "数量", "-1"),
        ({"qty": "几台"}, "quantity_unparseable", "数量", "几台"),
        ({"qty": ""}, "quantity_missing", "数量", None),
        ({"name": ""}, "name_missing", "货物名称", None),
        ({"date": "2024-02-30"}, "date_invalid", "合同日期", "2024-02-30"),
        ({"cap": "很大"}, "capacity_unparseable", "制冷量", "很大"),
    ],
)
def test_rejects_with_reasons(files, read, cells, reason, column, shown):
    path = files.text("t.csv", [HEADER, _row("1"), _row("2", **cells)])
    batch = read(path)
    assert batch.items["source_row"].tolist() == [2]
    rej = batch.rejects.iloc[0]
    assert (rej["source_row"], rej["reason"], rej["column"]) == (3, reason, column)
    assert reason in schema.REJECT_REASONS
    assert "\n" not in rej["detail"]
    if shown is not None:
        assert f"'{shown}'" in rej["detail"] and column in rej["detail"]
    assert json.loads(rej["raw"])["序号"] == "2"


def test_price_derivation_and_total_kept_as_stated(files, read, rows_of):
    path = files.text("t.csv", [
        HEADER,
        _row("1", price="", total="19600000"),       # unit price = total / quantity
        _row("2", price="2450000", total=""),        # total stays NULL
        _row("3", price="面议", total="4900000", qty="2"),
    ])
    items = rows_of(read(path).items)
    assert items[2]["unit_price_cny"] == 2_450_000.0 and items[2]["total_cny"] == 19_600_000.0
    assert items[3]["unit_price_cny"] == 2_450_000.0 and math.isnan(items[3]["total_cny"])
    assert items[4]["unit_price_cny"] == 2_450_000.0


def test_tender_id_column_title_or_stem(files, read):
    col = files.text("col.csv", [["项目编号", *HEADER], ["T-1", *_row("1")], ["T-2", *_row("2")],
                                 ["", *_row("3")]])
    title = files.text("title.csv", [["招标编号: ZB-2024-9", "", "算力规模：≥500 PFLOPS"], HEADER,
                                     _row("1")])
    stem = files.text("某项目清单.csv", [HEADER, _row("1")])
    b = read(col)
    assert b.items["tender_id"].tolist() == ["T-1", "T-2", "col"]
    b = read(title)
    assert b.items["tender_id"].tolist() == ["ZB-2024-9"]
    assert b.items["claimed_pflops"].tolist() == [500.0]
    assert read(stem).items["tender_id"].tolist() == ["某项目清单"]


def test_line_no_falls_back_to_source_row(files, read):
    path = files.text("t.csv", [["名称", "数量", "单价"], ["A", "1", "5"], ["B", "2", "6"]])
    assert read(path).items["line_no"].tolist() == ["2", "3"]


def test_serials_condition_unit_from_quantity(files, read):
    path = files.text("t.csv", [
        ["名称", "数量", "单价", "序列号", "成色"],
        ["RTX 4090服务器", "2台", "220000", "SN001, SN002；SN003、SN004", "95新"],
    ])
    item = read(path).items.iloc[0]
    assert item["serial_numbers"] == ["SN001", "SN002", "SN003", "SN004"]
    assert (item["unit"], item["condition"], item["quantity"]) == ("台", "95新", 2.0)


def test_value_too_long_is_a_reject(files, read, monkeypatch):
    long = "x" * (table.MAX_CELL_CHARS + 1)
    path = files.text("t.csv", [HEADER, _row("1"), [*_row("2")[:2], long, *_row("2")[3:]]])
    batch = read(path)
    rej = batch.rejects.iloc[0]
    assert (rej["reason"], rej["column"]) == ("value_too_long", "规格型号")
    assert str(table.MAX_CELL_CHARS + 1) in rej["detail"]


def test_repeated_header_rows_are_header_non_items(files, read):
    path = files.text("t.csv", [HEADER, _row("1"), HEADER, _row("2")])
    batch = read(path)
    assert batch.non_items["kind"].tolist() == ["header", "header"]
    assert len(batch.items) == 2


# ---------------------------------------------------------------- broken files and limits


def _error_of(batch) -> str:
    assert batch.files.loc[0, "status"] == "error"
    assert batch.files.loc[0, "rows_read"] == 0
    assert len(batch.errors) == 1 and "\n" not in batch.errors[0]
    return batch.errors[0]


def test_binary_garbage_named_csv(files, read):
    data = bytes(range(256)) * 64
    assert "binary data" in _error_of(read(files.raw("junk.csv", data)))


def test_corrupt_and_truncated_xlsx(files, read, table):
    header, rows = table
    good = files.xlsx("good.xlsx", {"S": [header, *rows]})
    cut = files.raw("cut.xlsx", good.read_bytes()[:500])
    assert "cannot read" in _error_of(read(cut))
    assert "cannot read" in _error_of(read(files.raw("text.xlsx", b"not a zip at all")))


def test_zip_bomb_refused_before_parsing(files, read, monkeypatch):
    monkeypatch.setattr(readers, "_XLSX_RATIO_FLOOR", 1024 * 1024)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (8 * 1024 * 1024))
    assert "zip bomb" in _error_of(read(files.raw("bomb.xlsx", buf.getvalue())))


def test_file_size_limit(files, read, monkeypatch, table):
    header, rows = table
    path = files.text("big.csv", [header, *rows])
    import iccaudit.read.files as ingest_pkg

    monkeypatch.setattr(ingest_pkg, "MAX_FILE_BYTES", 10)
    assert "limit" in _error_of(read(path))


def test_broken_file_does_not_stop_the_batch(files, read, table):
    header, rows = table
    files.raw("a_broken.xlsx", b"PK\x03\x04 broken")
    files.text("b_good.csv", [header, *rows])
    batch = read(files.root)
    assert batch.files["status"].tolist() == ["error", "ok"]
    assert len(batch.items) == 2 and len(batch.errors) == 1


def test_invalid_json_is_a_file_error(files, read):
    assert "invalid JSON" in _error_of(read(files.raw("x.json", b'[{"a": 1,]')))
    assert "line 2" in _error_of(read(files.raw("y.jsonl", b'{"a": 1}\n{oops\n')))


# ---------------------------------------------------------------- the bundled sample corpus

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "tenders"


def test_accounting_on_every_sample_file(read):
    batch = read(SAMPLES)
    assert len(batch.files) > 0
    assert (batch.files["rows_read"] == batch.files["line_items"] + batch.files["rejects"]
            + batch.files["non_items"]).all()
    assert len(batch.items) > 0
    assert set(batch.rejects["reason"]) <= set(schema.REJECT_REASONS)
    assert set(batch.non_items["kind"]) <= set(schema.NON_ITEM_KINDS)
