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

import threading
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit import schema
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
from iccaudit.ingest.readers import RawTable

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
_TEXT_FIELDS = ("item_name", "brand", "model", "spec", "unit", "supplier", "condition")


@dataclass
class TableResult:
    """A table's rows split three ways; ``problem`` says why it held no line-item table."""

    items: pd.DataFrame
    rejects: pd.DataFrame
    non_items: pd.DataFrame
    rows_read: int
    is_table: bool
    problem: str | None = None
    #: a header row was found but required columns are missing (worth telling the user)
    header_found: bool = False
    title: TitleInfo = field(default_factory=TitleInfo)


def empty_frame(columns: list[str]) -> pd.DataFrame:
    """A frame with the given columns and no rows."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def fill_merges(cells: pd.DataFrame, merges: list[tuple[int, int, int, int]]) -> pd.DataFrame:
    """Every cell of a merged range takes the range's top-left value (one slice per range)."""
    if not merges:
        return cells
    arr = cells.to_numpy(dtype=object, copy=True)
    for r0, c0, r1, c1 in merges:
        arr[r0 : r1 + 1, c0 : c1 + 1] = arr[r0, c0]
    return pd.DataFrame(arr, index=cells.index, columns=cells.columns).astype("str")


def row_text(frame: pd.DataFrame, limit: int | None = None) -> pd.Series:
    """Each row's non-empty cells joined by " | " (one Arrow join over the columns)."""
    if frame.shape[1] == 0 or len(frame) == 0:
        return pd.Series("", index=frame.index, dtype=object)
    cols = [V.arrow(frame.iloc[:, j]) for j in range(frame.shape[1])]
    sep = pa.scalar("\x1f", pa.large_string())
    joined = pc.binary_join_element_wise(*cols, sep, null_handling="replace",
                                         null_replacement="")
    joined = pc.replace_substring_regex(joined, "\x1f+", " | ")
    joined = pc.utf8_trim(joined, " |\x1f")
    if limit:
        joined = pc.utf8_slice_codeunits(joined, 0, limit)
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=frame.index, dtype=object)


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


def _raw_json(frame: pd.DataFrame, names: list[str]) -> pd.Series:
    """Each row as JSON {original header: cell text}, built by DuckDB's json_object.

    The header texts are bound as parameters, never formatted into the SQL.
    """
    if len(frame) == 0:
        return pd.Series([], dtype=object)
    if frame.shape[1] == 0:
        return pd.Series("{}", index=frame.index, dtype=object)
    table = pa.table({f"c{j}": V.arrow(frame.iloc[:, j]) for j in range(frame.shape[1])})
    pairs = ", ".join(f"${j + 1}::VARCHAR, c{j}" for j in range(frame.shape[1]))
    con = _json_connection()
    con.register("cells", table)
    try:
        out = con.execute(f"SELECT json_object({pairs}) AS j FROM cells", names).fetchnumpy()["j"]
    finally:
        con.unregister("cells")
    return pd.Series(np.asarray(out, dtype=object), index=frame.index, dtype=object)


_local = threading.local()


