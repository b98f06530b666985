"""Files of records with a known header: Parquet, JSON (a list of objects, or an object with
the list under a known key and tender-level keys beside it) and JSON lines.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit.read.base import FileReadError, RawTable, ReadResult, first_line
from iccaudit.read.cells import MIDNIGHT, objects_to_columns, objects_to_text, text_array
from iccaudit.read.ocds import looks_like_ocds, read_ocds
from iccaudit.read.text import decode

# ---------------------------------------------------------------- Parquet and JSON


def _records_table(records: list, rows: np.ndarray, title: str) -> RawTable:
    """A list of JSON-like records to a table with a known header (the union of keys)."""
    records = [r if isinstance(r, dict) else {"(value)": r} for r in records]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    header = [str(c) for c in frame.columns]
    columns = objects_to_columns(frame.to_numpy(dtype=object))
    return RawTable(None, columns, rows, header=header, title=title)


def read_parquet(path: Path, data: bytes) -> ReadResult:
    """A Parquet file: column names are the header, one table."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise FileReadError(f"cannot read: {first_line(exc)}") from None
    columns = []
    for col in table.columns:
        if pa.types.is_floating(col.type):  # NaN is how pandas writes "missing"
            col = pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
        try:
            text = pc.replace_substring_regex(pc.cast(col, pa.string()), MIDNIGHT, r"\1")
            columns.append(text_array(text.combine_chunks()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            values = np.array(col.to_pylist() + [None], dtype=object)[:-1]  # keep it 1-D
            columns.append(text_array(objects_to_text(values)))
    rows = np.arange(1, table.num_rows + 1, dtype="int64")
    raw = RawTable(None, columns, rows, header=[str(n) for n in table.column_names])
    return ReadResult("parquet", None, [raw])


#: Keys of a JSON object that hold the line items.
_ITEM_KEYS = ("items", "line_items", "lines", "records", "data", "明细", "清单")


def read_json(path: Path, data: bytes) -> ReadResult:
    """A JSON list of objects, or an object with the list under "items" plus tender keys."""
    text, encoding = decode(data)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileReadError(f"cannot read: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if looks_like_ocds(doc):
        return read_ocds([(doc, "")], "ocds", encoding)
    title = ""
    if isinstance(doc, dict):
        key = next((k for k in _ITEM_KEYS if isinstance(doc.get(k), list)), None)
        if key is None:
            raise FileReadError(
                "cannot read: a JSON object needs a list of line items under "
                + " / ".join(f'"{k}"' for k in _ITEM_KEYS[:3])
            )
        title = "\n".join(
            f"{k}：{v}" for k, v in doc.items() if k != key and isinstance(v, str | int | float)
        )
        doc = doc[key]
    if not isinstance(doc, list):
        raise FileReadError("cannot read: JSON must be a list of objects or {\"items\": [...]}")
    rows = np.arange(1, len(doc) + 1, dtype="int64")
    return ReadResult("json", encoding, [_records_table(doc, rows, title)])


def read_jsonl(path: Path, data: bytes) -> ReadResult:
    """One JSON object per line; blank lines are kept as blank rows; line numbers are rows."""
    text, encoding = decode(data)
    records: list = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            records.append({})
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise FileReadError(f"cannot read: line {n}: invalid JSON: {exc.msg}") from None
    first = next((r for r in records if r), None)
    if looks_like_ocds(first):  # JSON lines of releases, records or packages
        return read_ocds([(r, f"line {n}: ") for n, r in enumerate(records, start=1) if r],
                         "ocds", encoding)
    rows = np.arange(1, len(records) + 1, dtype="int64")
    return ReadResult("jsonl", encoding, [_records_table(records, rows, "")])

