"""Finding messages, set-at-a-time: each distinct value formatted once with the rule's format
spec, the template's pieces joined by one Arrow kernel per message (no Python per finding).
"""

from __future__ import annotations

import math
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
    elif kind == "floating":
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        bits, _ = pd.factorize(numbers.view(np.int64))  # by bit pattern: -0.0 is not 0.0
        first = pd.Series(np.arange(len(bits))).groupby(bits).first().to_numpy()
        uniques = [float(x) for x in numbers[first]]
        codes = np.where(np.isnan(numbers), -1, bits)
    else:
        return pa.array([one(v) for v in values], pa.large_string())
    texts = pa.array([one(u) for u in uniques] + ["—"], pa.large_string())
    positions: pa.Array = pa.array(np.where(codes < 0, len(uniques), codes))
    return texts.take(positions)


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


