"""Each reader and file shape, on real files written by openpyxl, pyarrow and plain bytes."""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import pytest

from iccaudit.core import schema
from iccaudit.normalise import READERS, IngestError, ingest


def _validate_items(batch) -> None:
    """Every item is a valid schema.LineItem once run_id/item_id are added."""
    for i, rec in enumerate(batch.items.to_dict("records"), start=1):
        clean = {
            k: None if (v is pd.NA or (isinstance(v, float) and math.isnan(v))) else v
            for k, v in rec.items()
        }
        schema.LineItem.model_validate({**clean, "run_id": "r", "item_id": i})


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings(files, read, table, encoding):
    header, rows = table
    path = files.text("t.csv", [header, *rows], encoding=encoding)
    batch = read(path)
    assert batch.files.loc[0, "encoding"] == encoding
    assert batch.items["item_name"].tolist() == ["GPU服务器", "冷板式液冷系统"]
    assert batch.items["brand"].tolist() == ["浪潮", "英维克"]
    _validate_items(batch)


@pytest.mark.parametrize("sep", [",", "\t", ";"])
def test_csv_delimiter_sniffed(files, read, table, sep):
    header, rows = table
    rows[0][6] = "2,450,000" if sep != "," else rows[0][6]  # commas inside a field too
    path = files.text("t.csv", [["采购清单"], header, *rows], sep=sep)
    batch = read(path)
    assert batch.items["unit_price_cny"].tolist() == [2_450_000.0, 4_800_000.0]
    assert batch.items["source_row"].tolist() == [3, 4]


def test_tsv_reader(files, read, table):
    header, rows = table
    batch = read(files.text("t.tsv", [header, *rows], sep="\t"))
    assert batch.files.loc[0, "format"] == "tsv"
    assert len(batch.items) == 2


def test_csv_source_row_counts_editor_lines(files, read, table):
    header, rows = table
    rows[0][3] = "NF5688M7\n8×H100\n2TB"  # a quoted cell over three lines
    path = files.text("t.csv", [header, *rows])
    batch = read(path)
    assert batch.items["source_row"].tolist() == [2, 5]
    assert batch.non_items.set_index("source_row")["kind"].to_dict() == {1: "header"}


def test_csv_blank_lines_are_blank_non_items(files, read, table):
    header, rows = table
    path = files.raw("t.csv", (",".join(header) + "\n\n" + ",".join(rows[0]) + "\n").encode())
    batch = read(path)
    assert batch.items["source_row"].tolist() == [3]
    assert batch.non_items.set_index("source_row")["kind"].to_dict() == {1: "header", 2: "blank"}


def test_xlsx_title_rows_merges_hidden_sheets(files, read, rows_of):
    header = ["序号", "货物名称", "规格型号", "数量", "单价（万元）", "总价（万元）", "供应商"]
    sheet = [
        ["XX市智算中心算力建设项目 采购清单"],
        ["项目编号：ZJ-2024-001", None, None, None, "算力规模：≥500 PFLOPS"],
        ["项目名称：XX智算中心一期"],
        header,
        [1, "GPU服务器", "NF5688M7", 8, 245, 1960, "甲公司"],
        [2.0, "GPU服务器", "NF5688M7", 2, 245, 490, None],
        [3, "液冷", "CDU", 1, 48, 48, None],
    ]
    path = files.xlsx(
        "a.xlsx",
        {"封面": [["采购文件"], [None], ["某某单位"]], "清单": sheet,
         "隐藏": [header, [1, "交换机", "X", 2, 10, 20, "乙公司"]]},
        merges={"清单": ["A1:G1", "G5:G7"]},
        hidden=("隐藏",),
    )
    batch = read(path)
    rec = batch.files.iloc[0]
    assert (rec["format"], rec["sheets"], rec["status"]) == ("xlsx", 2, "ok")
    items = batch.items[batch.items["source_sheet"] == "清单"]
    assert items["source_row"].tolist() == [5, 6, 7]
    assert set(items["tender_id"]) == {"ZJ-2024-001"}
    assert set(items["project_name"]) == {"XX智算中心一期"}
    assert set(items["claimed_pflops"]) == {500.0}
    assert items["supplier"].tolist() == ["甲公司"] * 3  # merged G5:G7 filled from G5
    assert items["line_no"].tolist() == ["1", "2", "3"]  # 2.0 shown as "2"
    assert items["unit_price_cny"].tolist() == [2_450_000.0, 2_450_000.0, 480_000.0]
    hidden = batch.items[batch.items["source_sheet"] == "隐藏"]
    assert hidden["item_name"].tolist() == ["交换机"]
    assert hidden["tender_id"].tolist() == ["a"]  # no title block there: the file stem
    kinds = batch.non_items.groupby(["source_sheet", "kind"]).size().to_dict()
    assert kinds[("清单", "title")] == 3 and kinds[("清单", "header")] == 1
    assert kinds[("封面", "note")] == 2 and kinds[("封面", "blank")] == 1
    _validate_items(batch)


