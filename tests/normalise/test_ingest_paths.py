"""The fast paths give exactly what the general ones give.

- many files normalised as one batch = each file on its own;
- a long table normalised in chunks (two at a time, in threads) = in one piece, including the
  free text after its last line, which may fall in a later chunk than the values;
- a large CSV read by DuckDB = the same file read by the general (pandas) reader, with the
  same row numbers across quoted line breaks; files DuckDB cannot read exactly (blank lines,
  GB18030, old Mac line ends) fall back to the general reader.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import iccaudit.normalise.batches as ingest_module
import iccaudit.read.files as read_files
from iccaudit.normalise import ingest

from .conftest import HEADER, check_accounting


def _same(a, b) -> None:
    """Two batches hold the same items, rejects, non-items and accounting, value for value."""
    key = ["source_file", "source_sheet", "source_row"]

    def norm(frame: pd.DataFrame) -> list[tuple]:
        frame = frame.sort_values(key, na_position="first").reset_index(drop=True)
        return [tuple("<NA>" if v is None or (isinstance(v, float) and math.isnan(v)) else
                      (tuple(v) if isinstance(v, list) else v) for v in row)
                for row in frame.itertuples(index=False)]

    assert len(a.items) == len(b.items)
    assert norm(a.items) == norm(b.items)
    assert norm(a.rejects) == norm(b.rejects)
    assert norm(a.non_items) == norm(b.non_items)
    cols = ["source_file", "rows_read", "line_items", "rejects", "non_items", "status"]
    assert a.files[cols].to_dict("records") == b.files[cols].to_dict("records")


def _long_table(n: int, tail: int) -> list[list]:
    rows = [["采购清单 项目编号：ZB-1"], HEADER]
    for i in range(1, n + 1):
        price = "面议" if i % 7 == 0 else str(1000 + i)
        rows.append([str(i), f"GPU服务器{i % 5}", "浪潮", "NF5688M7", "2", "台", price, "",
                     "甲公司"])
        if i % 11 == 0:
            rows.append(["小计", "", "", "", "", "", "", "99"])
    rows += [[f"说明第{k}条：交货期三十天"] for k in range(tail)]
    return rows


@pytest.mark.parametrize("batch_rows", [3, 5, 40])
def test_a_long_table_in_chunks_equals_one_piece(files, monkeypatch, batch_rows):
    path = files.text("long.csv", _long_table(60, tail=12))
    whole = ingest([path])
    monkeypatch.setattr(ingest_module, "BATCH_ROWS", batch_rows)
    chunked = ingest([path])
    check_accounting(chunked)
    _same(whole, chunked)
    # the twelve lines of free text after the last item are notes, not rejects
    assert (whole.non_items["kind"] == "note").sum() == 12
    assert set(whole.rejects["reason"]) == {"price_missing"}


def test_many_files_in_one_batch_equal_each_file_alone(files):
    paths = [files.text(f"t{i}.csv", _long_table(5 + i, tail=i % 3)) for i in range(6)]
    paths.append(files.xlsx("t.xlsx", {"A": _long_table(4, 1), "B": [["备注"]]}))
    together = ingest(paths)
    alone = [ingest([p]) for p in paths]
    assert len(together.items) == sum(len(b.items) for b in alone)
    for path, one in zip(paths, alone, strict=True):
        mine = together.items[together.items["source_file"] == str(path)]
        assert mine["source_row"].tolist() == one.items["source_row"].tolist()
        assert mine["raw"].tolist() == one.items["raw"].tolist()
        assert (together.files.set_index("source_file").loc[str(path), "line_items"]
                == len(one.items))


def _large(monkeypatch) -> list:
    """Every CSV takes the large-file (DuckDB) path; the list records what it returned."""
    monkeypatch.setattr(read_files, "LARGE_TEXT_BYTES", 0)
    results: list = []
    real = read_files.read_large_text

    def recorded(*args, **kwargs):
        results.append(real(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(read_files, "read_large_text", recorded)
    return results


def test_duckdb_reader_equals_general_reader(files, monkeypatch):
    rows = _long_table(30, tail=2)
    rows[5][3] = "NF5688M7\n8卡 H800\n(二手)"  # a quoted cell over three lines
    rows[9][8] = '甲"乙"公司, 分公司'  # quotes and the delimiter inside a cell
    rows.append(["", "", "", "", "", "", "", "", "", "", ""])  # a ragged, empty last line
    path = files.text("q.csv", rows)
    general = ingest([path])
    taken = _large(monkeypatch)
    fast = ingest([path])
    assert taken and taken[0] is not None  # DuckDB read it
    _same(general, fast)
    assert fast.files["encoding"].tolist() == ["utf-8"]
    # row numbers count the editor lines of the quoted cell (lines 6-8)
    rows = set(fast.items["source_row"])
    assert {6, 9} <= rows and not {7, 8} & rows


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("blank.csv", "\n".join([",".join(HEADER), "", "1,GPU服务器,浪潮,X,2,台,100,,甲"]) + "\n"),
        ("gb.csv", ",".join(HEADER) + "\n1,GPU服务器,浪潮,X,2,台,100,,甲\n"),
        ("mac.csv", ",".join(HEADER) + "\r1,GPU服务器,浪潮,X,2,台,100,,甲\r"),
    ],
)
def test_files_duckdb_cannot_number_exactly_fall_back(files, monkeypatch, name, data):
    encoding = "gb18030" if name.startswith("gb") else "utf-8"
    path = files.raw(name, data.encode(encoding))
    general = ingest([path])
    taken = _large(monkeypatch)
    fast = ingest([path])
    assert taken == [None]  # the large-file reader declined, the general one read it
    _same(general, fast)
    assert fast.files["encoding"].tolist() == [encoding]
    assert len(fast.items) == 1


def test_large_reader_refuses_what_it_cannot_read_beyond_the_general_limit(files, monkeypatch):
    path = files.raw("gb_big.csv", (",".join(HEADER) + "\n1,GPU服务器,浪潮,X,2,台,100,,甲\n"
                                    ).encode("gb18030"))
    _large(monkeypatch)
    monkeypatch.setattr(read_files, "MAX_FILE_BYTES", 10)
    batch = ingest([path])
    assert batch.files["status"].tolist() == ["error"]
    assert "large-file reader" in batch.errors[0] and str(path) in batch.errors[0]


@pytest.mark.parametrize("stream_rows", [4, 9, 1000])
def test_streamed_file_equals_general_reader(files, monkeypatch, stream_rows):
    """Files beyond STREAM_TEXT_BYTES are read batch by batch (never whole in memory): same
    items, rejects, non-items and row numbers, trailing notes included."""
    from iccaudit.read import large_text as readers

    rows = _long_table(40, tail=9)
    rows[5][3] = "NF5688M7\n8卡 H800"  # a quoted line break: DuckDB's serial reader
    path = files.text("s.csv", rows)
    general = ingest([path])
    monkeypatch.setattr(read_files, "LARGE_TEXT_BYTES", 0)
    monkeypatch.setattr(read_files, "STREAM_TEXT_BYTES", 0)
    monkeypatch.setattr(readers, "STREAM_BATCH_ROWS", stream_rows)
    monkeypatch.setattr(ingest_module, "BATCH_ROWS", 5)
    streamed = ingest([path])
    check_accounting(streamed)
    _same(general, streamed)
    assert (streamed.non_items["kind"] == "note").sum() == 9


def test_streamed_file_that_cannot_be_read_to_the_end_is_a_file_error(files, monkeypatch):
    from iccaudit.read import large_text as readers

    rows = _long_table(30, tail=0)
    rows[25] = rows[25] + ["x"] * 20  # wider than the sampled rows: strict mode stops there
    path = files.text("w.csv", rows)
    monkeypatch.setattr(read_files, "LARGE_TEXT_BYTES", 0)
    monkeypatch.setattr(read_files, "STREAM_TEXT_BYTES", 0)
    monkeypatch.setattr(readers, "STREAM_BATCH_ROWS", 4)
    monkeypatch.setattr(readers, "_SAMPLE_BYTES", 200)  # sample the first lines only
    monkeypatch.setattr(read_files, "MAX_FILE_BYTES", 10)  # no general reader to fall to
    other = files.text("ok.csv", _long_table(3, tail=0))
    batch = ingest([path, other])
    status = dict(zip(batch.files["source_file"], batch.files["status"], strict=True))
    assert status == {str(path): "error", str(other): "ok"}
    assert not (batch.items["source_file"] == str(path)).any()  # none of its rows kept
    assert len(batch.items) == 3
    assert [e for e in batch.errors if str(path) in e]


@pytest.mark.parametrize("stream", [False, True], ids=["duckdb-read", "streamed"])
def test_a_nul_byte_deep_in_a_large_file_is_refused_like_the_general_reader_does(
        files, monkeypatch, stream):
    rows = _long_table(2000, tail=0)  # the NUL lies far beyond the sampled first 64 KB
    data = "\n".join(",".join(r) for r in rows).encode()
    cut = data.index(b"\n", len(data) - 200)
    path = files.raw("nul.csv", data[:cut] + b"\x00" + data[cut:])
    general = ingest([path])
    monkeypatch.setattr(read_files, "LARGE_TEXT_BYTES", 0)
    if stream:
        monkeypatch.setattr(read_files, "STREAM_TEXT_BYTES", 0)
    large = ingest([path])
    assert general.files["status"].tolist() == large.files["status"].tolist() == ["error"]
    assert general.errors == large.errors
    assert "NUL byte on line" in large.errors[0]


def test_a_file_whose_rows_do_not_add_up_is_an_error_and_none_of_its_rows_are_kept(
        files, monkeypatch):
    good = files.text("a.csv", _long_table(6, tail=1))
    bad = files.text("b.csv", _long_table(6, tail=1))
    real = ingest_module.normalise_plans

    def miscounting(plans):  # our bug, simulated: one row of b.csv counted twice
        out = real(plans)
        for i, p in enumerate(plans):
            if p.source_file == str(bad):
                out.counts[i, 0] += 1
        return out

    monkeypatch.setattr(ingest_module, "normalise_plans", miscounting)
    batch = ingest([good, bad])
    rec = batch.files.set_index("source_file")
    assert rec.loc[str(good), "status"] == "ok" and rec.loc[str(bad), "status"] == "error"
    assert "rows do not add up" in rec.loc[str(bad), "error"]
    for frame in (batch.items, batch.non_items):
        assert str(good) in set(frame["source_file"])
    for frame in (batch.items, batch.rejects, batch.non_items):
        assert str(bad) not in set(frame["source_file"])
    assert any("rows do not add up" in e for e in batch.errors)


@pytest.mark.parametrize("batch_rows", [4, 200])
def test_duckdb_reader_in_several_buffers_equals_general_reader(files, monkeypatch, batch_rows):
    """A large CSV comes back in one Arrow chunk per read buffer; the normaliser cuts its
    pieces inside those chunks (never across two) and nothing changes."""
    from iccaudit.read import large_text as readers

    path = files.text("long.csv", _long_table(90, tail=5))
    general = ingest([path])
    taken = _large(monkeypatch)
    monkeypatch.setattr(readers, "MIN_READ_BUFFER", 600)  # a few hundred bytes per buffer
    monkeypatch.setattr(readers, "READ_BUFFERS", 8)
    monkeypatch.setattr(ingest_module, "BATCH_ROWS", batch_rows)
    fast = ingest([path])
    assert taken and taken[0] is not None  # DuckDB read it
    first = taken[0].tables[0].columns[0]
    assert first.num_chunks > 3  # in several buffers, kept apart
    check_accounting(fast)
    _same(general, fast)
    assert (fast.non_items["kind"] == "note").sum() == 5


def test_pieces_of_a_chunked_table_never_straddle_two_chunks():
    import numpy as np
    import pyarrow as pa

    from iccaudit.normalise.plan import TablePlan, chunks

    col = pa.chunked_array([pa.array([str(i) for i in range(a, b)], pa.large_string())
                            for a, b in [(0, 7), (7, 7), (7, 12), (12, 20)]])
    plan = TablePlan(source_file="f", sheet=None, stem="f", rows_read=20,
                     rows=np.arange(20), cols=[col, col], shown=None, infos=[], names=[],
                     col={}, title=None, pre=None)
    parts = chunks(plan, 3)
    assert all(isinstance(c, pa.Array) for p in parts for c in p.cols)
    cut = [(int(p.rows[0]), int(p.rows[-1]) + 1) for p in parts]
    assert cut == [(0, 3), (3, 6), (6, 7), (7, 10), (10, 12), (12, 15), (15, 18), (18, 20)]
    assert [p.cols[0].to_pylist() for p in parts][3] == ["7", "8", "9"]
    assert [p.valued_later for p in parts] == [True] * 7 + [False]
    # a short chunked table comes back whole, as one array
    whole = chunks(plan, 100)
    assert len(whole) == 3  # still cut at its chunks (the empty one holds no rows)
    short = TablePlan(**{**plan.__dict__, "cols": [col.slice(0, 5)], "rows": np.arange(5)})
    (one,) = chunks(short, 100)
    assert isinstance(one.cols[0], pa.Array) and one.cols[0].to_pylist() == list("01234")


def test_one_layout_keeps_the_cells_as_raw_and_every_path_writes_the_same_json(files, tmp_path):
    """A batch of one header layout keeps ``raw`` as the cells themselves (a struct, no JSON
    text made during ingest); the pandas view, a batch mixed with other layouts, and the
    store all give the very JSON text json_object writes."""
    import json

    import pyarrow as pa

    from iccaudit import store

    rows = _long_table(12, tail=0)
    rows[4][8] = '含"引号"\\反斜杠'  # escaped in the JSON text
    path = files.text("one.csv", rows)
    other = files.text("other.csv", [["序号", "货物名称", "数量", "单价(元)"],
                                     ["1", "GPU服务器", "1", "100"]])
    alone = ingest([path])
    assert pa.types.is_struct(alone.items_arrow.schema.field("raw").type)
    texts = alone.items["raw"].tolist()
    assert sum('含"引号"\\反斜杠' in json.loads(t).values() for t in texts) == 1
    mixed = ingest([path, other])  # two layouts in one batch: JSON text throughout
    assert not pa.types.is_struct(mixed.items_arrow.schema.field("raw").type)
    assert mixed.items[mixed.items["source_file"] == str(path)]["raw"].tolist() == texts

    db = tmp_path / "f.duckdb"
    writer = store.RunWriter(db)
    lines = alone.items_arrow
    lines = lines.add_column(0, "item_id", pa.array(range(1, lines.num_rows + 1), pa.int64()))
    lines = lines.add_column(0, "run_id", pa.array(["r"] * lines.num_rows, pa.string()))
    store.insert_frame(writer.con, "line_items", lines)
    writer.commit()
    con = store.connect(db, read_only=True)
    assert [r[0] for r in con.execute("SELECT raw FROM line_items ORDER BY item_id")
            .fetchall()] == texts


def test_a_header_name_a_struct_cannot_hold_keeps_raw_as_text(files):
    """Repeated names after de-duplication, or a NUL in a name: raw is JSON text at once."""
    import json

    import pyarrow as pa

    path = files.json("odd.json", [{"货物名称": "GPU服务器", "数量": "2", "单价": "100",
                                    "备\u0000注": "x"}])
    batch = ingest([path])
    assert len(batch.items) == 1
    assert not pa.types.is_struct(batch.items_arrow.schema.field("raw").type)
    assert json.loads(batch.items["raw"][0]) == {"货物名称": "GPU服务器", "数量": "2",
                                                 "单价": "100", "备\u0000注": "x"}


def test_a_streamed_file_is_hashed_while_it_streams_and_checked_after(files, monkeypatch):
    """The hash and line scan of a streamed file run beside its batches; what the scan finds
    (here a blank line DuckDB would skip) fails the file after its last batch, keeping none
    of its rows, and both files get their content hash either way."""
    import hashlib

    from iccaudit.read import large_text as readers

    rows = _long_table(30, tail=0)
    good = files.text("good.csv", rows)
    text = "\n".join(",".join(r) for r in rows) + "\n"
    blank = files.raw("blank.csv", text.replace("\n", "\n\n", 1).encode())
    monkeypatch.setattr(read_files, "LARGE_TEXT_BYTES", 0)
    monkeypatch.setattr(read_files, "STREAM_TEXT_BYTES", 0)
    monkeypatch.setattr(readers, "STREAM_BATCH_ROWS", 7)
    monkeypatch.setattr(read_files, "MAX_FILE_BYTES", 10)  # no general reader to fall to
    batch = ingest([good, blank])
    files_ = batch.files.set_index("source_file")
    for p in (good, blank):
        assert files_.loc[str(p), "content_sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert files_.loc[str(good), "status"] == "ok"
    assert files_.loc[str(blank), "status"] == "error"
    assert "no blank lines" in files_.loc[str(blank), "error"]
    assert set(batch.items["source_file"]) == {str(good)}
    check_accounting(batch)


def test_staged_raw_is_the_json_of_every_layout(files, tmp_path, monkeypatch):
    """An out-of-core run stages ``raw`` as the cells of its first batch's header layout and
    the JSON of any other layout beside them; read back, each row's JSON is the text the
    in-memory ingest gives it."""
    import duckdb

    from iccaudit.core import schema
    from iccaudit.normalise import ParquetSink
    from iccaudit.store import ParquetRows

    long = files.text("a_long.csv", _long_table(30, tail=2))
    other = files.text("b_other.csv", [["序号", "设备名称", "规格型号", "数量", "单价（元）",
                                        "备注 \"引号\" \\ 反斜杠"],
                                       ["1", "液冷机柜", "LC-40", "2", "150000", "含\t安装"]])
    samples = sorted((Path(__file__).resolve().parents[2] / "data" / "samples" / "tenders"
                      ).glob("*.xlsx"))[:2]
    paths = [long, other, *samples]
    expected = ingest(paths).items
    monkeypatch.setattr(ingest_module, "BATCH_ROWS", 7)  # batches of one file each
    sink = ParquetSink(tmp_path / "staged.parquet")
    ingest(paths, sink=sink)
    con = duckdb.connect()
    beside = schema.RAW_JSON_BESIDE_CELLS
    cells, texts = con.execute(
        f"SELECT count(raw), count({beside}) FROM read_parquet(?)", [str(sink.path)]
    ).fetchone()
    assert cells == (expected["source_file"] == str(long)).sum() and texts > 0
    rows = ParquetRows(sink.path)
    assert beside not in rows.column_names and "raw" in rows.column_names
    got = con.execute(f"SELECT source_file, source_sheet, source_row, raw FROM {rows.sql()} "
                      "ORDER BY seq").fetchall()
    want = list(expected[["source_file", "source_sheet", "source_row", "raw"]]
                .itertuples(index=False, name=None))
    assert got == want
