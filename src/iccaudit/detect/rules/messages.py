"""Finding messages, set-at-a-time: each distinct value formatted once with the rule's format
spec, the template's pieces joined by one Arrow kernel per message (no Python per finding).

Numbers with a fixed-point spec (``,.0f``, ``.1f``, ``.0%``, ``+.1%`` ...) are formatted by
one DuckDB ``format`` over all their distinct values: when findings are many, so are the
distinct prices and ratios (a million findings: half a million ``format`` calls in Python
before). DuckDB's ``format`` (the fmt library) rounds exactly as Python's ``format`` does
(correctly, ties to even); ``tests/detect/test_messages_sql.py`` holds the two to each other.
Magnitudes of 1e15 and more, and every other spec, stay with Python's ``format``.
"""

from __future__ import annotations

import math
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _is_null(value: Any) -> bool:
    import pandas as pd

    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


#: A fixed-point spec DuckDB's ``format`` reproduces: sign, thousands, precision, f or %.
_FIXED = re.compile(r"^(\+?)(,?)\.(\d)([f%])$")
#: Beyond this magnitude the two libraries print different digits of the exact binary value.
_FIXED_LIMIT = 1e15
_local = threading.local()


def _fixed_texts(numbers: Any, spec: str) -> pa.Array | None:
    """``format(x, spec)`` of each float of ``numbers`` (finite, below 1e15 in magnitude) as
    an Arrow string array, by one DuckDB query; None when ``spec`` is not a fixed-point spec
    that DuckDB reproduces."""
    import duckdb
    import pyarrow as pa

    from iccaudit.core.duck import fetch_arrow

    m = _FIXED.match(spec)
    if m is None:
        return None
    sign, sep, digits, kind = m.groups()
    if sign and sep:  # "+," Python takes; DuckDB's format does not
        return None
    con = getattr(_local, "con", None)
    if con is None:  # a private connection per thread: it holds nothing but these numbers
        con = _local.con = duckdb.connect()
    x = "x * 100" if kind == "%" else "x"  # Python's % multiplies the double by 100 too
    suffix = " || '%'" if kind == "%" else ""
    # constant text: the spec's parts are the groups _FIXED matched (digits, sign, comma)
    sql = (f"SELECT (format('{{:{sign}{sep}.{digits}f}}', {x}){suffix})::VARCHAR AS s "
           "FROM __numbers")
    con.register("__numbers", pa.table({"x": pa.array(numbers, pa.float64())}))
    try:
        out = fetch_arrow(con, sql).column(0).combine_chunks()
    finally:
        con.unregister("__numbers")
    return out.cast(pa.large_string())


def _format_column(values: Any, spec: str) -> Any:
    """Format one placeholder's column (output formatting; one call per column) as an Arrow
    string array.

    Each distinct value is formatted once: findings repeat medians, counts and names.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    def one(v: Any) -> str:
        if _is_null(v):
            return "—"
        if hasattr(v, "tolist") and not isinstance(v, str):
            v = v.tolist()
        try:
            return format(v, spec) if spec else _plain(v)
        except (TypeError, ValueError):
            return _plain(v)

    # Only where equal values print alike: 1 and 1.0 and True, or Decimal 1.0 and 1.00, or
    # 0.0 and -0.0 hash alike but do not; lists are unhashable. Other kinds value by value.
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("string", "integer", "boolean"):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        uniques = list(uniques)
        if kind == "string" and not spec:  # a text as it is: format(s, "") is s
            return _spread([pa.array([*uniques, "—"], pa.large_string())],
                           np.where(codes < 0, len(uniques), codes))
        if kind == "integer" and _FIXED.match(spec) and all(
                abs(u) < _FIXED_LIMIT for u in uniques):
            # format(int, "f") formats float(int): exact below 2**53
            fixed = _fixed_texts(np.array(uniques, dtype=np.float64), spec)
            if fixed is not None:
                return _spread([fixed, pa.array(["—"], pa.large_string())],
                               np.where(codes < 0, len(uniques), codes))
    elif kind == "floating":
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        bits, _ = pd.factorize(numbers.view(np.int64))  # by bit pattern: -0.0 is not 0.0
        first = pd.Series(np.arange(len(bits))).groupby(bits).first().to_numpy()
        distinct = numbers[first]
        codes = np.where(np.isnan(numbers), -1, bits)
        fixed = None
        if _FIXED.match(spec):
            plain = np.isfinite(distinct) & (np.abs(distinct) < _FIXED_LIMIT)
            fixed = _fixed_texts(distinct[plain], spec)
        if fixed is not None:
            # the few others (NaN, infinities, huge magnitudes) by Python's format
            rest = np.flatnonzero(~plain)
            others = pa.array([one(float(distinct[i])) for i in rest], pa.large_string())
            where = np.empty(len(distinct), dtype=np.int64)
            where[np.flatnonzero(plain)] = np.arange(int(plain.sum()))
            where[rest] = int(plain.sum()) + np.arange(len(rest))
            return _spread([fixed, others, pa.array(["—"], pa.large_string())],
                           np.where(codes < 0, len(distinct), where[np.maximum(codes, 0)]))
        uniques = [float(x) for x in distinct]
    else:
        return pa.array([one(v) for v in values], pa.large_string())
    return _spread([pa.array([one(u) for u in uniques] + ["—"], pa.large_string())],
                   np.where(codes < 0, len(uniques), codes))


def _spread(parts: list[Any], positions: Any) -> Any:
    """The texts ``parts`` (Arrow string arrays, joined) taken at ``positions``: each distinct
    value's text put back on every row that holds it."""
    import pyarrow as pa

    texts = pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
    return texts.take(pa.array(positions, pa.int64()))


def render_messages(template: str, frame: pd.DataFrame,
                    formatted: dict[tuple[str, str], pa.Array] | None = None) -> pd.Series:
    """Render a message template for every row of ``frame`` (columns ``f_<name>``).

    The pieces (literal text and formatted columns) are joined by one Arrow kernel, not by
    a pandas string concatenation per piece. ``formatted`` caches formatted columns by
    (column, format): the Chinese and English messages of a finding show the same values.
    """
    import string

    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    formatted = {} if formatted is None else formatted
    pieces: list[Any] = []
    for literal, name, spec, _conv in string.Formatter().parse(template):
        if literal:
            pieces.append(pa.scalar(literal, pa.large_string()))
        if name is None:
            continue
        source = {"est_excess_cny": "__excess", "score": "__score"}.get(name, f"f_{name}")
        key = (source, spec or "")
        if key not in formatted:
            formatted[key] = _format_column(frame[source].astype(object), spec or "")
        pieces.append(formatted[key])
    if not any(isinstance(p, pa.Array) for p in pieces):  # no placeholder: the text itself
        text = "".join(p.as_py() for p in pieces)
        return pd.Series([text] * len(frame), index=frame.index, dtype=object)
    joined = pc.binary_join_element_wise(*pieces, pa.scalar("", pa.large_string()))
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=frame.index, dtype=object)


