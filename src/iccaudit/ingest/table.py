"""One table of cell text -> line items, rejects and non-items, with every row accounted for.

The steps, all set-at-a-time over the table's rows:

1. fill merged ranges from their top-left cell (header cells too);
2. find the header row (the first of the first 30 rows naming an item and a price or quantity)
   and an optional sub-header row below it; rows above are the title block;
3. classify every data row: blank, repeated header, total (合计/小计/总计/大写), note (备注/说明/注：
   or trailing free text), section heading (一、 / (二) / 第三部分) - these are non-items;
4. parse the values of the remaining rows; a row with a value that cannot be read is a reject
   with one reason and a one-line detail, everything else is a line item.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit.core import schema
from iccaudit.core.duck import fetch_arrow
from iccaudit.ingest import values as V
from iccaudit.ingest.headers import (
    HEADER_SCAN_ROWS,
    HeaderInfo,
    TitleInfo,
    interpret,
    is_header,
    missing_required,
    read_title,
)
from iccaudit.ingest.readers import RawTable, duckdb_connection

#: Cells longer than this are not read as values: the row becomes a value_too_long reject.
MAX_CELL_CHARS = 32 * 1024

ITEM_COLUMNS = [c for c in schema.columns("line_items") if c not in ("run_id", "item_id")]
REJECT_COLUMNS = [c for c in schema.columns("rejects") if c != "run_id"]
NON_ITEM_COLUMNS = [c for c in schema.columns("non_items") if c != "run_id"]

# Patterns are matched against prepared text (NFKC, no whitespace, lower case), whole cell.
_TOTAL_RE = (
    r"(?:总价|价格|金额|报价|投标|本页|全部|以上)?(?:合计|小计|总计|共计)"
    r"(?:金额|价格|总价|总额|\(.*\)|[:：].*|[\d,.¥元万]+)?"
    r"|(?:grand|sub)?total(?:\W.*)?|(?:人民币|金额)?(?:大写)(?:[:：(].*)?|总价[:：].*"
)
_NOTE_RE = r"(?:备注|说明|注|附注|附|注意事项|特别说明|note|notes|remark|remarks)(?:[:：、.\d(].*)?"
_SECTION_RE = (
    r"(?:[一二三四五六七八九十]+[、.]|\([一二三四五六七八九十\d]+\)"
    r"|第[一二三四五六七八九十\d]+(?:部分|章|节|包|标段|批|项)).*"
)
_ARROW_TYPES = {
    "source_row": pa.int64(), "quantity": pa.float64(), "unit_price_cny": pa.float64(),
    "total_cny": pa.float64(), "capacity_kw": pa.float64(), "claimed_pflops": pa.float64(),
    "date": pa.date32(), "manufacture_date": pa.date32(), "price_includes_vat": pa.bool_(),
    "serial_numbers": pa.large_list(pa.large_string()),
    # DuckDB's JSON text as it comes (batches stay far below 2 GB); a batch of one header
    # layout keeps the cells themselves, a struct under the header names (see raw_text)
    "raw": pa.string(),
}
#: The Arrow types of the line items :func:`normalise_plans` returns (text: large_string).
ITEM_SCHEMA = pa.schema([(c, _ARROW_TYPES.get(c, pa.large_string())) for c in ITEM_COLUMNS])
_TEXT_FIELDS = ("item_name", "brand", "model", "spec", "unit", "supplier", "condition")


@dataclass
class TableResult:
    """A sheet without a line-item table: its rows as non-items, and ``problem`` saying why."""

    non_items: pd.DataFrame
    rows_read: int
    problem: str
    #: a header row was found but required columns are missing (worth telling the user)
    header_found: bool = False


def empty_frame(columns: list[str]) -> pd.DataFrame:
    """A frame with the given columns and no rows."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def row_text_arrow(cols: list[pa.Array], limit: int | None = None) -> pa.Array:
    """Each row's non-empty cells joined by " | " (one Arrow join over the columns)."""
    sep = pa.scalar("\x1f", pa.large_string())
    joined = pc.binary_join_element_wise(*cols, sep, null_handling="replace",
                                         null_replacement="")
    joined = pc.replace_substring_regex(joined, "\x1f+", " | ")
    joined = pc.utf8_trim(joined, " |\x1f")
    if limit:
        joined = pc.utf8_slice_codeunits(joined, 0, limit)
    return joined