def _json_connection() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB connection per thread for :func:`_raw_json`.

    Opening a connection costs about 20 ms: once per sheet that was most of the time spent on a
    small tender file (2,000 files, 40 s). It holds no data between calls.
    """
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect()
    return con


def _find_header(cells: pd.DataFrame, mapping: dict[str, str] | None):
    """(header row, infos) of the first qualifying row, or (None, best candidate infos)."""
    best: list[HeaderInfo] = []
    best_fields = -1
    for i in range(min(HEADER_SCAN_ROWS, len(cells))):
        infos = [interpret(v if isinstance(v, str) else None, mapping) for v in cells.iloc[i]]
        fields = {x.field for x in infos if x.field}
        if is_header(fields):
            return i, infos
        if len(fields) > best_fields:
            best, best_fields = infos, len(fields)
    return None, best


def _sub_header(row: pd.Series, infos: list[HeaderInfo], mapping) -> list[HeaderInfo] | None:
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


def normalise(
    raw: RawTable, source_file: str, stem: str, mapping: dict[str, str] | None
) -> TableResult:
    """Split one table into line items, rejects and non-items (every row exactly once)."""
    cells = raw.cells
    n = len(cells)
    sheet = raw.sheet
    filled = fill_merges(cells, raw.merges) if raw.header is None else cells

    if raw.header is None:
        h, infos = _find_header(filled, mapping)
        header_rows = [] if h is None else [h]
        if h is not None and h + 1 < n:
            sub = _sub_header(filled.iloc[h + 1], infos, mapping)
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
    kind = np.full(n, None, dtype=object)
    if raw.header is None:
        above = np.arange(n) < h
        blank_all = cells.isna().all(axis=1).to_numpy()
        kind[above & blank_all] = "blank"
        kind[above & ~blank_all] = "title"
        kind[header_rows] = "header"
    title_text = ""
    if raw.header is None and h > 0:
        title_text = "\n".join(row_text(cells.iloc[:h]).tolist())
    title = read_title("\n".join(t for t in (raw.title, title_text) if t))

    col = {}  # field -> column position (first column wins)
    for j, info in enumerate(infos):
        if info.field and info.field not in col:
            col[info.field] = j
    names = _unique_names(infos)
    D = filled.iloc[data_start:]
    m = len(D)
    rows = raw.rows[data_start:]

    def column(f: str) -> pd.Series:
        if f in col:
            return D.iloc[:, col[f]]
        return pd.Series(np.nan, index=D.index, dtype="str")

    def scale(f: str) -> float:
        return infos[col[f]].scale if f in col else 1.0

    # --- non-items among the data rows (column by column in Arrow; never row by row)
    acols = [V.arrow(D.iloc[:, j]) for j in range(D.shape[1])]
    valid = [pc.is_valid(c).to_numpy(zero_copy_only=False) for c in acols]
    blank = ~np.logical_or.reduce(valid) if acols else np.ones(m, dtype=bool)
    first_a = pc.coalesce(*acols) if acols else pa.nulls(m, pa.large_string())
    first_p = V.prepared(first_a)
    # "single": every non-empty cell equals the first (one text, possibly merged across).
    single = ~blank
    same_as_header = np.zeros(m, dtype=int)
    for j, c in enumerate(acols):
        single &= ~valid[j] | pc.equal(c, first_a).fill_null(True).to_numpy(zero_copy_only=False)
        if infos[j].text.strip():
            same_as_header += pc.equal(pc.utf8_trim_whitespace(c), infos[j].text.strip()
                                       ).fill_null(False).to_numpy(zero_copy_only=False)
    repeat_header = same_as_header >= min(3, len(fields))

    up = V.parse_money(column("unit_price_cny"), scale("unit_price_cny"))
    tot = V.parse_money(column("total_cny"), scale("total_cny"))
    qty = V.parse_quantity(column("quantity"))
    price_ok = (up.status == V.OK) | (tot.status == V.OK)
    qty_ok = qty.status == V.OK
    totals = np.zeros(m, dtype=bool)
    for s in (first_p, V.prepared(column("item_name")), V.prepared(column("line_no"))):
        totals |= V.fullmatch(s, _TOTAL_RE)
    notes = V.fullmatch(first_p, _NOTE_RE) & ~(
        price_ok | qty_ok
    )
    sections = (
        V.fullmatch(first_p, _SECTION_RE)
        & single
        & ~(price_ok | qty_ok)
    )
    valued = np.flatnonzero(price_ok | qty_ok)
    last_valued = valued.max() if len(valued) else -1
    trailing = single & (np.arange(m) > last_valued)

    dkind = np.full(m, None, dtype=object)
    for mask, name in (
        (trailing, "note"),
        (sections, "title"),
        (notes, "note"),
        (totals, "total"),
        (repeat_header, "header"),
        (blank, "blank"),
    ):  # later assignments win: blank beats everything
        dkind[mask] = name
    kind[data_start:] = dkind
    cand = pd.isna(dkind)

    # --- rejects among the candidates, one reason per row, in priority order
    reason = np.full(m, None, dtype=object)
    rcol = pd.Series(np.nan, index=D.index, dtype=object)
    detail = pd.Series(np.nan, index=D.index, dtype=object)

    def flag(mask: np.ndarray, why: str, f: str | None, text) -> None:
        """Reject the rows of ``mask`` not yet rejected; ``text`` is a str or a callable
        giving the detail Series (built only when some row is flagged)."""
        mask = mask & cand & pd.isna(reason)
        if not mask.any():
            return
        reason[mask] = why
        header = names[col[f]] if f in col else (f or "")
        rcol[mask] = header or None
        text = text() if callable(text) else text
        detail[mask] = (pd.Series(text, index=D.index) if isinstance(text, str) else text)[mask]

    def said(f: str, msg: str):
        def build() -> pd.Series:
            shown = column(f).astype("str").fillna("").str.slice(0, 60)
            where = f"column {names[col[f]] if f in col else f}: "
            return (where + msg + " '" + shown + "'").where(shown.str.strip() != "",
                                                             where + "empty")
        return build

    longest = [pc.max(pc.utf8_length(c)).as_py() or 0 for c in acols]
    if max(longest, default=0) > MAX_CELL_CHARS:
        lengths = np.column_stack(
            [pc.utf8_length(c).fill_null(0).to_numpy(zero_copy_only=False) for c in acols]
        )
        too_long = lengths > MAX_CELL_CHARS
        if too_long.any():
            which = too_long.argmax(axis=1)
            long_names = pd.Series(np.asarray(names, dtype=object)[which], index=D.index)
            msg = ("column " + long_names + ": cell of "
                   + pd.Series(lengths.max(axis=1).astype(int), index=D.index).astype(str)
                   + f" characters (limit {MAX_CELL_CHARS})")
            flag(too_long.any(axis=1), "value_too_long", None, msg)
            rcol[too_long.any(axis=1) & (reason == "value_too_long")] = long_names
    name = column("item_name")
    flag(name.isna().to_numpy(), "name_missing", "item_name", "no item name")

    has_up = "unit_price_cny" in col
    price_col = "unit_price_cny" if has_up else "total_cny"
    flag(up.status == V.BAD, "price_unparseable", "unit_price_cny",
         said("unit_price_cny", "not a number"))
    flag(up.status == V.NEGATIVE, "price_negative", "unit_price_cny",
         said("unit_price_cny", "negative price"))
    flag(tot.status == V.BAD, "price_unparseable", "total_cny", said("total_cny", "not a number"))
    flag(tot.status == V.NEGATIVE, "price_negative", "total_cny",
         said("total_cny", "negative price"))
    no_price = np.isin(up.status, (V.EMPTY, V.WORDS)) & np.isin(tot.status, (V.EMPTY, V.WORDS))
    flag(no_price, "price_missing", price_col, said(price_col, "no price"))
    flag(qty.status == V.EMPTY, "quantity_missing", "quantity", "no quantity")
    flag(qty.status == V.BAD, "quantity_unparseable", "quantity",
         said("quantity", "not a number"))
    flag(qty.status == V.NOT_POSITIVE, "quantity_not_positive", "quantity",
         said("quantity", "zero or negative quantity"))
    dates = {}
    for f in ("date", "manufacture_date"):
        dates[f] = V.parse_date(column(f))
        flag(dates[f].status == V.BAD, "date_invalid", f, said(f, "not a valid date"))
    cap = V.parse_capacity(column("capacity_kw"), scale("capacity_kw"))
    flag(cap.status == V.BAD, "capacity_unparseable", "capacity_kw",
         said("capacity_kw", "not a capacity"))

    # filled in numpy: a masked pandas assignment of a million objects took seconds
    raw_values = np.full(m, None, dtype=object)
    if cand.all():
        raw_values[:] = _raw_json(D, names).to_numpy()
    elif cand.any():
        raw_values[cand] = _raw_json(D[cand], names).to_numpy()
    raw_json = pd.Series(raw_values, index=D.index, dtype=object)
    is_reject = cand & pd.notna(reason)
    is_item = cand & pd.isna(reason)

    # --- line items
    def text(f: str) -> pd.Series:
        s = column(f).astype("str").str.strip()
        return s.astype(object).where(s.notna() & (s != ""), None)

    unit_price = np.where(up.status == V.OK, up.value, tot.value / qty.value)
    cap_kw = np.where(cap.status == V.OK, cap.value, np.nan)
    spec_text = row_text(pd.concat([column("spec"), column("item_name"), column("model")], axis=1))
    cap_kw = np.where(np.isnan(cap_kw), V.capacity_from_text(spec_text), cap_kw)
    claims = V.parse_pflops(column("claimed_pflops"), scale("claimed_pflops"))
    claimed = np.where(claims.status == V.OK, claims.value,
                       np.nan if title.claimed_pflops is None else title.claimed_pflops)
    tender = text("tender_id").fillna(title.tender_id or stem)
    project = text("project_name")
    if title.project_name:
        project = project.where(project.notna(), title.project_name)
    line_no = V.clean_line_no(column("line_no")).fillna(pd.Series(rows, index=D.index).astype(str))
    unit = text("unit")
    unit = unit.where(unit.notna(), qty.unit.astype(object).where(qty.unit.notna(), None))
    vat_info = infos[col[price_col]].includes_vat
    if vat_info is None and has_up and "total_cny" in col:
        vat_info = infos[col["total_cny"]].includes_vat
    items = pd.DataFrame(
        {
            "source_file": source_file,
            "source_sheet": sheet,
            "source_row": rows,
            "tender_id": tender,
            "project_name": project,
            "line_no": line_no.astype(object),
            **{f: text(f) for f in _TEXT_FIELDS},
            "quantity": qty.value,
            "unit_price_cny": unit_price,
            "total_cny": tot.value,
            "date": dates["date"].value,
            "serial_numbers": V.split_serials(column("serial_numbers")),
            "capacity_kw": cap_kw,
            "manufacture_date": dates["manufacture_date"].value,
            "price_includes_vat": pd.array([vat_info] * m, dtype="boolean"),
            "claimed_pflops": claimed,
            "raw": raw_json.astype(object),
        },
        index=D.index,
    )
    items["unit"] = unit
    items = items.loc[is_item, ITEM_COLUMNS].reset_index(drop=True)
    items["source_sheet"] = items["source_sheet"].astype(object)

    rejects = pd.DataFrame(
        {
            "source_file": source_file,
            "source_sheet": sheet,
            "source_row": rows,
            "reason": reason,
            "column": rcol,
            "detail": detail,
            "raw": raw_json.astype(object),
        },
        index=D.index,
    ).loc[is_reject, REJECT_COLUMNS].reset_index(drop=True)

    keep = pd.notna(kind)
    shown = row_text(cells[keep], limit=200)
    non_items = pd.DataFrame(
        {
            "source_file": source_file,
            "source_sheet": sheet,
            "source_row": raw.rows[keep],
            "kind": kind[keep],
            "text": shown.where(shown != "", None).to_numpy(),
        }
    )[NON_ITEM_COLUMNS]
    return TableResult(items, rejects, non_items, n, True, title=title)


def _not_a_table(
    raw: RawTable, source_file: str, problem: str, header_found: bool
) -> TableResult:
    """A sheet without a line-item table: its rows are blank or note non-items."""
    n = len(raw.cells)
    blank = raw.cells.isna().all(axis=1).to_numpy() if raw.cells.shape[1] else np.ones(n, bool)
    text = row_text(raw.cells, limit=200)
    non_items = pd.DataFrame(
        {
            "source_file": source_file,
            "source_sheet": raw.sheet,
            "source_row": raw.rows,
            "kind": np.where(blank, "blank", "note"),
            "text": text.where(text != "", None),
        }
    )[NON_ITEM_COLUMNS]
    return TableResult(
        empty_frame(ITEM_COLUMNS), empty_frame(REJECT_COLUMNS), non_items, n, False, problem,
        header_found=header_found,
    )

