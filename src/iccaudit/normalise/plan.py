"""One raw table -> a :class:`TablePlan`: the header row found, the title block read, the data
rows left as Arrow for :func:`~iccaudit.normalise.rows.normalise_plans`.

The header is searched in the first rows only (``headers.HEADER_SCAN_ROWS``); a sheet without
one is a :class:`~iccaudit.normalise.tables.TableResult` whose rows are non-items.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from iccaudit.normalise import values as V
from iccaudit.normalise.headers import (
    HEADER_SCAN_ROWS,
    HeaderInfo,
    TitleInfo,
    interpret,
    is_header,
    missing_required,
    read_title,
)
from iccaudit.normalise.tables import (
    NON_ITEM_COLUMNS,
    TableResult,
    all_null,
    row_text,
    row_text_arrow,
    unique_names,
)
from iccaudit.read.base import RawTable


def _find_header(head: list[tuple[object, ...]], mapping: dict[str, str] | None
                 ) -> tuple[int | None, list[HeaderInfo]]:
    """(header row, infos) of the first qualifying row, or (None, best candidate infos)."""
    best: list[HeaderInfo] = []
    best_fields = -1
    for i in range(min(HEADER_SCAN_ROWS, len(head))):
        infos = [interpret(v if isinstance(v, str) else None, mapping) for v in head[i]]
        fields = {x.field for x in infos if x.field}
        if is_header(fields):
            return i, infos
        if len(fields) > best_fields:
            best, best_fields = infos, len(fields)
    return None, best


def _sub_header(row: tuple[object, ...], infos: list[HeaderInfo],
                mapping: dict[str, str] | None) -> list[HeaderInfo] | None:
    """Infos merged with a second header row (e.g. 价格(元) above 单价 | 总价), or None."""
    sub = [interpret(v if isinstance(v, str) else None, mapping) for v in row]
    present = {x.field for x in infos if x.field}
    new = {x.field for x in sub if x.field} - present
    filled = sum(isinstance(v, str) for v in row)
    mapped = sum(x.field is not None for x in sub)
    if not new or mapped * 2 < filled:
        return None
    merged = []
    for parent, child in zip(infos, sub, strict=True):
        if child.field and (parent.field is None or parent.field not in new):
            scale = child.scale if child.scale != 1.0 else interpret(parent.text).scale
            text = f"{parent.text}/{child.text}" if parent.text else child.text
            vat = child.includes_vat if child.includes_vat is not None else parent.includes_vat
            merged.append(HeaderInfo(text, child.field, scale, vat))
        else:
            merged.append(parent)
    return merged


def _headers_seen(infos: list[HeaderInfo]) -> str:
    seen = [x.text.strip() for x in infos if x.text.strip()]
    return ", ".join(seen[:25]) + (" …" if len(seen) > 25 else "") if seen else "(none)"


@dataclass
class TablePlan:
    """One table after header detection, ready for :func:`normalise_plans`.

    ``cols`` are the data rows' cells (merged ranges filled), one Arrow array per column;
    ``shown`` the same rows unfilled (the text a non-item shows), or None when equal to
    ``cols``. ``pre`` holds the non-items above the data (title block, header rows).
    """

    source_file: str
    sheet: str | None
    stem: str
    rows_read: int
    rows: np.ndarray  # source_row of every data row
    cols: list[pa.Array]
    shown: list[pa.Array] | None
    infos: list[HeaderInfo]
    names: list[str]
    col: dict[str, int]
    title: TitleInfo
    #: source_row, kind, text of the rows above the data; None when the data starts at once
    pre: dict[str, np.ndarray] | None
    #: this is a chunk of a longer table and a later chunk holds a row with a value, so none
    #: of its rows can be free text after the table's last line (see :func:`chunks`)
    valued_later: bool = False
    #: where each data row lies in its document (``RawTable.locations``), or None: ``sheet``
    locations: np.ndarray | None = None
    #: per data row: a non-item kind the reader knows (``RawTable.kinds``), or None
    kinds: np.ndarray | None = None

    def sheets(self) -> np.ndarray:
        """The ``source_sheet`` of every data row."""
        if self.locations is not None:
            return self.locations
        return np.full(len(self.rows), self.sheet, dtype=object)


def segments(cols: list[pa.Array | pa.ChunkedArray], n: int) -> list[int]:
    """Row counts of the stretches in which a table's columns are contiguous: one for arrays,
    one per chunk for the chunked columns of a large CSV (DuckDB's buffers)."""
    first = cols[0] if cols else None
    if isinstance(first, pa.ChunkedArray):
        return [len(c) for c in first.chunks if len(c)] or [n]
    return [n]


def contiguous(c: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array: a chunk itself when the rows lie in one (no copy)."""
    if not isinstance(c, pa.ChunkedArray):
        return c
    parts = [x for x in c.chunks if len(x)]
    if len(parts) == 1:
        return parts[0]
    return c.combine_chunks() if parts else pa.array([], c.type)


def chunks(plan: TablePlan, size: int) -> list[TablePlan]:
    """A table as consecutive chunks of at most ``size`` data rows (zero-copy slices), each
    with contiguous columns.

    A chunked column (a large CSV, one chunk per DuckDB buffer) is cut inside its chunks,
    each into pieces of even size, so no chunk of the table straddles two and nothing is
    copied. Every chunk but the last is marked ``valued_later`` (optimistically: the caller
    re-runs a chunk unmarked when the chunks after it turn out to hold no valued row).
    """
    n = len(plan.rows)
    spans = segments(plan.cols, n)
    if n <= size and len(spans) == 1:
        if isinstance(plan.cols[0] if plan.cols else None, pa.ChunkedArray):
            return [dataclasses.replace(
                plan, cols=[contiguous(c) for c in plan.cols],
                shown=None if plan.shown is None else [contiguous(c) for c in plan.shown])]
        return [plan]
    bounds = []
    at = 0
    for length in spans:
        k = -(-length // size)
        step = -(-length // k)
        bounds += [(start, min(at + length, start + step)) for start in range(at, at + length, step)]
        at += length
    out = []
    for start, end in bounds:
        out.append(dataclasses.replace(
            plan, rows=plan.rows[start:end],
            cols=[contiguous(c.slice(start, end - start)) for c in plan.cols],
            shown=None if plan.shown is None else [contiguous(c.slice(start, end - start))
                                                   for c in plan.shown],
            pre=plan.pre if start == 0 else None,
            locations=None if plan.locations is None else plan.locations[start:end],
            kinds=None if plan.kinds is None else plan.kinds[start:end],
            rows_read=plan.rows_read if start == 0 else 0,
            valued_later=end < n,
        ))
    return out


def plan_table(
    raw: RawTable, source_file: str, stem: str, mapping: dict[str, str] | None
) -> TablePlan | TableResult:
    """Find the header of one table; a :class:`TableResult` when it holds no line-item table.

    The work here is per table (the first rows only); everything per row happens in
    :func:`normalise_plans`, for all the tables of a batch at once.
    """
    n = len(raw.rows)
    sheet = raw.sheet
    shown_cols = raw.columns
    cols = raw.filled if raw.filled is not None and raw.header is None else raw.columns
    # the header is searched in the first rows only: those as Python tuples, the rest Arrow
    k = min(n, HEADER_SCAN_ROWS + 1)
    head = list(zip(*[c.slice(0, k).to_pylist() for c in cols], strict=True)) if cols else []

    if raw.header is None:
        h, infos = _find_header(head, mapping)
        header_rows = [] if h is None else [h]
        if h is not None and h + 1 < n:
            sub = _sub_header(head[h + 1], infos, mapping)
            if sub is not None:
                infos = sub
                header_rows.append(h + 1)
    else:
        h = -1
        infos = [interpret(name, mapping) for name in raw.header]
        header_rows = []

    fields = {x.field for x in infos if x.field}
    where = f"{source_file}" + (f" [sheet {sheet}]" if sheet else "")
    if h is None or not is_header(fields) or missing_required(fields):
        if h is None:
            problem = (
                f"{where}: no line-item table found (no row names an item and a price or "
                f"quantity); headers seen: {_headers_seen(infos)}; map them with --mapping"
            )
        else:
            miss = missing_required(fields) or ["item_name"]
            problem = (
                f"{where}: cannot find required column(s) {', '.join(miss)}; headers seen: "
                f"{_headers_seen(infos)}; map them with --mapping map.yaml "
                "(headers: {\"their header\": canonical_field})"
            )
        return _not_a_table(raw, source_file, problem, header_found=h is not None)

    data_start = (header_rows[-1] + 1) if header_rows else 0
    top = [c.slice(0, data_start) for c in shown_cols]
    pre_kind = np.where(all_null(top, data_start), "blank", "title").astype(object)
    pre_kind[header_rows] = "header"
    title_text = ""
    if h > 0:
        title_text = "\n".join(row_text([c.slice(0, h) for c in shown_cols]).tolist())
    title = read_title("\n".join(t for t in (raw.title, title_text) if t))
    pre = None
    if data_start:
        shown = row_text_arrow(top, limit=200) if top else pa.nulls(data_start, pa.string())
        shown = V.null_if_blank(shown)
        pre = {"source_row": np.asarray(raw.rows[:data_start], dtype="int64"),
               "kind": pre_kind, "text": shown.to_numpy(zero_copy_only=False)}
        if raw.locations is not None:
            pre["source_sheet"] = np.asarray(raw.locations[:data_start], dtype=object)

    col: dict[str, int] = {}  # field -> column position (first column wins)
    for j, info in enumerate(infos):
        if info.field and info.field not in col:
            col[info.field] = j
    return TablePlan(
        source_file=source_file, sheet=sheet, stem=stem, rows_read=n,
        rows=np.asarray(raw.rows[data_start:], dtype="int64"),
        cols=[c.slice(data_start) for c in cols],
        shown=None if cols is shown_cols else [c.slice(data_start) for c in shown_cols],
        infos=infos, names=unique_names(infos), col=col, title=title, pre=pre,
        locations=None if raw.locations is None
        else np.asarray(raw.locations[data_start:], dtype=object),
        kinds=None if raw.kinds is None else np.asarray(raw.kinds[data_start:], dtype=object),
    )



def _not_a_table(
    raw: RawTable, source_file: str, problem: str, header_found: bool
) -> TableResult:
    """A sheet without a line-item table: its rows are blank or note non-items."""
    n = len(raw.rows)
    blank = all_null(raw.columns, n)
    text = np.full(n, None, dtype=object)
    if raw.columns and n:
        text = V.null_if_blank(row_text_arrow(raw.columns, limit=200)).to_numpy(
            zero_copy_only=False)
    values = {
        "source_file": np.full(n, source_file, dtype=object),
        "source_sheet": (np.full(n, raw.sheet, dtype=object) if raw.locations is None
                         else np.asarray(raw.locations, dtype=object)),
        "source_row": np.asarray(raw.rows, dtype="int64"),
        "kind": np.where(blank, "blank", "note").astype(object),
        "text": text,
    }
    non_items = pd.DataFrame({c: values[c] for c in NON_ITEM_COLUMNS}, copy=False)
    return TableResult(non_items, n, problem, header_found=header_found)
