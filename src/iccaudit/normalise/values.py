"""Vectorised parsers for the cell values of tender tables.

Every parser takes a pandas Series of cell text (``None``/NaN for an empty cell) and returns a
:class:`Parsed` pair of aligned numpy arrays: the value and a status code. Parsers never raise on
bad input and never guess: text that is not clearly a number (or a real date) gets the status
``BAD`` and becomes a reject upstream, with the original text kept in the reject's detail.

The work runs in Arrow compute kernels (RE2 regular expressions, NFKC normalisation) and numpy,
set-at-a-time; there is no Python loop per row. RE2 has no look-around, so the patterns below
use none.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit.read.cells import arrow

# Status codes shared by all parsers.
OK = 0
EMPTY = 1  # nothing in the cell
WORDS = 2  # a word that means "no value here": 面议, 详见附件, 待定 ...
BAD = 3  # not a number / not a date
NEGATIVE = 4  # a number below zero
NOT_POSITIVE = 5  # quantity zero or below

#: Cell text that says "no price given" rather than being a broken number.
NO_VALUE_WORDS = (
    r"面议|详见附件|见附件|详见报价单|详见清单|另议|待定|暂定|未报价|不报价|/|-|—|——|"
    r"无|n/?a|tbd|null|none"
)

# A plain decimal number, with optional thousands separators and exponent. Text is prepared
# (NFKC, lower case, U+2212 minus as "-") before any pattern sees it.
_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?"
_CURRENCY = r"(?:¥|rmb|cny|人民币)"

_MONEY_RE = (
    rf"^(?P<s1>[-+])?{_CURRENCY}?(?P<s2>[-+])?(?P<num>{_NUM})"
    r"(?P<mult>万|亿|千)?(?P<yuan>元|块)?(?:人民币|rmb|cny)?(?:/[^\d/]{1,4})?$"
)
_QTY_RE = rf"(?i)^(?P<sign>[-+])?(?P<num>{_NUM})(?P<unit>[^\d\s.,:;/\\|()+-]{{1,6}})?$"
_MULT = {"万": 1e4, "亿": 1e8, "千": 1e3}

# the power units of rules/lexicon/units.yaml (a test holds them equal); 1 RT = 3.517 kW
_CAP_UNITS = {"kw": 1.0, "千瓦": 1.0, "mw": 1000.0, "兆瓦": 1000.0, "w": 0.001, "瓦": 0.001,
              "rt": 3.517, "冷吨": 3.517, "美国冷吨": 3.517, "usrt": 3.517}
_CAP_COL_RE = (rf"^(?P<sign>[-+])?(?P<num>{_NUM})"
               r"(?P<unit>kw|千瓦|mw|兆瓦|usrt|rt|美国冷吨|冷吨|w|瓦)?$")
# A number not starting inside another ("1,000kW" is 1000, never "000kW"), then a power unit
# not followed by a letter ("kWh" is energy).
_CAP_VALUE = (
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*"
    r"(?P<unit>kw|千瓦|mw|兆瓦|usrt|rt|美国冷吨|冷吨)(?:[^a-z]|$)"
)
# Cooling wording is the strongest evidence of the capacity a cooling line is priced by;
# power wording next; a bare "500 kW" last. The label (or a non-digit) before the number
# makes sure it does not start inside another number.
_COOLING_LABEL = r"(?:制冷量|制冷能力|冷量|散热量|散热能力|冷却能力|换热量|cooling\s*capacity)"
_CAP_TEXT_RES = (
    _COOLING_LABEL + r"[^\d\n]{0,8}?" + _CAP_VALUE,
    # the unit in brackets before the number: "额定制冷量(kW)：450"
    _COOLING_LABEL + r"\s*[(（\[]\s*(?P<unit>kw|千瓦|mw|兆瓦|usrt|rt|美国冷吨|冷吨)\s*[)）\]]"
    r"\s*[:：=]?\s*(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)",
    r"(?:功率|容量|负荷|负载|capacity|power)[^\d\n]{0,8}?" + _CAP_VALUE,
    r"(?:^|[^\d.,])" + _CAP_VALUE,
)

_PFLOPS_UNITS = {"e": 1000.0, "p": 1.0, "t": 0.001}
_PFLOPS_RE = (
    rf"^(?:≥|>=|>|不低于|不少于|约)?(?P<num>{_NUM})(?P<unit>[ept])?(?:f|flops)?(?:级)?$"
)

# Excel serial day numbers we accept as dates: 1954-10-03 .. 2119-01-10. Outside that a
# five-digit number in a date column is more likely something else, so it is not guessed.
_EXCEL_SERIAL_MIN, _EXCEL_SERIAL_MAX = 20000, 80000
_EXCEL_EPOCH = np.datetime64("1899-12-30")
_DATE_RES = (
    # 2024-03-05, 2024/3/5, 2024.03.05, 2024年3月5日, with an optional time
    (
        r"^(?P<y>\d{4}) ?[-/.年] ?(?P<m>\d{1,2}) ?[-/.月] ?(?P<d>\d{1,2}) ?[日号]?"
        r"(?:[ t]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
    ),
    r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$",
)


class Parsed(NamedTuple):
    """Parsed values and a status code per row (``OK``, ``EMPTY``, ``BAD`` ...)."""

    value: np.ndarray
    status: np.ndarray


class Quantity(NamedTuple):
    """Quantities, their status, and a unit written in the cell ("8台" -> "台") or NaN."""

    value: np.ndarray
    status: np.ndarray
    unit: pd.Series


# ---------------------------------------------------------------- Arrow helpers


def distinct(s: pd.Series | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The distinct cell texts (null among them) and, per row, the position of its text.

    Tender columns repeat their values (quantities, units, dates, catalogue prices), so the
    parsers below do their text work once per distinct text and spread the results with
    ``inverse``: the same values as parsing every row, at a fraction of the cost.
    """
    enc = pc.dictionary_encode(arrow(s), null_encoding="encode")
    return enc.dictionary, enc.indices.to_numpy(zero_copy_only=False)


