"""Cells to text: values of any type as Arrow ``large_string`` arrays, empty cells null.

Every reader hands its cells on as text (or null), whatever their type in the file, so that all
parsing happens later, vectorised, in one place (:mod:`iccaudit.normalise`).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# ---------------------------------------------------------------- cells to text


MIDNIGHT = r"^(\d{4}-\d{2}-\d{2}) 00:00:00(?:\.0+)?$"


def objects_to_text(values: np.ndarray) -> np.ndarray:
    """Python objects (float, int, date, bool, str, dict ...) to text, None when empty.

    Converted one *type* at a time through Arrow's cast, so the work is vectorised per type
    rather than a Python call per cell. Integral floats print without ".0" (Excel stores 3 as
    3.0) and midnight datetimes as plain dates.
    """
    out = np.full(len(values), None, dtype=object)
    if not len(values):
        return out
    kinds = np.array(list(map(type, values)), dtype=object)
    for kind in set(kinds.tolist()):
        mask = kinds == kind
        part = values[mask]
        if kind is type(None):
            continue
        if kind is str:
            out[mask] = part
        elif kind in (dict, list, tuple):
            out[mask] = [json.dumps(v, ensure_ascii=False, default=str) for v in part]
        elif kind is float and np.isnan(part.astype(float)).all():
            continue
        else:
            try:
                # from_pandas: a float NaN (pandas' and JSON's "missing") becomes an empty cell
                text = pc.cast(pa.array(part.tolist(), from_pandas=True), pa.string())
                text = pc.replace_substring_regex(text, MIDNIGHT, r"\1")
                out[mask] = text.to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                out[mask] = [str(v) for v in part]
    return out


def text_array(values: np.ndarray | pa.Array) -> pa.Array:
    """Cell text as one Arrow large_string array; whitespace-only cells become null."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, type=pa.large_string(),
                                                                from_pandas=True)
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    return _null_where_blank(arr)


def is_blank(arr: pa.Array) -> pa.Array:
    """Empty or whitespace-only cells (no trimmed copy of the text is made)."""
    return pc.or_(pc.equal(arr, ""), pc.utf8_is_space(arr))


def _null_where_blank(arr: pa.Array) -> pa.Array:
    blank = is_blank(arr)
    if not pc.any(blank).as_py():
        return arr
    return pc.if_else(blank, pa.scalar(None, arr.type), arr)


def _holds_byte(c: pa.Array | pa.ChunkedArray, byte: int) -> bool:
    """Whether any cell's text (large_string) holds ``byte``: one numpy pass over the text
    bytes, three times Arrow's substring kernel. Bytes of a null cell count too, which can
    only send the caller to its exact, per-cell count."""
    for x in (c.chunks if isinstance(c, pa.ChunkedArray) else [c]):
        if not len(x):
            continue
        offsets = np.frombuffer(x.buffers()[1], dtype=np.int64, count=len(x) + 1,
                                offset=8 * x.offset)
        start, end = int(offsets[0]), int(offsets[-1])
        if end > start and (np.frombuffer(x.buffers()[2], dtype=np.uint8, count=end - start,
                                          offset=start) == byte).any():
            return True
    return False


def split_columns(flat: pa.Array, n: int, w: int) -> list[pa.Array]:
    """Column-major cells (all of column 0, then column 1 ...) as one array per column."""
    return [flat.slice(j * n, n) for j in range(w)]


def objects_to_columns(values: np.ndarray) -> list[pa.Array]:
    """A 2-D object array of cells to text columns (one conversion pass for the sheet)."""
    n, w = values.shape
    if not n or not w:
        return [pa.nulls(n, pa.large_string()) for _ in range(w)]
    flat = text_array(objects_to_text(values.ravel(order="F")))
    return split_columns(flat, n, w)


def to_2d(values: list, height: int, width: int) -> np.ndarray:
    """Rows of Python values (possibly ragged) in a height x width object array."""
    out = np.full((height, width), None, dtype=object)
    if not values or not width:
        return out
    try:
        grid = np.array(values, dtype=object)
    except ValueError:  # ragged rows: pandas pads them
        grid = pd.DataFrame(values, dtype=object).to_numpy(dtype=object)
    if grid.ndim != 2:
        grid = pd.DataFrame(values, dtype=object).to_numpy(dtype=object)
    out[: grid.shape[0], : grid.shape[1]] = grid
    return out

def blank_to_null(cols: list[pa.Array | pa.ChunkedArray], line_breaks: bool = True
                   ) -> tuple[list[pa.Array | pa.ChunkedArray], np.ndarray]:
    """Each column with whitespace-only cells null (chunk by chunk: a chunked column stays
    chunked, no copy into one array), and each row's span in editor lines (a quoted cell's
    line breaks make its row span several; with ``line_breaks=False`` the caller knows no
    cell holds one, and every span is 1).

    Two columns at a time, in threads: the Arrow kernels release the GIL, and this runs
    before the file's rows can be normalised.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(c: pa.Array | pa.ChunkedArray
            ) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray | None]:
        if isinstance(c, pa.ChunkedArray):
            c = pa.chunked_array([_null_where_blank(x.cast(pa.large_string()))
                                  for x in c.chunks if len(x)], pa.large_string())
        else:
            c = _null_where_blank(c.cast(pa.large_string()))
        if not line_breaks or not _holds_byte(c, 0x0A):
            return c, None
        return c, pc.count_substring(c, "\n").fill_null(0).to_numpy(zero_copy_only=False)

    n = len(cols[0]) if cols else 0
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="iccaudit-cells") as pool:
        done = list(pool.map(one, cols))
    spans = np.ones(n, dtype="int64")
    for _, breaks in done:
        if breaks is not None:
            spans += breaks
    return [c for c, _ in done], spans


def arrow(s: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """Cell text as an Arrow large_string array, empty cells null (Arrow input passes through)."""
    if isinstance(s, pa.Array | pa.ChunkedArray):
        whole = s.combine_chunks() if isinstance(s, pa.ChunkedArray) else s
        return whole if whole.type == pa.large_string() else whole.cast(pa.large_string())
    if not isinstance(s.dtype, pd.StringDtype):
        s = s.astype(object).where(s.notna(), None).astype("str")
    arr: pa.Array = pa.array(s.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    # One string type everywhere, so kernels that take several inputs always match.
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())