def row_text(frame: pd.DataFrame | list[pa.Array], limit: int | None = None) -> pd.Series:
    """:func:`row_text_arrow` as a Series of Python strings aligned with the frame's rows."""
    if isinstance(frame, pd.DataFrame):
        index = frame.index
        cols = [V.arrow(frame.iloc[:, j]) for j in range(frame.shape[1])]
        n = len(frame)
    else:
        cols = frame
        n = len(cols[0]) if cols else 0
        index = pd.RangeIndex(n)
    if not cols or n == 0:
        return pd.Series("", index=index, dtype=object)
    joined = row_text_arrow(cols, limit)
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=index, dtype=object)


def _unique_names(infos: list[HeaderInfo]) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for j, info in enumerate(infos):
        name = info.text.strip() or f"col{j + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        names.append(name)
    return names


def _raw_json(cols: list[pa.Array], names: list[str]) -> pa.Array:
    """Each row as JSON {original header: cell text}, built by DuckDB's json_object.

    The header texts are bound as parameters, never formatted into the SQL. The result stays
    in Arrow (no Python string per row).
    """
    n = len(cols[0]) if cols else 0
    if n == 0:
        return pa.array([], pa.string())
    table = pa.table({f"c{j}": c for j, c in enumerate(cols)})
    pairs = ", ".join(f"${j + 1}::VARCHAR, c{j}" for j in range(len(cols)))
    con = duckdb_connection()
    con.register("cells", table)
    try:
        out = fetch_arrow(con, f"SELECT json_object({pairs})::VARCHAR AS j FROM cells",
                          names).column("j")
    finally:
        con.unregister("cells")
    return out  # chunked as DuckDB made it: no copy of the JSON text