def null_if_blank(t: pa.Array) -> pa.Array:
    """Empty strings to null (whitespace is the caller's to trim)."""
    blank = pc.equal(t, "")
    if not pc.any(blank).as_py():
        return t  # the usual case: no copy of the text
    return pc.if_else(blank, pa.scalar(None, t.type), t)


def prepared(s: pd.Series | pa.Array, spaces: str = "") -> pa.Array:
    """NFKC (full-width to half-width), whitespace removed (or collapsed), lower case."""
    t = arrow(s)
    t = pc.utf8_normalize(t, "NFKC")
    t = pc.replace_substring(t, "\u2212", "-")  # NFKC keeps the minus sign U+2212
    t = pc.replace_substring_regex(t, r"\s+", spaces)
    t = pc.utf8_trim_whitespace(pc.utf8_lower(t))
    return null_if_blank(t)


def prepare(s: pd.Series) -> pd.Series:
    """:func:`prepared` as a pandas Series aligned with ``s``."""
    return pd.Series(pd.arrays.ArrowStringArray(prepared(s)), index=s.index)


def fullmatch(t: pa.Array, pattern: str) -> np.ndarray:
    """Whether each (prepared) cell matches ``pattern`` entirely; False for empty cells."""
    hit = pc.match_substring_regex(t, f"^(?:{pattern})$")
    return hit.fill_null(False).to_numpy(zero_copy_only=False)


def extract(t: pa.Array, pattern: str) -> dict[str, pa.Array]:
    """Named groups of the first match per cell; null where no match or the group is empty."""
    found = pc.extract_regex(t, pattern)
    valid = pc.is_valid(found)
    out = {}
    for i in range(found.type.num_fields):
        name = found.type.field(i).name
        part = pc.struct_field(found, [i])
        out[name] = null_if_blank(pc.if_else(valid, part, pa.scalar(None, part.type)))
    return out


