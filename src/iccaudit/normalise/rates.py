"""Amounts in another currency converted to yuan, only through a dated rate table the user
gives (``--rates rates.csv``); without one they stay in their currency (``currency``).

The table is a CSV with the header ``currency,date,cny_per_unit`` (one row per currency and
day: 1 unit of the currency is worth ``cny_per_unit`` yuan from that day on). A line takes the
rate of the latest day on or before its date; a line without a date, or dated before the
table's first day for its currency, is not converted and keeps its currency.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit.read import IngestError

RATE_COLUMNS = ("currency", "date", "cny_per_unit")


@dataclass(frozen=True)
class Rates:
    """Per currency code: its days (datetime64[D], ascending) and yuan per unit on each."""

    days: dict[str, np.ndarray]
    cny: dict[str, np.ndarray]


def load_rates(path: Path) -> Rates:
    """Read and check a rate table; a problem is one line naming the file and row."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"{path}: cannot read the rate table: {exc}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0]] != list(RATE_COLUMNS):
        raise IngestError(f"{path}: row 1: a rate table needs the header "
                          f"{','.join(RATE_COLUMNS)}")
    seen: dict[str, list[tuple[np.datetime64, float]]] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 3:
            raise IngestError(f"{path}: row {n}: expected 3 cells, found {len(row)}")
        code, day, rate = (c.strip() for c in row)
        try:
            when = np.datetime64(dt.date.fromisoformat(day), "D")
        except ValueError:
            raise IngestError(f"{path}: row {n}, column date: not a date (YYYY-MM-DD): "
                              f"{day!r}") from None
        try:
            value = float(rate)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value) or value <= 0:
            raise IngestError(f"{path}: row {n}, column cny_per_unit: not a positive "
                              f"number: {rate!r}")
        if not code.isalpha() or len(code) != 3:
            raise IngestError(f"{path}: row {n}, column currency: not an ISO 4217 code: "
                              f"{code!r}")
        seen.setdefault(code.upper(), []).append((when, value))
    days, cny = {}, {}
    for code, pairs in seen.items():
        pairs.sort()
        if len({d for d, _ in pairs}) != len(pairs):
            raise IngestError(f"{path}: {code} has two rates for one day")
        days[code] = np.array([d for d, _ in pairs], dtype="datetime64[D]")
        cny[code] = np.array([v for _, v in pairs], dtype="float64")
    return Rates(days, cny)


def to_yuan(items: pa.Table, rates: Rates | None) -> pa.Table:
    """Lines in a currency of the table converted to yuan (``currency`` becomes CNY); the
    amounts as published stay in each line's ``raw`` cells."""
    if rates is None or not items.num_rows or items.column("currency").null_count == len(items):
        return items
    code = items.column("currency").to_numpy(zero_copy_only=False)
    days = items.column("date").cast(pa.int32()).to_numpy(zero_copy_only=False)
    factor = np.full(items.num_rows, np.nan)
    for cur, table_days in rates.days.items():
        mine = np.flatnonzero((code == cur) & ~np.isnan(days.astype("float64")))
        if not len(mine):
            continue
        k = np.searchsorted(table_days.astype("int64"), days[mine].astype("int64"),
                            side="right") - 1
        ok = k >= 0
        factor[mine[ok]] = rates.cny[cur][k[ok]]
    hit = ~np.isnan(factor)
    if not hit.any():
        return items
    mask = pa.array(hit)
    scale = pa.array(np.where(hit, factor, 1.0))
    out = items
    for name in ("unit_price_cny", "total_cny"):
        i = out.schema.get_field_index(name)
        out = out.set_column(i, name, pc.multiply(out.column(name), scale))
    i = out.schema.get_field_index("currency")
    out = out.set_column(i, "currency", pc.if_else(mask, pa.scalar("CNY", pa.large_string()),
                                                  out.column("currency")))
    return out
