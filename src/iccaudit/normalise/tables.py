"""The shapes every normalising step shares: the output columns, the Arrow schema of line items,
a sheet without a table (:class:`TableResult`), and a row's cells as one text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit.core import schema
from iccaudit.normalise import values as V
from iccaudit.normalise.headers import HeaderInfo

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
_TEXT_FIELDS = ("item_name", "brand", "model", "spec", "unit", "supplier", "buyer", "condition",
                "currency")


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


def all_null(cols: list[pa.Array], n: int) -> np.ndarray:
    """Per row: every cell empty."""
    if not cols:
        return np.ones(n, dtype=bool)
    valid = [pc.is_valid(c).to_numpy(zero_copy_only=False) for c in cols]
    return ~np.logical_or.reduce(valid)


def unique_names(infos: list[HeaderInfo]) -> list[str]:
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