def _float(t: pa.Array) -> np.ndarray:
    """Matched number text to float (NaN for null); "1e309" overflows to inf for callers."""
    return pc.cast(pc.replace_substring(t, ",", ""), pa.float64()).to_numpy(
        zero_copy_only=False
    )


def _lookup(t: pa.Array, table: dict[str, float]) -> np.ndarray:
    """Map text through a small table; NaN for null or unknown."""
    idx = pc.index_in(t, value_set=pa.array(list(table))).to_numpy(zero_copy_only=False)
    values = np.asarray(list(table.values()) + [np.nan])
    idx = np.where(np.isnan(idx.astype(float)), len(table), idx).astype(int)
    return values[idx]


def _is(t: pa.Array, value: str) -> np.ndarray:
    return pc.equal(t, value).fill_null(False).to_numpy(zero_copy_only=False)


def _empty(t: pa.Array) -> np.ndarray:
    return pc.is_null(t).to_numpy(zero_copy_only=False)


# ---------------------------------------------------------------- parsers


def parse_money(s: pd.Series | pa.Array, scale: float | np.ndarray = 1.0) -> Parsed:
    """Money cells to CNY.

    ``scale`` is the column's unit (10,000 for a 万元 column), one number or one per row. A unit written in the cell wins
    over the column's: "245万" is 2,450,000 in any column, "3000元" is 3,000 even under 万元.
    """
    uniq, inv = distinct(s)
    t = prepared(uniq)
    m = extract(t, _MONEY_RE)
    num = _float(m["num"])[inv]
    mult = _lookup(m["mult"], _MULT)[inv]
    yuan = pc.is_valid(m["yuan"]).to_numpy(zero_copy_only=False)[inv]
    factor = np.where(~np.isnan(mult), mult, np.where(yuan, 1.0, scale))
    with np.errstate(over="ignore", invalid="ignore"):
        value = num * factor
    negative = (_is(m["s1"], "-") | _is(m["s2"], "-"))[inv]
    status = np.full(len(inv), OK, dtype="int8")
    bad = ~np.isfinite(value)
    status[bad] = BAD
    status[~bad & negative & (value != 0)] = NEGATIVE
    status[fullmatch(t, NO_VALUE_WORDS)[inv]] = WORDS
    status[_empty(t)[inv]] = EMPTY
    value = np.where(status == OK, value, np.nan)
    return Parsed(value, status)


