"""Fixtures for the ingest tests: real files written by real libraries into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from iccaudit.normalise import IngestBatch, ingest

#: A small canonical table used by several tests.
HEADER = ["序号", "货物名称", "品牌", "规格型号", "数量", "单位", "单价(元)", "总价(元)", "供应商"]
ROWS = [
    ["1", "GPU服务器", "浪潮", "NF5688M7", "8", "台", "2450000", "19600000", "甲公司"],
    ["2", "冷板式液冷系统", "英维克", "CDU-800", "1", "套", "4800000", "4800000", "甲公司"],
]


class Files:
    """Writers of tender files in one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def xlsx(self, name: str, sheets: dict[str, list[list]],
             merges: dict[str, list[str]] | None = None, hidden: tuple[str, ...] = ()) -> Path:
        """One sheet per entry, rows appended from row 1; merges like "A1:D1"."""
        wb = openpyxl.Workbook()
        wb.remove(wb.active)
        for sheet, rows in sheets.items():
            ws = wb.create_sheet(sheet)
            for row in rows:
                ws.append(row)
            for rng in (merges or {}).get(sheet, []):
                ws.merge_cells(rng)
            if sheet in hidden:
                ws.sheet_state = "hidden"
        path = self.root / name
        wb.save(path)
        return path

    def text(self, name: str, rows: list[list], encoding: str = "utf-8", sep: str = ",") -> Path:
        """Delimited text; cells holding the separator, quotes or newlines are quoted."""

        def cell(v) -> str:
            v = "" if v is None else str(v)
            if any(ch in v for ch in (sep, '"', "\n")):
                return '"' + v.replace('"', '""') + '"'
            return v

        body = "\n".join(sep.join(cell(v) for v in row) for row in rows) + "\n"
        return self.raw(name, body.encode(encoding))

    def parquet(self, name: str, columns: dict[str, list]) -> Path:
        path = self.root / name
        pq.write_table(pa.table(columns), path)
        return path

    def json(self, name: str, doc) -> Path:
        return self.raw(name, json.dumps(doc, ensure_ascii=False).encode("utf-8"))

    def raw(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def check_accounting(batch: IngestBatch) -> None:
    """rows_read = line_items + rejects + non_items per file, and the frames agree with it."""
    for rec in batch.files.to_dict("records"):
        assert rec["rows_read"] == rec["line_items"] + rec["rejects"] + rec["non_items"], rec
        src = rec["source_file"]
        assert (batch.items["source_file"] == src).sum() == rec["line_items"]
        assert (batch.rejects["source_file"] == src).sum() == rec["rejects"]
        assert (batch.non_items["source_file"] == src).sum() == rec["non_items"]


@pytest.fixture
def read():
    """Ingest paths, check the accounting invariant, return the batch."""

    def _read(*paths: Path, **kw) -> IngestBatch:
        batch = ingest(list(paths), **kw)
        assert not [e for e in batch.errors if "internal error" in e], batch.errors
        check_accounting(batch)
        return batch

    return _read


def by_row(frame) -> dict[int, dict]:
    """Records of a frame keyed by source_row."""
    return {r["source_row"]: r for r in frame.to_dict("records")}


@pytest.fixture
def rows_of():
    return by_row


@pytest.fixture
def table():
    """The small canonical table: (header, rows)."""
    return HEADER, [list(r) for r in ROWS]