def test_xlsx_merged_header_cells_and_sub_header(files, read):
    sheet = [
        ["序号", "货物名称", "数量", "价格（万元）", None],
        [None, None, None, "单价", "总价"],
        [1, "GPU服务器", 8, 245, 1960],
    ]
    path = files.xlsx("m.xlsx", {"S": sheet}, merges={"S": ["A1:A2", "B1:B2", "C1:C2", "D1:E1"]})
    batch = read(path)
    item = batch.items.iloc[0]
    assert item["item_name"] == "GPU服务器"
    assert item["unit_price_cny"] == 2_450_000.0  # 万元 from the parent header cell
    assert item["total_cny"] == 19_600_000.0
    assert sorted(batch.non_items["source_row"]) == [1, 2]
    assert set(batch.non_items["kind"]) == {"header"}


def test_xlsx_date_and_number_cells(files, read):
    sheet = [
        ["名称", "数量", "单价", "合同日期", "生产日期"],
        ["服务器", 2, 1234.5, dt.datetime(2024, 3, 5), dt.date(2023, 1, 2)],
        ["服务器", 1, 1000, 45356, "2023年1月2日"],  # an Excel serial date number
    ]
    batch = read(files.xlsx("d.xlsx", {"S": sheet}))
    assert batch.items["date"].tolist() == [dt.date(2024, 3, 5)] * 2
    assert batch.items["manufacture_date"].tolist() == [dt.date(2023, 1, 2)] * 2
    assert batch.items["unit_price_cny"].tolist() == [1234.5, 1000.0]


def test_parquet_reader(files, read):
    path = files.parquet("p.parquet", {
        "项目编号": ["T-1", "T-2"],
        "货物名称": ["GPU服务器", "液冷"],
        "数量": [8, 1],
        "单价": [2_450_000.0, None],
        "金额": [None, 4_800_000.0],
        "日期": [dt.date(2024, 3, 5), dt.date(2024, 3, 6)],
    })
    batch = read(path)
    assert batch.files.loc[0, "format"] == "parquet"
    assert batch.items["tender_id"].tolist() == ["T-1", "T-2"]  # several ids kept per row
    assert batch.items["unit_price_cny"].tolist() == [2_450_000.0, 4_800_000.0]
    assert batch.items["source_row"].tolist() == [1, 2]
    assert batch.items["source_sheet"].isna().all()
    assert json.loads(batch.items["raw"][0])["货物名称"] == "GPU服务器"
    _validate_items(batch)


def test_json_items_object_with_tender_keys(files, read):
    doc = {
        "项目编号": "HB-77",
        "project_name": "某智算中心",
        "算力规模": "≥300 PFLOPS",
        "items": [
            {"name": "GPU服务器", "qty": 4, "unit_price": 2_400_000, "brand": "浪潮"},
            {"name": "液冷", "qty": 1, "unit_price": "面议"},
        ],
    }
    batch = read(files.json("j.json", doc))
    assert batch.items["tender_id"].tolist() == ["HB-77"]
    assert batch.items["project_name"].tolist() == ["某智算中心"]
    assert batch.items["claimed_pflops"].tolist() == [300.0]
    assert batch.rejects["reason"].tolist() == ["price_missing"]
    assert batch.rejects["source_row"].tolist() == [2]


def test_json_list_and_jsonl(files, read):
    recs = [{"货物名称": "A", "数量": "2台", "单价": "¥1,000"}, {"货物名称": "B", "数量": 1,
                                                               "单价": 5}]
    b1 = read(files.json("l.json", recs))
    assert b1.items["unit_price_cny"].tolist() == [1000.0, 5.0]
    assert b1.items["unit"].tolist() == ["台", None]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in recs[:1]) + "\n\n" + json.dumps(
        recs[1], ensure_ascii=False) + "\n"
    b2 = read(files.raw("l.jsonl", body.encode()))
    assert b2.items["source_row"].tolist() == [1, 3]
    assert b2.non_items["kind"].tolist() == ["blank"]


