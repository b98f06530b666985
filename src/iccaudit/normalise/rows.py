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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit.normalise import values as V
from iccaudit.normalise.plan import TablePlan
from iccaudit.normalise.raw import raw_json_batch, raw_text
from iccaudit.normalise.tables import (
    _NOTE_RE,
    _SECTION_RE,
    _TEXT_FIELDS,
    _TOTAL_RE,
    ITEM_SCHEMA,
    MAX_CELL_CHARS,
    NON_ITEM_COLUMNS,
    REJECT_COLUMNS,
    empty_frame,
    row_text,
    row_text_arrow,
)


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


#: Fields a document may state once for a whole table (:class:`~.headers.TitleInfo`).
_TITLE_FIELDS = ("supplier", "buyer", "date")


def _per_row(values: list[object], sizes: np.ndarray, dtype: type | str = object
             ) -> np.ndarray:
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

    def stack(get: Callable[[TablePlan], pa.Array | None]) -> pa.Array:
        """One Arrow array over the batch: ``get(plan)`` or nulls for each table."""
        parts = [get(p) for p in plans]
        return _concat([x if x is not None else _nulls(len(p.rows))
                        for x, p in zip(parts, plans, strict=True)]) if T else _nulls(0)

    def column(j: int) -> Callable[[TablePlan], pa.Array | None]:
        return lambda p: p.cols[j] if j < len(p.cols) else None

    acols = [stack(column(j)) for j in range(W)]

    stacked: dict[str, pa.Array] = {}

    def field(f: str) -> pa.Array:
        if f not in stacked:
            stacked[f] = stack(lambda p: p.cols[p.col[f]] if f in p.col else None)
            stated = [getattr(p.title, f) for p in plans] if f in _TITLE_FIELDS else []
            if any(stated):  # a document states it once for its table: rows without it take it
                stacked[f] = pc.coalesce(stacked[f], _per_table(tid, stated))
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
    if any(p.kinds is not None for p in plans):  # what the reader knows wins over all
        known = np.concatenate([p.kinds if p.kinds is not None
                                else np.full(len(p.rows), None, dtype=object) for p in plans])
        dkind[pd.notna(known)] = known[pd.notna(known)]
    cand = pd.isna(dkind)

    # --- rejects among the candidates, one reason per row, in priority order
    reason = np.full(m, None, dtype=object)
    rcol = np.full(m, None, dtype=object)
    detail = np.full(m, None, dtype=object)

    def flag(mask: np.ndarray, why: str, f: str | None,
             text: str | Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
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

    def said(f: str, msg: str) -> Callable[[np.ndarray], np.ndarray]:
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
    raw_json = raw_json_batch(plans, acols, tid, keep_rows)  # aligned with keep_rows

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
    located = any(p.locations is not None for p in plans)
    # per row only where a document says where each row lies; else one sheet per table
    row_sheets = np.concatenate([p.sheets() for p in plans]) if located else None
    columns = {
        "source_file": per_table_text([p.source_file for p in plans]),
        "source_sheet": (per_table_text([p.sheet for p in plans]) if row_sheets is None
                         else pa.array(row_sheets[it], pa.large_string())),
        "source_row": pa.array(rows[it], pa.int64()),
        "tender_id": tender,
        "project_name": project,
        "line_no": line_no,
        **{f: text(f) for f in _TEXT_FIELDS if f not in ("unit", "currency")},
        "currency": V.currency_codes(text("currency")),
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
    if pa.types.is_struct(columns["raw"].type):  # the cells themselves (see raw_json_batch)
        schema = schema.set(schema.get_field_index("raw"), pa.field("raw", columns["raw"].type))
    items = pa.table([columns[f.name] for f in schema], schema=schema)

    files = np.asarray([p.source_file for p in plans], dtype=object)
    sheets = np.asarray([p.sheet for p in plans], dtype=object)
    rj = np.flatnonzero(is_reject)
    rejects = pd.DataFrame({
        "source_file": pd.Series(files[tid[rj]], dtype=object),
        "source_sheet": pd.Series(sheets[tid[rj]] if row_sheets is None else row_sheets[rj],
                                  dtype=object),
        "source_row": rows[rj],
        "reason": pd.Series(reason[rj], dtype=object),
        "column": pd.Series(rcol[rj], dtype=object),
        "detail": pd.Series(detail[rj], dtype=object),
        "raw": pd.Series(raw_text(raw_json.take(pa.array(np.searchsorted(keep_rows, rj))))
                         .to_numpy(zero_copy_only=False) if len(rj) else [], dtype=object),
    })[REJECT_COLUMNS]

    nk = np.flatnonzero(~cand)
    shown_cols = acols if all(p.shown is None for p in plans) else [
        stack(_shown_column(j)) for j in range(W)]
    shown = row_text([c.take(pa.array(nk)) for c in shown_cols], limit=200)
    # the rows above each table's data first, then its data rows: one frame, sorted by table
    pres = [(i, p.pre) for i, p in enumerate(plans) if p.pre is not None]
    pre_t = np.concatenate([np.full(len(x["kind"]), i) for i, x in pres] + [tid[nk]])
    order = np.argsort(pre_t, kind="stable")

    def joined(key: str, data: np.ndarray) -> np.ndarray:
        return np.concatenate([x[key] for _, x in pres] + [data])[order]

    if row_sheets is None:
        non_sheets = sheets[pre_t[order]]
    else:
        non_sheets = np.concatenate(
            [x.get("source_sheet", np.full(len(x["kind"]), plans[i].sheet, dtype=object))
             for i, x in pres] + [row_sheets[nk]])[order]
    non_items = pd.DataFrame({
        "source_file": pd.Series(files[pre_t[order]], dtype=object),
        "source_sheet": pd.Series(non_sheets, dtype=object),
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
        "source_sheet": pd.Series(sheets[tid[tl]] if row_sheets is None else row_sheets[tl],
                                  dtype=object),
        "text": row_text([c.take(pa.array(tl)) for c in shown_cols], limit=200).to_numpy(),
    })
    return BatchResult(items, rejects, non_items, counts, valued, tail)


def _shown_column(j: int) -> Callable[[TablePlan], pa.Array | None]:
    """A table's column ``j`` as shown (merged cells filled), or None when it has fewer."""
    return lambda p: (p.shown or p.cols)[j] if j < len(p.shown or p.cols) else None