def raw_text(raw: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A ``raw`` column as JSON text: a struct column (the cells under their header names,
    as the large-file path keeps them) is written by DuckDB's ``to_json``, the text
    ``json_object`` writes for the same cells; text passes through."""
    if not pa.types.is_struct(raw.type):
        return raw
    if len(raw) == 0:
        return pa.array([], pa.string())
    con = duckdb_connection()
    con.register("raw_cells", pa.table({"raw": raw}))
    try:
        return fetch_arrow(con, f"SELECT {schema.RAW_CELLS_AS_JSON} AS j FROM raw_cells"
                           ).column("j")
    finally:
        con.unregister("raw_cells")


def with_raw_text(items: pa.Table) -> pa.Table:
    """``items`` with its ``raw`` column as JSON text (see :func:`raw_text`)."""
    if not schema.raw_is_cells(items.schema):
        return items
    i = items.schema.get_field_index("raw")
    return items.set_column(i, "raw", raw_text(items.column(i)))


def _find_header(head: list[tuple], mapping: dict[str, str] | None):
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


def _sub_header(row: tuple, infos: list[HeaderInfo], mapping) -> list[HeaderInfo] | None:
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
    pre_kind = np.where(_all_null(top, data_start), "blank", "title").astype(object)
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

    col: dict[str, int] = {}  # field -> column position (first column wins)
    for j, info in enumerate(infos):
        if info.field and info.field not in col:
            col[info.field] = j
    return TablePlan(
        source_file=source_file, sheet=sheet, stem=stem, rows_read=n,
        rows=np.asarray(raw.rows[data_start:], dtype="int64"),
        cols=[c.slice(data_start) for c in cols],
        shown=None if cols is shown_cols else [c.slice(data_start) for c in shown_cols],
        infos=infos, names=_unique_names(infos), col=col, title=title, pre=pre,
    )


def _all_null(cols: list[pa.Array], n: int) -> np.ndarray:
    """Per row: every cell empty."""
    if not cols:
        return np.ones(n, dtype=bool)
    valid = [pc.is_valid(c).to_numpy(zero_copy_only=False) for c in cols]
    return ~np.logical_or.reduce(valid)


@dataclass
class BatchResult:
    """The rows of a batch of tables split three ways, and the counts per table."""

    items: pa.Table
    rejects: pd.DataFrame
    non_items: pd.DataFrame
    #: per plan (in order): line items, rejects, non-items
    counts: np.ndarray
    #: per plan: whether any data row holds a price or a quantity
    valued: np.ndarray
    #: rejects that are free text after a chunk's last valued row (plan, source_row, text)
    tail: pd.DataFrame | None = None


def _per_row(values: list, sizes: np.ndarray, dtype=object) -> np.ndarray:
    """One value per table repeated over the table's rows."""
    return np.repeat(np.asarray(values, dtype=dtype), sizes)


def _per_table(tid: np.ndarray, values: list[str | None]) -> pa.Array:
    """Per row: the text of its table (``values[tid]``), built in Arrow, not as objects."""
    dictionary = pa.array(values, type=pa.large_string())
    return pa.DictionaryArray.from_arrays(pa.array(tid, pa.int32()),
                                          dictionary).dictionary_decode()


def _max_bytes(c: pa.Array) -> int:
    """The longest cell of a string column in bytes, read from its offsets."""
    if len(c) == 0:
        return 0
    if c.type not in (pa.large_string(), pa.string()):
        return np.iinfo("int64").max  # not plain text: count characters
    width = "int64" if c.type == pa.large_string() else "int32"
    offsets = np.frombuffer(c.buffers()[1], dtype=width)[c.offset: c.offset + len(c) + 1]
    return int(np.diff(offsets).max())


def _equals_header(c: pa.Array, htext: list[str], tid: np.ndarray) -> np.ndarray:
    """Per row: the cell, stripped, is its table's header text for this column."""
    if len(set(htext)) > 1:  # tables of several layouts: the header text per row
        h = _per_table(tid, [x or None for x in htext])
        return pc.equal(pc.utf8_trim_whitespace(c), h).fill_null(False).to_numpy(
            zero_copy_only=False)
    # one header text: only cells that contain it can equal it stripped (no copy of the rest)
    out = np.zeros(len(c), dtype=bool)
    if not htext[0]:
        return out
    hit = np.flatnonzero(pc.match_substring(c, htext[0]).fill_null(False).to_numpy(
        zero_copy_only=False))
    if len(hit):
        out[hit] = pc.equal(pc.utf8_trim_whitespace(c.take(pa.array(hit))), htext[0]
                            ).fill_null(False).to_numpy(zero_copy_only=False)
    return out


def _trimmed(c: pa.Array) -> pa.Array:
    """Cell text stripped, empty as null; the column itself (no copy) when no distinct text
    needs either."""
    uniq, inv = V.distinct(c)
    trimmed = V.null_if_blank(pc.utf8_trim_whitespace(uniq))
    if (trimmed.null_count == uniq.null_count
            and pc.all(pc.equal(trimmed, uniq).fill_null(True)).as_py()):
        return c
    return trimmed.take(pa.array(inv))


def _concat(arrays: list[pa.Array]) -> pa.Array:
    if len(arrays) == 1:
        return arrays[0]
    return pa.concat_arrays(arrays)


def _nulls(n: int) -> pa.Array:
    return pa.nulls(n, pa.large_string())


def normalise_plans(plans: list[TablePlan]) -> BatchResult:
    """Classify and parse the data rows of many tables at once (set-at-a-time over the batch).

    Every per-table fact (header texts, column units, VAT wording, title-block tender id and
    compute claim, the file name) becomes a per-row array, so the cost is one pass of each
    kernel over the batch, not one per table: that is what makes thousands of small tender
    files fast.
    """
    if not plans:
        return BatchResult(ITEM_SCHEMA.empty_table(), empty_frame(REJECT_COLUMNS),
                           empty_frame(NON_ITEM_COLUMNS), np.zeros((0, 3), "int64"),
                           np.zeros(0, bool))
    sizes = np.array([len(p.rows) for p in plans], dtype="int64")
    m = int(sizes.sum())
    T = len(plans)
    tid = np.repeat(np.arange(T), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")
    pos = np.arange(m) - np.repeat(starts, sizes)
    rows = np.concatenate([p.rows for p in plans]) if T else np.zeros(0, "int64")
    W = max((len(p.cols) for p in plans), default=0)

    def stack(get) -> pa.Array:
        """One Arrow array over the batch: ``get(plan)`` or nulls for each table."""
        parts = [get(p) for p in plans]
        return _concat([x if x is not None else _nulls(len(p.rows))
                        for x, p in zip(parts, plans, strict=True)]) if T else _nulls(0)

    acols = [stack(lambda p, j=j: p.cols[j] if j < len(p.cols) else None) for j in range(W)]

    stacked: dict[str, pa.Array] = {}

    def field(f: str) -> pa.Array:
        if f not in stacked:
            stacked[f] = stack(lambda p: p.cols[p.col[f]] if f in p.col else None)
        return stacked[f]

    def scale(f: str) -> np.ndarray:
        return _per_row([p.infos[p.col[f]].scale if f in p.col else 1.0 for p in plans],
                        sizes, dtype="float64")

    def name_of(f: str | None) -> np.ndarray:
        """Per row: the original header of field ``f`` (or ``f`` when the table lacks it)."""
        return _per_row([p.names[p.col[f]] if f in p.col else (f or "") for p in plans], sizes)

    # --- non-items among the data rows (column by column in Arrow; never row by row)
    valid = [pc.is_valid(c).to_numpy(zero_copy_only=False) for c in acols]
    blank = ~np.logical_or.reduce(valid) if acols else np.ones(m, dtype=bool)
    first_a = pc.coalesce(*acols) if acols else _nulls(m)
    first_u, first_inv = V.distinct(first_a)
    first_p = V.prepared(first_u)  # per distinct text: index with first_inv
    # "single": every non-empty cell equals the first (one text, possibly merged across).
    single = ~blank
    same_as_header = np.zeros(m, dtype=int)
    for j, c in enumerate(acols):
        single &= ~valid[j] | pc.equal(c, first_a).fill_null(True).to_numpy(zero_copy_only=False)
        htext = [p.infos[j].text.strip() if j < len(p.infos) else "" for p in plans]
        if any(htext):
            same_as_header += _equals_header(c, htext, tid)
    n_fields = _per_row([len({x.field for x in p.infos if x.field}) for p in plans], sizes,
                        dtype="int64")
    repeat_header = same_as_header >= np.minimum(3, n_fields)

    up = V.parse_money(field("unit_price_cny"), scale("unit_price_cny"))
    tot = V.parse_money(field("total_cny"), scale("total_cny"))
    qty_value, qty_status, qty_unit = V.quantity_units(field("quantity"))
    qty = V.Parsed(qty_value, qty_status)
    price_ok = (up.status == V.OK) | (tot.status == V.OK)
    qty_ok = qty.status == V.OK
    totals = V.fullmatch(first_p, _TOTAL_RE)[first_inv]
    for f in ("item_name", "line_no"):
        uniq, inv = V.distinct(field(f))
        totals |= V.fullmatch(V.prepared(uniq), _TOTAL_RE)[inv]
    notes = V.fullmatch(first_p, _NOTE_RE)[first_inv] & ~(price_ok | qty_ok)
    sections = V.fullmatch(first_p, _SECTION_RE)[first_inv] & single & ~(price_ok | qty_ok)
    # free text after the last row with a value (per table) is a note
    valued_pos = np.where(price_ok | qty_ok, pos, -1)
    last_valued = np.full(T, -1, dtype="int64")
    nonempty = sizes > 0
    if m:
        last_valued[nonempty] = np.maximum.reduceat(valued_pos, starts[nonempty])
    later = np.array([p.valued_later for p in plans], dtype=bool)
    # rows that would be trailing free text were it not for a later chunk's values: if that
    # chunk turns out to hold none, the caller turns their rejects into notes (see ``tail``)
    maybe_trailing = single & (pos > last_valued[tid]) & later[tid]
    last_valued[later] = np.iinfo("int64").max  # a later chunk of the table has values
    trailing = single & (pos > last_valued[tid])

    dkind = np.full(m, None, dtype=object)
    for mask, kind in (
        (trailing, "note"),
        (sections, "title"),
        (notes, "note"),
        (totals, "total"),
        (repeat_header, "header"),
        (blank, "blank"),
    ):  # later assignments win: blank beats everything
        dkind[mask] = kind
    cand = pd.isna(dkind)

    # --- rejects among the candidates, one reason per row, in priority order
    reason = np.full(m, None, dtype=object)
    rcol = np.full(m, None, dtype=object)
    detail = np.full(m, None, dtype=object)

    def flag(mask: np.ndarray, why: str, f: str | None, text) -> np.ndarray:
        """Reject the rows of ``mask`` not yet rejected; ``text(rows)`` gives their detail
        (built only for the flagged rows)."""
        mask = mask & cand & pd.isna(reason)
        if not mask.any():
            return mask
        idx = np.flatnonzero(mask)
        reason[idx] = why
        header = name_of(f)[idx]
        rcol[idx] = np.where(header == "", None, header)
        detail[idx] = text(idx) if callable(text) else text
        return mask

    def said(f: str, msg: str):
        def build(idx: np.ndarray) -> np.ndarray:
            cells = field(f).take(pa.array(idx))
            shown = pd.Series(cells.to_numpy(zero_copy_only=False), dtype="str").fillna("")
            shown = shown.str.slice(0, 60)
            where = "column " + pd.Series(name_of(f)[idx], dtype=object) + ": "
            out = (where + msg + " '" + shown + "'").where(shown.str.strip() != "",
                                                           where + "empty")
            return out.to_numpy(dtype=object)
        return build

    # a cell has no more characters than bytes: the byte lengths (from the offsets, no pass
    # over the text) rule most columns out before any character is counted
    longest = [pc.max(pc.utf8_length(c)).as_py() or 0 for c in acols
               if _max_bytes(c) > MAX_CELL_CHARS]
    if max(longest, default=0) > MAX_CELL_CHARS:
        lengths = np.column_stack(
            [pc.utf8_length(c).fill_null(0).to_numpy(zero_copy_only=False) for c in acols]
        )
        too_long = (lengths > MAX_CELL_CHARS).any(axis=1)
        which = (lengths > MAX_CELL_CHARS).argmax(axis=1)
        names = np.full((T, W), "", dtype=object)
        for i, p in enumerate(plans):
            names[i, : len(p.names)] = p.names
        long_names = names[tid, which]

        def too_long_detail(idx: np.ndarray) -> np.ndarray:
            chars = pd.Series(lengths[idx].max(axis=1)).astype(str)
            return ("column " + pd.Series(long_names[idx], dtype=object) + ": cell of " + chars
                    + f" characters (limit {MAX_CELL_CHARS})").to_numpy(dtype=object)

        hit = flag(too_long, "value_too_long", None, too_long_detail)
        rcol[hit] = long_names[hit]
    flag(~pc.is_valid(field("item_name")).to_numpy(zero_copy_only=False), "name_missing",
         "item_name", "no item name")

    has_up = _per_row(["unit_price_cny" in p.col for p in plans], sizes, dtype=bool)
    flag(up.status == V.BAD, "price_unparseable", "unit_price_cny",
         said("unit_price_cny", "not a number"))
    flag(up.status == V.NEGATIVE, "price_negative", "unit_price_cny",
         said("unit_price_cny", "negative price"))
    flag(tot.status == V.BAD, "price_unparseable", "total_cny", said("total_cny", "not a number"))
    flag(tot.status == V.NEGATIVE, "price_negative", "total_cny",
         said("total_cny", "negative price"))
    no_price = np.isin(up.status, (V.EMPTY, V.WORDS)) & np.isin(tot.status, (V.EMPTY, V.WORDS))
    flag(no_price & has_up, "price_missing", "unit_price_cny",
         said("unit_price_cny", "no price"))
    flag(no_price & ~has_up, "price_missing", "total_cny", said("total_cny", "no price"))
    flag(qty.status == V.EMPTY, "quantity_missing", "quantity", "no quantity")
    flag(qty.status == V.BAD, "quantity_unparseable", "quantity",
         said("quantity", "not a number"))
    flag(qty.status == V.NOT_POSITIVE, "quantity_not_positive", "quantity",
         said("quantity", "zero or negative quantity"))
    dates = {}
    for f in ("date", "manufacture_date"):
        dates[f] = V.parse_date_days(field(f))
        flag(dates[f].status == V.BAD, "date_invalid", f, said(f, "not a valid date"))
    cap = V.parse_capacity(field("capacity_kw"), scale("capacity_kw"))
    flag(cap.status == V.BAD, "capacity_unparseable", "capacity_kw",
         said("capacity_kw", "not a capacity"))

    is_reject = cand & pd.notna(reason)
    is_item = cand & pd.isna(reason)
    keep_rows = np.flatnonzero(cand)
    raw_json = _raw_json_batch(plans, acols, tid, keep_rows)  # aligned with keep_rows

    # --- line items (only their rows are computed)
    it = np.flatnonzero(is_item)
    take = pa.array(it)
    every = len(it) == m  # the usual case for a large clean file: no copies

    def sub(a: pa.Array) -> pa.Array:
        return a if every else a.take(take)

    def text(f: str) -> pa.Array:
        return _trimmed(sub(field(f)))

    def per_table_text(values: list[str | None]) -> pa.Array:
        return _per_table(tid[it], values)

    unit_price = np.where(up.status == V.OK, up.value, tot.value / qty.value)[it]
    cap_kw = np.where(cap.status == V.OK, cap.value, np.nan)[it]
    missing_cap = np.isnan(cap_kw)
    if missing_cap.any():
        spec_cols = [sub(field(f)) for f in ("spec", "item_name", "model")]
        # joined and searched only where a column can mention a power unit at all
        maybe = missing_cap & np.logical_or.reduce([V.may_hold_power_unit(c)
                                                    for c in spec_cols])
        if maybe.any():
            sel = pa.array(np.flatnonzero(maybe))
            cap_kw[maybe] = V.capacity_from_text(row_text_arrow([c.take(sel)
                                                                 for c in spec_cols]))
    claims = V.parse_pflops(field("claimed_pflops"), scale("claimed_pflops"))
    title_claim = _per_row([np.nan if p.title.claimed_pflops is None else p.title.claimed_pflops
                            for p in plans], sizes, dtype="float64")
    claimed = np.where(claims.status == V.OK, claims.value, title_claim)[it]
    tender = pc.coalesce(text("tender_id"),
                         per_table_text([p.title.tender_id or p.stem for p in plans]))
    project = pc.coalesce(text("project_name"),
                          per_table_text([p.title.project_name for p in plans]))
    line_no = V.line_numbers(sub(field("line_no")))
    if line_no.null_count:  # no 序号: the row number stands in
        line_no = pc.coalesce(line_no, pc.cast(pa.array(rows[it]), pa.large_string()))
    unit = pc.coalesce(text("unit"), sub(qty_unit).cast(pa.large_string()))
    vat = []
    for p in plans:
        has_p = "unit_price_cny" in p.col
        info = p.infos[p.col["unit_price_cny" if has_p else "total_cny"]].includes_vat
        if info is None and has_p and "total_cny" in p.col:
            info = p.infos[p.col["total_cny"]].includes_vat
        vat.append(info)
    vat_arr = pa.array(vat, type=pa.bool_()).take(pa.array(tid[it]))
    raw_pos = np.searchsorted(keep_rows, it)
    columns = {
        "source_file": per_table_text([p.source_file for p in plans]),
        "source_sheet": per_table_text([p.sheet for p in plans]),
        "source_row": pa.array(rows[it], pa.int64()),
        "tender_id": tender,
        "project_name": project,
        "line_no": line_no,
        **{f: text(f) for f in _TEXT_FIELDS if f != "unit"},
        "unit": unit,
        "quantity": pa.array(qty.value[it], pa.float64(), from_pandas=True),
        "unit_price_cny": pa.array(unit_price, pa.float64(), from_pandas=True),
        "total_cny": pa.array(tot.value[it], pa.float64(), from_pandas=True),
        "date": pa.array(dates["date"].value[it], pa.date32(), from_pandas=True),
        "serial_numbers": V.serial_lists(sub(field("serial_numbers"))),
        "capacity_kw": pa.array(cap_kw, pa.float64(), from_pandas=True),
        "manufacture_date": pa.array(dates["manufacture_date"].value[it], pa.date32(),
                                     from_pandas=True),
        "price_includes_vat": vat_arr,
        "claimed_pflops": pa.array(claimed, pa.float64(), from_pandas=True),
        "raw": (raw_json if len(it) == len(keep_rows) else raw_json.take(pa.array(raw_pos)))
        if len(it) else pa.array([], pa.string()),
    }
    schema = ITEM_SCHEMA
    if pa.types.is_struct(columns["raw"].type):  # the cells themselves (see _raw_json_batch)
        schema = schema.set(schema.get_field_index("raw"), pa.field("raw", columns["raw"].type))
    items = pa.table([columns[f.name] for f in schema], schema=schema)

    files = np.asarray([p.source_file for p in plans], dtype=object)
    sheets = np.asarray([p.sheet for p in plans], dtype=object)
    rj = np.flatnonzero(is_reject)
    rejects = pd.DataFrame({
        "source_file": pd.Series(files[tid[rj]], dtype=object),
        "source_sheet": pd.Series(sheets[tid[rj]], dtype=object),
        "source_row": rows[rj],
        "reason": pd.Series(reason[rj], dtype=object),
        "column": pd.Series(rcol[rj], dtype=object),
        "detail": pd.Series(detail[rj], dtype=object),
        "raw": pd.Series(raw_text(raw_json.take(pa.array(np.searchsorted(keep_rows, rj))))
                         .to_numpy(zero_copy_only=False) if len(rj) else [], dtype=object),
    })[REJECT_COLUMNS]

    nk = np.flatnonzero(~cand)
    shown_cols = acols if all(p.shown is None for p in plans) else [
        stack(lambda p, j=j: (p.shown or p.cols)[j] if j < len(p.shown or p.cols) else None)
        for j in range(W)]
    shown = row_text([c.take(pa.array(nk)) for c in shown_cols], limit=200)
    # the rows above each table's data first, then its data rows: one frame, sorted by table
    pres = [(i, p.pre) for i, p in enumerate(plans) if p.pre is not None]
    pre_t = np.concatenate([np.full(len(x["kind"]), i) for i, x in pres] + [tid[nk]])
    order = np.argsort(pre_t, kind="stable")

    def joined(key: str, data: np.ndarray) -> np.ndarray:
        return np.concatenate([x[key] for _, x in pres] + [data])[order]

    non_items = pd.DataFrame({
        "source_file": pd.Series(files[pre_t[order]], dtype=object),
        "source_sheet": pd.Series(sheets[pre_t[order]], dtype=object),
        "source_row": joined("source_row", rows[nk]).astype("int64"),
        "kind": pd.Series(joined("kind", dkind[nk]), dtype=object),
        "text": pd.Series(joined("text", shown.where(shown != "", None).to_numpy()),
                          dtype=object),
    })[NON_ITEM_COLUMNS]

    counts = np.column_stack([
        np.bincount(tid[it], minlength=T),
        np.bincount(tid[rj], minlength=T),
        np.bincount(tid[nk], minlength=T)
        + np.array([0 if p.pre is None else len(p.pre["kind"]) for p in plans], "int64"),
    ]) if T else np.zeros((0, 3), "int64")
    valued = np.bincount(tid[price_ok | qty_ok], minlength=T) > 0
    tl = np.flatnonzero(maybe_trailing & is_reject)
    tail = pd.DataFrame({
        "plan": tid[tl], "source_row": rows[tl],
        "text": row_text([c.take(pa.array(tl)) for c in shown_cols], limit=200).to_numpy(),
    })
    return BatchResult(items, rejects, non_items, counts, valued, tail)


def _raw_json_batch(plans: list[TablePlan], acols: list[pa.Array], tid: np.ndarray,
                    rows: np.ndarray) -> pa.Array:
    """The raw JSON {original header: cell text} of the given rows, in one DuckDB query.

    One header layout (a large file): json_object with the headers bound as parameters.
    Several (thousands of small files): each row's keys come from its table by a join, and
    the object is assembled from to_json pieces, which is the same text json_object writes.
    """
    if not len(rows):
        return pa.array([], pa.string())
    layouts: dict[tuple[str, ...], list[int]] = {}
    for i, p in enumerate(plans):
        layouts.setdefault(tuple(p.names), []).append(i)
    if len(layouts) == 1:
        names = next(iter(layouts))
        whole = len(rows) == len(tid)
        cols = [c if whole else c.take(pa.array(rows)) for c in acols[: len(names)]]
        names = list(names)[: len(cols)]
        # (a struct's field names must be unique, and DuckDB cuts them at a NUL)
        if cols and len(set(names)) == len(names) and not any("\x00" in n for n in names):
            # The cells under their header names, no copy: the store writes the JSON text
            # (to_json of the struct, the text json_object writes) as it writes the lines.
            # Made here, the text was a third of the ingest and went through Arrow twice.
            return pa.StructArray.from_arrays(cols, names=names)
        return _raw_json(cols, names)
    # Several layouts: one query, each row's keys joined from its table's headers.
    width = max(len(names) for names in layouts)
    W = min(width, len(acols))
    idx = pa.array(rows)
    cells = {"t": pa.array(tid[rows], pa.int32()), "rn": pa.array(np.arange(len(rows)))}
    cells.update({f"c{j}": acols[j].take(idx) for j in range(W)})
    keys = {"t": pa.array(np.arange(len(plans)), pa.int32())}
    keys.update({f"k{j}": pa.array([p.names[j] if j < len(p.names) else None for p in plans],
                                   pa.string()) for j in range(W)})
    pairs = ", ".join(f"CASE WHEN k{j} IS NOT NULL THEN to_json(k{j}) || ':' || "
                      f"coalesce(to_json(c{j}), 'null') END" for j in range(W))
    con = duckdb_connection()
    con.register("cells", pa.table(cells))
    con.register("layouts", pa.table(keys))
    try:
        out = fetch_arrow(con, f"SELECT '{{' || concat_ws(',', {pairs}) || '}}' AS j "
                          "FROM cells JOIN layouts USING (t) ORDER BY rn").column("j")
    finally:
        con.unregister("cells")
        con.unregister("layouts")
    return out.combine_chunks()


def _not_a_table(
    raw: RawTable, source_file: str, problem: str, header_found: bool
) -> TableResult:
    """A sheet without a line-item table: its rows are blank or note non-items."""
    n = len(raw.rows)
    blank = _all_null(raw.columns, n)
    text = np.full(n, None, dtype=object)
    if raw.columns and n:
        text = V.null_if_blank(row_text_arrow(raw.columns, limit=200)).to_numpy(
            zero_copy_only=False)
    values = {
        "source_file": np.full(n, source_file, dtype=object),
        "source_sheet": np.full(n, raw.sheet, dtype=object),
        "source_row": np.asarray(raw.rows, dtype="int64"),
        "kind": np.where(blank, "blank", "note").astype(object),
        "text": text,
    }
    non_items = pd.DataFrame({c: values[c] for c in NON_ITEM_COLUMNS}, copy=False)
    return TableResult(non_items, n, problem, header_found=header_found)