def quantity_units(s: pd.Series | pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """:func:`parse_quantity` with the cell units as an Arrow array (no Python objects)."""
    raw, inv = distinct(s)
    t = prepared(raw)
    # Matched case-preserved so the unit keeps its spelling ("10 PCS" -> "PCS").
    cased = pc.replace_substring(pc.utf8_normalize(raw, "NFKC"), "\u2212", "-")
    m = extract(null_if_blank(pc.replace_substring_regex(cased, r"\s+", "")), _QTY_RE)
    value = _float(m["num"])
    value = np.where(_is(m["sign"], "-"), -value, value)
    status = np.full(len(t), OK, dtype="int8")
    bad = ~np.isfinite(value)
    status[bad] = BAD
    status[~bad & (value <= 0)] = NOT_POSITIVE
    status[_empty(t)] = EMPTY
    value = np.where(status == OK, value, np.nan)
    unit = pc.if_else(pa.array(status == OK), m["unit"], pa.scalar(None, m["unit"].type))
    return value[inv], status[inv], unit.take(pa.array(inv))


def parse_quantity(s: pd.Series | pa.Array) -> Quantity:
    """Quantity cells ("8", "8台", "2 套", "1,000") to float; zero or less is NOT_POSITIVE."""
    value, status, unit = quantity_units(s)
    index = s.index if isinstance(s, pd.Series) else None
    units = pd.Series(unit.to_numpy(zero_copy_only=False), index=index, dtype=object)
    return Quantity(value, status, units.where(units.notna(), None))


def _number_with_unit(s: pd.Series | pa.Array, pattern: str, units: dict[str, float],
                      scale: float | np.ndarray
                      ) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """(distinct texts prepared, their regex groups, the row's text position, value per row):
    a number times its cell unit, else the column's ``scale``.

    Overflow gives inf, which the callers reject.
    """
    uniq, inv = distinct(s)
    t = prepared(uniq)
    m = extract(t, pattern)
    unit = _lookup(m["unit"], units)[inv]
    with np.errstate(over="ignore", invalid="ignore"):
        value = _float(m["num"])[inv] * np.where(np.isnan(unit), scale, unit)
    return t, m, inv, value


def parse_capacity(s: pd.Series | pa.Array, scale: float | np.ndarray = 1.0) -> Parsed:
    """A capacity column to kW; ``scale`` is the column unit (1000 for MW). Cell units win."""
    t, m, inv, value = _number_with_unit(s, _CAP_COL_RE, _CAP_UNITS, scale)
    status = np.full(len(inv), OK, dtype="int8")
    status[~np.isfinite(value) | _is(m["sign"], "-")[inv]] = BAD
    status[(fullmatch(t, NO_VALUE_WORDS) | _empty(t))[inv]] = EMPTY
    value = np.where(status == OK, value, np.nan)
    return Parsed(value, status)


#: Every non-ASCII character whose NFKC form, lower-cased, holds k, m, w, 千, 瓦 or 兆 (full-width
#: "ｋＷ", "㎾", the Kelvin sign, mathematical letters ...): generated from the Unicode
#: database; a test checks it still covers all of them.
_UNIT_CHARS = (
    r"\x{2b7}\x{1d37}\x{1d39}\x{1d42}\x{1d4f}-\x{1d50}\x{2096}\x{2098}\x{2120}"
    r"\x{2122}\x{212a}\x{2133}\x{216f}\x{217f}\x{24a6}\x{24a8}\x{24b2}\x{24c0}"
    r"\x{24c2}\x{24cc}\x{24da}\x{24dc}\x{24e6}\x{2f61}\x{3377}-\x{3379}"
    r"\x{3383}-\x{3386}\x{3389}\x{338e}-\x{338f}\x{3391}-\x{3392}\x{3396}"
    r"\x{3398}-\x{33a8}\x{33aa}-\x{33ab}\x{33b3}\x{33b7}-\x{33c2}\x{33c6}"
    r"\x{33cd}-\x{33d0}\x{33d4}-\x{33d6}\x{33d8}-\x{33d9}\x{33dd}-\x{33df}\x{5146}"
    r"\x{5343}\x{74e6}\x{ff2b}\x{ff2d}\x{ff37}\x{ff4b}\x{ff4d}\x{ff57}\x{1d40a}"
    r"\x{1d40c}\x{1d416}\x{1d424}\x{1d426}\x{1d430}\x{1d43e}\x{1d440}\x{1d44a}"
    r"\x{1d458}\x{1d45a}\x{1d464}\x{1d472}\x{1d474}\x{1d47e}\x{1d48c}\x{1d48e}"
    r"\x{1d498}\x{1d4a6}\x{1d4b2}\x{1d4c0}\x{1d4c2}\x{1d4cc}\x{1d4da}\x{1d4dc}"
    r"\x{1d4e6}\x{1d4f4}\x{1d4f6}\x{1d500}\x{1d50e}\x{1d510}\x{1d51a}\x{1d528}"
    r"\x{1d52a}\x{1d534}\x{1d542}\x{1d544}\x{1d54e}\x{1d55c}\x{1d55e}\x{1d568}"
    r"\x{1d576}\x{1d578}\x{1d582}\x{1d590}\x{1d592}\x{1d59c}\x{1d5aa}\x{1d5ac}"
    r"\x{1d5b6}\x{1d5c4}\x{1d5c6}\x{1d5d0}\x{1d5de}\x{1d5e0}\x{1d5ea}\x{1d5f8}"
    r"\x{1d5fa}\x{1d604}\x{1d612}\x{1d614}\x{1d61e}\x{1d62c}\x{1d62e}\x{1d638}"
    r"\x{1d646}\x{1d648}\x{1d652}\x{1d660}\x{1d662}\x{1d66c}\x{1d67a}\x{1d67c}"
    r"\x{1d686}\x{1d694}\x{1d696}\x{1d6a0}\x{1f11a}\x{1f11c}\x{1f126}\x{1f12e}"
    r"\x{1f13a}\x{1f13c}\x{1f146}\x{1f14b}\x{1f14f}\x{1f16a}-\x{1f16c}"
)
#: Text that can mention a power unit once prepared: "kw"/"mw" as written (ASCII text is
#: unchanged by NFKC but for case), or any character NFKC could turn into part of one.
_MAY_HOLD_UNIT = rf"(?i)kw|mw|rt|冷吨|[{_UNIT_CHARS}]"


def may_hold_power_unit(s: pd.Series | pa.Array) -> np.ndarray:
    """Cells that can mention kW/MW/千瓦/兆瓦 after preparation (a cheap test on the raw text,
    once per distinct text)."""
    uniq, inv = distinct(s)
    return pc.match_substring_regex(uniq, _MAY_HOLD_UNIT).fill_null(False).to_numpy(
        zero_copy_only=False)[inv]


def capacity_from_text(s: pd.Series | pa.Array) -> np.ndarray:
    """kW mentioned in free text ("制冷量800kW", "0.8MW", "冷量:600千瓦", "227冷吨"); NaN if
    none."""
    raw = arrow(s)
    out = np.full(len(raw), np.nan)
    # Only rows that can mention a power unit are prepared and searched (most lines are not
    # cooling); the exact test runs on the prepared text.
    maybe_rows = np.flatnonzero(may_hold_power_unit(raw))
    if not len(maybe_rows):
        return out
    t = prepared(raw.take(pa.array(maybe_rows)), spaces=" ")
    hit = np.flatnonzero(pc.match_substring_regex(t, r"kw|千瓦|mw|兆瓦|rt|冷吨").fill_null(False).to_numpy(
        zero_copy_only=False))
    rows = maybe_rows[hit]
    if not len(rows):
        return out
    sub = t.take(pa.array(hit))
    found = np.full(len(rows), np.nan)
    for pattern in _CAP_TEXT_RES:  # three passes in order of evidence strength, not per row
        m = extract(sub, pattern)
        kw = _float(m["num"]) * _lookup(m["unit"], _CAP_UNITS)
        take = np.isnan(found) & np.isfinite(kw)
        found[take] = kw[take]
    out[rows] = found
    return out


def parse_pflops(s: pd.Series | pa.Array, scale: float | np.ndarray = 1.0) -> Parsed:
    """Compute claims to PFLOPS ("500", "500P", "≥500 PFLOPS", "1.2E"); ``scale`` = column unit."""
    t, _, inv, value = _number_with_unit(s, _PFLOPS_RE, _PFLOPS_UNITS, scale)
    status = np.full(len(inv), OK, dtype="int8")
    status[~np.isfinite(value)] = BAD
    status[_empty(t)[inv]] = EMPTY
    value = np.where(status == OK, value, np.nan)
    return Parsed(value, status)


def parse_date_days(s: pd.Series | pa.Array) -> Parsed:
    """:func:`parse_date` with the values as ``datetime64[D]`` (NaT where not OK).

    The form the batch normaliser uses: no Python ``date`` object per row. Each distinct
    text is parsed once.
    """
    uniq, inv = distinct(s)
    days, status = _date_days(prepared(uniq, spaces=" "))
    return Parsed(days[inv], status[inv])


def _date_days(t: pa.Array) -> Parsed:
    """:func:`parse_date_days` of prepared text."""
    n = len(t)
    y = np.full(n, np.nan)
    mo = y.copy()
    d = y.copy()
    for pattern in _DATE_RES:
        m = extract(t, pattern)
        take = np.isnan(y) & pc.is_valid(m["y"]).to_numpy(zero_copy_only=False)
        y[take] = _float(m["y"])[take]
        mo[take] = _float(m["m"])[take]
        d[take] = _float(m["d"])[take]
    # Only build dates whose parts are in range; a day past the month's end (2024-02-30)
    # rolls into the next month, which is how it is recognised as not a date.
    sane = (y >= 1900) & (y <= 2100) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= 31)
    days = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    if sane.any():
        month = ((y[sane] - 1970) * 12 + mo[sane] - 1).astype("int64").astype("datetime64[M]")
        day = month.astype("datetime64[D]") + (d[sane] - 1).astype("int64")
        days[sane] = np.where(day.astype("datetime64[M]") == month, day, np.datetime64("NaT"))
    serial = _float(extract(t, r"^(?P<n>\d{5}(?:\.\d+)?)$")["n"])
    in_range = (serial >= _EXCEL_SERIAL_MIN) & (serial <= _EXCEL_SERIAL_MAX) & np.isnan(y)
    if in_range.any():
        whole = np.floor(serial[in_range]).astype("int64")
        days[in_range] = _EXCEL_EPOCH + whole.astype("timedelta64[D]")
    status = np.full(n, OK, dtype="int8")
    status[np.isnat(days)] = BAD
    status[_empty(t)] = EMPTY
    days[status != OK] = np.datetime64("NaT")
    return Parsed(days, status)


