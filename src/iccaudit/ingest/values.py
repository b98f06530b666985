"""Vectorised parsers for the cell values of tender tables.

Every parser takes a pandas Series of cell text (``None``/NaN for an empty cell) and returns a
:class:`Parsed` pair of aligned numpy arrays: the value and a status code. Parsers never raise on
bad input and never guess: text that is not clearly a number (or a real date) gets the status
``BAD`` and becomes a reject upstream, with the original text kept in the reject's detail.

All work is done with pandas ``str`` methods and numpy; there is no Python loop per row.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pandas as pd

# Status codes shared by all parsers.
OK = 0
EMPTY = 1  # nothing in the cell
WORDS = 2  # a word that means "no value here": 面议, 详见附件, 待定 ...
BAD = 3  # not a number / not a date
NEGATIVE = 4  # a number below zero
NOT_POSITIVE = 5  # quantity zero or below

#: Cell text that says "no price given" rather than being a broken number.
NO_VALUE_WORDS = (
    r"面议|详见附件|见附件|详见报价单|详见清单|另议|待定|暂定|未报价|不报价|/|-|—|——|－|"
    r"无|n/?a|tbd|null|none"
)

# A plain decimal number, with optional thousands separators and exponent.
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?"
_SIGN = r"[-+\u2212]"
_CURRENCY = r"(?:¥|rmb|cny|人民币)"

_MONEY_RE = (
    rf"^(?P<s1>{_SIGN})?{_CURRENCY}?(?P<s2>{_SIGN})?(?P<num>{_NUM})"
    r"(?P<mult>万|亿|千)?(?P<yuan>元|块)?(?:人民币|rmb|cny)?(?:/[^\d/]{1,4})?$"
)
_QTY_RE = rf"^(?P<sign>{_SIGN})?(?P<num>{_NUM})(?P<unit>[^\d\s.,:;/\\|()\-+]{{1,6}})?$"
_MULT = {"万": 1e4, "亿": 1e8, "千": 1e3}

_CAP_UNITS = {"kw": 1.0, "千瓦": 1.0, "mw": 1000.0, "兆瓦": 1000.0, "w": 0.001, "瓦": 0.001}
_CAP_COL_RE = rf"^(?P<sign>{_SIGN})?(?P<num>{_NUM})(?P<unit>kw|千瓦|mw|兆瓦|w|瓦)?$"
_CAP_VALUE = r"(\d+(?:\.\d+)?)\s*(kw|千瓦|mw|兆瓦)(?![a-z])"
# Cooling wording is the strongest evidence of the capacity a cooling line is priced by;
# power wording next; a bare "500 kW" last.
_CAP_TEXT_RES = (
    r"(?:制冷量|制冷能力|冷量|散热量|散热能力|冷却能力|换热量|cooling\s*capacity)"
    r"[^\d\n]{0,8}?" + _CAP_VALUE,
    r"(?:功率|容量|负荷|负载|capacity|power)[^\d\n]{0,8}?" + _CAP_VALUE,
    _CAP_VALUE,
)

_PFLOPS_UNITS = {"e": 1000.0, "p": 1.0, "t": 0.001}
_PFLOPS_RE = rf"^(?:≥|>=|>|不低于|不少于|约)?(?P<num>{_NUM})(?P<unit>(?:e|p|t)(?:f|flops)?)?(?:级)?$"

# Excel serial day numbers we accept as dates: 1954-10-03 .. 2119-01-10. Outside that a
# five-digit number in a date column is more likely something else, so it is not guessed.
_EXCEL_SERIAL_MIN, _EXCEL_SERIAL_MAX = 20000, 80000
_EXCEL_EPOCH = np.datetime64("1899-12-30")
_DATE_RES = (
    # 2024-03-05, 2024/3/5, 2024.03.05, 2024年3月5日, with an optional time
    (
        r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"
        r"(?:[ t]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
    ),
    r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$",
)


class Parsed(NamedTuple):
    """Parsed values and a status code per row (``OK``, ``EMPTY``, ``BAD`` ...)."""

    value: np.ndarray
    status: np.ndarray


def _text(s: pd.Series) -> pd.Series:
    """Any Series as pandas text, empty cells NaN."""
    return s.astype(object).where(s.notna(), None).astype("str")


def prepare(s: pd.Series) -> pd.Series:
    """Cell text made comparable: NFKC (full-width to half-width), no whitespace, lower case.

    Empty cells are NaN afterwards, whatever they were before.
    """
    t = _text(s).str.normalize("NFKC").str.replace(r"\s+", "", regex=True).str.lower()
    return t.where(t != "", np.nan)


def _empty(t: pd.Series) -> np.ndarray:
    return t.isna().to_numpy()


def _to_float(num: pd.Series) -> np.ndarray:
    """Matched number text to float; overflow ("1e309") becomes inf and is caught by callers."""
    out = pd.to_numeric(num.str.replace(",", "", regex=False), errors="coerce")
    return out.to_numpy(dtype="float64", na_value=np.nan)


def parse_money(s: pd.Series, scale: float = 1.0) -> Parsed:
    """Money cells to CNY.

    ``scale`` is the column's unit (10,000 for a 万元 column). A unit written in the cell wins
    over the column's: "245万" is 2,450,000 in any column, "3000元" is 3,000 even under 万元.
    """
    t = prepare(s)
    m = t.str.extract(_MONEY_RE)
    num = _to_float(m["num"])
    mult = m["mult"].map(_MULT).to_numpy(dtype="float64", na_value=np.nan)
    yuan = m["yuan"].notna().to_numpy()
    factor = np.where(~np.isnan(mult), mult, np.where(yuan, 1.0, scale))
    with np.errstate(over="ignore", invalid="ignore"):
        value = num * factor
    negative = (m["s1"].isin(["-", "\u2212"]) | m["s2"].isin(["-", "\u2212"])).to_numpy()
    status = np.full(len(t), OK, dtype="int8")
    bad = ~np.isfinite(value)
    status[bad] = BAD
    status[~bad & negative & (value != 0)] = NEGATIVE
    value = np.where(negative, -value, value)
    status[t.str.fullmatch(NO_VALUE_WORDS).fillna(False).to_numpy(dtype=bool)] = WORDS
    status[_empty(t)] = EMPTY
    value[status != OK] = np.nan
    return Parsed(value, status)


class Quantity(NamedTuple):
    """Quantities, their status, and a unit written in the cell ("8台" -> "台") or NaN."""

    value: np.ndarray
    status: np.ndarray
    unit: pd.Series


def parse_quantity(s: pd.Series) -> Quantity:
    """Quantity cells ("8", "8台", "2 套", "1,000") to float; zero or less is NOT_POSITIVE."""
    t = prepare(s)
    # Matched case-preserved so the unit keeps its spelling ("10 PCS" -> "PCS").
    cased = _text(s).str.normalize("NFKC").str.replace(r"\s+", "", regex=True)
    m = cased.str.extract(_QTY_RE, flags=re.IGNORECASE)
    value = _to_float(m["num"])
    negative = m["sign"].isin(["-", "\u2212"]).to_numpy()
    value = np.where(negative, -value, value)
    status = np.full(len(t), OK, dtype="int8")
    bad = ~np.isfinite(value)
    status[bad] = BAD
    status[~bad & (value <= 0)] = NOT_POSITIVE
    status[_empty(t)] = EMPTY
    value[status != OK] = np.nan
    unit = m["unit"].where(status == OK, np.nan)
    return Quantity(value, status, unit)


def parse_capacity(s: pd.Series, scale: float = 1.0) -> Parsed:
    """A capacity column to kW; ``scale`` is the column unit (1000 for MW). Cell units win."""
    t = prepare(s)
    m = t.str.extract(_CAP_COL_RE)
    num = _to_float(m["num"])
    unit = m["unit"].map(_CAP_UNITS).to_numpy(dtype="float64", na_value=np.nan)
    value = num * np.where(np.isnan(unit), scale, unit)
    status = np.full(len(t), OK, dtype="int8")
    bad = ~np.isfinite(value) | m["sign"].isin(["-", "\u2212"]).to_numpy()
    status[bad] = BAD
    status[t.str.fullmatch(NO_VALUE_WORDS).fillna(False).to_numpy(dtype=bool)] = EMPTY
    status[_empty(t)] = EMPTY
    value[status != OK] = np.nan
    return Parsed(value, status)


def capacity_from_text(s: pd.Series) -> np.ndarray:
    """kW mentioned in free text ("制冷量800kW", "0.8MW", "冷量:600千瓦"); NaN if none."""
    t = _text(s).str.normalize("NFKC").str.lower()
    out = np.full(len(t), np.nan)
    for pattern in _CAP_TEXT_RES:  # three passes in order of evidence strength, not per row
        m = t.str.extract(pattern)
        kw = _to_float(m[0]) * m[1].map(_CAP_UNITS).to_numpy(dtype="float64", na_value=np.nan)
        take = np.isnan(out) & np.isfinite(kw)
        out[take] = kw[take]
    return out


def parse_pflops(s: pd.Series, scale: float = 1.0) -> Parsed:
    """Compute claims to PFLOPS ("500", "500P", "≥500 PFLOPS", "1.2E"); ``scale`` = column unit."""
    t = prepare(s)
    m = t.str.extract(_PFLOPS_RE)
    num = _to_float(m["num"])
    unit = m["unit"].str[0].map(_PFLOPS_UNITS).to_numpy(dtype="float64", na_value=np.nan)
    value = num * np.where(np.isnan(unit), scale, unit)
    status = np.full(len(t), OK, dtype="int8")
    status[~np.isfinite(value)] = BAD
    status[_empty(t)] = EMPTY
    value[status != OK] = np.nan
    return Parsed(value, status)


def parse_date(s: pd.Series) -> Parsed:
    """Dates in Chinese and ISO forms, YYYYMMDD, or Excel serial day numbers.

    Returns an object array of :class:`datetime.date` (None where not OK). A date that does
    not exist (2024-02-30) or a form we do not know ("2024年3月", "next week") is ``BAD``.
    """
    t = _text(s).str.normalize("NFKC").str.strip().str.lower()
    t = t.str.replace(r"\s+", " ", regex=True)
    t = t.where(t != "", np.nan)
    y = pd.Series(np.nan, index=t.index)
    mo = y.copy()
    d = y.copy()
    for pattern in _DATE_RES:
        m = t.str.extract(pattern)
        take = y.isna() & m["y"].notna()
        y[take] = pd.to_numeric(m["y"][take])
        mo[take] = pd.to_numeric(m["m"][take])
        d[take] = pd.to_numeric(m["d"][take])
    parts = pd.DataFrame({"year": y, "month": mo, "day": d})
    # Only build dates whose parts are in range: 2024-02-30 must be NaT, not an error.
    sane = y.between(1900, 2100) & mo.between(1, 12) & d.between(1, 31)
    stamps = pd.Series(pd.NaT, index=t.index, dtype="datetime64[ns]")
    if sane.any():
        stamps[sane] = pd.to_datetime(parts[sane], errors="coerce")
    serial = pd.to_numeric(t.where(t.str.fullmatch(r"\d{5}(?:\.\d+)?").fillna(False)),
                           errors="coerce")
    in_range = serial.between(_EXCEL_SERIAL_MIN, _EXCEL_SERIAL_MAX) & y.isna()
    if in_range.any():
        days = np.floor(serial[in_range].to_numpy()).astype("int64")
        stamps[in_range] = _EXCEL_EPOCH + days.astype("timedelta64[D]")
    status = np.full(len(t), OK, dtype="int8")
    status[stamps.isna().to_numpy()] = BAD
    status[_empty(t)] = EMPTY
    value = np.full(len(t), None, dtype=object)
    ok = status == OK
    if ok.any():
        value[ok] = stamps[ok].dt.date.to_numpy()
    return Parsed(value, status)


def split_serials(s: pd.Series) -> pd.Series:
    """序列号 cells to lists of serial numbers, split on , ; ， ； 、 whitespace and newlines."""
    t = s.astype(object).where(s.notna(), "").astype("str").str.normalize("NFKC")
    return t.str.findall(r"[^,;、\s]+").astype(object)


def clean_line_no(s: pd.Series) -> pd.Series:
    """序号 as text: stripped, "3.0" (an Excel number) shown as "3"; NaN when empty."""
    t = _text(s).str.strip()
    t = t.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return t.where(t != "", np.nan)
