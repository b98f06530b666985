"""``raw``: each line's original cells as {original header: cell text}.

For a batch of one header layout the cells stay a struct under their header names, and
:func:`raw_text` writes the JSON text when it is needed (the store does it as it writes the
lines); a batch of several layouts gets the JSON text by one DuckDB query.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from iccaudit.core import schema
from iccaudit.core.duck import duckdb_connection, fetch_arrow
from iccaudit.normalise.plan import TablePlan


def _raw_json(cols: list[pa.Array], names: list[str]) -> pa.Array | pa.ChunkedArray:
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
    con.register("raw_cells", pa.table({"raw": raw}))  # type: ignore[dict-item]
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

def raw_json_batch(plans: list[TablePlan], acols: list[pa.Array], tid: np.ndarray,
                    rows: np.ndarray) -> pa.Array | pa.ChunkedArray:
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
        layout = next(iter(layouts))
        whole = len(rows) == len(tid)
        cols = [c if whole else c.take(pa.array(rows)) for c in acols[: len(layout)]]
        names = list(layout)[: len(cols)]
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
    cells: dict[str, pa.Array] = {"t": pa.array(tid[rows], pa.int32()),
                                  "rn": pa.array(np.arange(len(rows)))}
    cells.update({f"c{j}": acols[j].take(idx) for j in range(W)})
    keys: dict[str, pa.Array] = {"t": pa.array(np.arange(len(plans)), pa.int32())}
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