def parse_date(s: pd.Series | pa.Array) -> Parsed:
    """Dates in Chinese and ISO forms, YYYYMMDD, or Excel serial day numbers.

    Returns an object array of :class:`datetime.date` (None where not OK). A date that does
    not exist (2024-02-30) or a form we do not know ("2024年3月", "next week") is ``BAD``.
    """
    days, status = parse_date_days(s)
    value = np.full(len(days), None, dtype=object)
    ok = status == OK
    if ok.any():
        value[ok] = days[ok].astype(object)
    return Parsed(value, status)


def serial_lists(s: pd.Series | pa.Array) -> pa.Array:
    """序列号 cells to an Arrow list of serial numbers per row (see :func:`split_serials`).

    Split once per distinct cell text."""
    uniq, inv = distinct(s)
    t = pc.utf8_normalize(uniq, "NFKC")
    t = pc.utf8_trim(pc.replace_substring_regex(t, r"[,;、\s]+", ","), ",")
    t = pc.if_else(pc.is_valid(t), t, "")
    parts = pc.split_pattern(t, ",")
    # "" splits to [""]; an empty cell is an empty list.
    lists = pc.if_else(pc.equal(t, ""), pa.scalar([], parts.type), parts)
    return lists.take(pa.array(inv))


def split_serials(s: pd.Series) -> pd.Series:
    """序列号 cells to lists of serial numbers, split on , ; ， ； 、 whitespace and newlines."""
    return pd.Series(serial_lists(s).to_pylist(), index=s.index, dtype=object)


def line_numbers(s: pd.Series | pa.Array) -> pa.Array:
    """序号 as Arrow text: stripped, "3.0" (an Excel number) shown as "3"; null when empty."""
    t = pc.utf8_trim_whitespace(arrow(s))
    return null_if_blank(pc.replace_substring_regex(t, r"^(\d+)\.0+$", r"\1"))


def clean_line_no(s: pd.Series) -> pd.Series:
    """:func:`line_numbers` as a pandas Series aligned with ``s``."""
    return pd.Series(pd.arrays.ArrowStringArray(line_numbers(s)), index=s.index)


#: How yuan is written in a currency column; all of it is stored as CNY.
_YUAN = ("CNY", "RMB", "人民币", "元", "人民币元", "¥", "￥")


def currency_codes(t: pa.Array) -> pa.Array:
    """Currency cells as upper-case codes, yuan in any spelling as CNY."""
    if not len(t) or t.null_count == len(t):
        return t
    upper = pc.utf8_upper(pc.utf8_trim_whitespace(t))
    return pc.if_else(pc.is_in(upper, pa.array(_YUAN, pa.large_string())),
                      pa.scalar("CNY", pa.large_string()), upper)