def test_folder_scan_sorted_and_skips(files, read, table):
    header, rows = table
    files.text("b/2.csv", [header, rows[0]])
    files.text("a/1.csv", [header, rows[1]])
    files.raw("a/readme.doc", b"x")
    files.raw("a/.hidden.csv", b"x")
    files.raw("a/~$lock.xlsx", b"x")
    files.raw(".git/config.csv", b"x")
    batch = read(files.root)
    ok = batch.files[batch.files["status"] == "ok"]
    names = [p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1] for p in ok["source_file"]]
    assert names == ["a/1.csv", "b/2.csv"]
    reasons = {p.rsplit("/", 1)[-1]: r for p, r in batch.skipped}
    assert reasons["readme.doc"].startswith("unsupported file type .doc")
    assert reasons[".hidden.csv"] == "hidden file"
    assert reasons["~$lock.xlsx"] == "Excel lock file"
    assert reasons[".git"] == "hidden folder"
    # every file found is accounted in the files table; a hidden folder is not a file
    skipped = batch.files[batch.files["status"] == "skipped"]
    assert sorted(p.rsplit("/", 1)[-1] for p in skipped["source_file"]) == [
        ".hidden.csv", "readme.doc", "~$lock.xlsx"]
    assert skipped["error"].str.len().gt(0).all() and (skipped["rows_read"] == 0).all()


def test_missing_path_is_ingest_error(tmp_path):
    with pytest.raises(IngestError, match="no such file or folder"):
        ingest([tmp_path / "nope.csv"])


def test_explicit_unsupported_file_is_reported(files, read):
    batch = read(files.raw("x.doc", b"x"))
    assert batch.skipped and batch.errors == [f"{files.root / 'x.doc'}: {batch.skipped[0][1]}"]
    assert batch.files["status"].tolist() == ["skipped"]


def test_registry_is_explicit():
    assert {".csv", ".tsv", ".xlsx", ".parquet", ".json", ".jsonl"} <= set(READERS)


def test_content_hash_and_progress(files, table, capsys):
    header, rows = table
    path = files.text("t.csv", [header, *rows])
    batch = ingest([path], progress=True)
    import hashlib

    assert batch.files.loc[0, "content_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert capsys.readouterr().out == ""  # the progress bar goes to stderr only


@pytest.mark.parametrize("chunk", [2, 3, 5, 64])
def test_text_scan_matches_a_whole_file_reading_at_any_chunk_size(tmp_path, monkeypatch, chunk):
    """Line ends, blank lines and lone CRs are found across chunk boundaries (the scan reads
    in chunks and skips its CR searches in chunks without a CR)."""
    import hashlib
    import random

    from iccaudit.read import large_text as readers

    monkeypatch.setattr(readers, "_SCAN_CHUNK", chunk)
    rng = random.Random(chunk)
    for i in range(120):
        # half the files without a CR at all: the scan's cheaper path for such text
        data = bytes(rng.choice(b"ab\n\r\n," if i % 2 else b"ab\n,")
                     for _ in range(rng.randint(0, 40)))
        path = tmp_path / f"f{i}.csv"
        path.write_bytes(data)
        scan = readers.scan_text(path)
        assert scan.sha256 == hashlib.sha256(data).hexdigest()
        assert scan.newlines == data.count(b"\n")
        assert scan.ends_with_newline == data.endswith(b"\n")
        assert scan.blank_lines == (data.startswith((b"\n", b"\r\n")) or b"\n\n" in data
                                    or b"\n\r\n" in data), data
        assert scan.lone_cr == (data.count(b"\r") != data.count(b"\r\n")), data


def test_holds_byte_reads_only_the_cells_of_sliced_and_chunked_text():
    """The line-break test of streamed batches: the bytes between the first and the last
    cell's offsets, whatever the slice or the chunks (a blanked cell's bytes may count: the
    caller then counts exactly)."""
    import pyarrow as pa

    from iccaudit.read import cells as readers

    cells = pa.array(["a\nb", "cd", None, "", "ef", "g\n"], pa.large_string())
    assert readers._holds_byte(cells, 0x0A)
    assert not readers._holds_byte(cells.slice(1, 4), 0x0A)  # "cd" .. "ef" only
    assert readers._holds_byte(cells.slice(4), 0x0A)
    assert not readers._holds_byte(pa.chunked_array([cells.slice(1, 2), cells.slice(3, 2)]),
                                   0x0A)
    assert readers._holds_byte(pa.chunked_array([cells.slice(1, 1), cells.slice(5)]), 0x0A)
    assert not readers._holds_byte(pa.chunked_array([], pa.large_string()), 0x0A)
    assert not readers._holds_byte(pa.nulls(3, pa.large_string()), 0x0A)
    assert readers._holds_byte(cells, ord("e")) and not readers._holds_byte(cells, ord("z"))
