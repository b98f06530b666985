"""The vectorised value parsers: examples, and properties that they never crash or guess."""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iccaudit.normalise import values as V


def one(parser, text, *args):
    parsed = parser(pd.Series([text], dtype=object), *args)
    return parsed.value[0], parsed.status[0]


@pytest.mark.parametrize(
    ("text", "scale", "value"),
    [
        ("1,234.50", 1.0, 1234.5),
        ("¥1,234", 1.0, 1234.0),
        ("￥1,234元", 1.0, 1234.0),
        ("245万", 1.0, 2_450_000.0),
        ("245万", 1e4, 2_450_000.0),  # the cell's 万 wins over a 万元 column, not 10^8
        ("1.2亿", 1.0, 120_000_000.0),
        ("１２３４", 1.0, 1234.0),  # full-width digits
        ("245", 1e4, 2_450_000.0),  # 万元 column
        ("3000元", 1e4, 3000.0),  # 元 written in the cell wins
        ("RMB 2,450,000", 1.0, 2_450_000.0),
        ("2450000元/台", 1.0, 2_450_000.0),
        ("0", 1.0, 0.0),
        (" 12.5 ", 1.0, 12.5),
    ],
)
def test_money_values(text, scale, value):
    assert one(V.parse_money, text, scale) == (value, V.OK)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("面议", V.WORDS), ("详见附件", V.WORDS), ("/", V.WORDS), ("", V.EMPTY), (None, V.EMPTY),
        ("1.2.3", V.BAD), ("abc", V.BAD), ("1e309", V.BAD), ("∞", V.BAD), ("NaN", V.BAD),
        ("inf", V.BAD), ("1,23", V.BAD), ("1.234,50", V.BAD),
        ("¥-5", V.NEGATIVE), ("-5", V.NEGATIVE), ("－5", V.NEGATIVE),
    ],
)
def test_money_not_values(text, status):
    value, got = one(V.parse_money, text, 1.0)
    assert got == status and math.isnan(value)


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [("8台", 8.0, "台"), ("2 套", 2.0, "套"), ("1,000", 1000.0, None), ("８", 8.0, None),
     ("10 PCS", 10.0, "PCS"), ("0.5", 0.5, None)],
)
def test_quantities(text, value, unit):
    q = V.parse_quantity(pd.Series([text]))
    assert (q.value[0], q.status[0]) == (value, V.OK)
    assert (q.unit[0] if isinstance(q.unit[0], str) else None) == unit


@pytest.mark.parametrize(
    ("text", "status"),
    [("0", V.NOT_POSITIVE), ("-2", V.NOT_POSITIVE), ("abc", V.BAD), ("", V.EMPTY),
     ("1e999", V.BAD), ("两台", V.BAD)],
)
def test_bad_quantities(text, status):
    assert V.parse_quantity(pd.Series([text])).status[0] == status


@pytest.mark.parametrize(
    "text",
    ["2024年3月5日", "2024-03-05", "2024/3/5", "2024.03.05", "20240305", "45356",
     "2024-03-05 10:30:00", "2024 年 3 月 5 日", "２０２４－０３－０５"],
)
def test_dates(text):
    assert one(V.parse_date, text) == (dt.date(2024, 3, 5), V.OK)


@pytest.mark.parametrize("text", ["2024-02-30", "2024-13-01", "2024年3月", "next week", "3/5/2024",
                                  "123", "2023-02-29"])
def test_invalid_dates_are_not_guessed(text):
    assert one(V.parse_date, text) == (None, V.BAD)


@pytest.mark.parametrize(
    ("text", "kw"),
    [("制冷量800kW", 800.0), ("0.8MW", 800.0), ("500 KW", 500.0), ("冷量:600千瓦", 600.0),
     ("功率1.5兆瓦", 1500.0), ("冷板式液冷 CDU 制冷量：1,000kW", 1000.0),
     ("单机柜功率40kW，总制冷量500 KW", 500.0), ("8×H100 1000kWh", None), ("TDP 700W", None)],
)
def test_capacity_from_text(text, kw):
    got = V.capacity_from_text(pd.Series([text]))[0]
    assert (None if np.isnan(got) else got) == kw


def test_capacity_column_units():
    p = V.parse_capacity(pd.Series(["800", "0.8MW", "500 kw", "x", "-3"]), 1.0)
    assert p.value[:3].tolist() == [800.0, 800.0, 500.0]
    assert p.status.tolist() == [V.OK, V.OK, V.OK, V.BAD, V.BAD]
    assert V.parse_capacity(pd.Series(["0.8"]), 1000.0).value[0] == 800.0


def test_serials_split():
    got = V.split_serials(pd.Series(["A1, A2；A3、A4\nA5 A6", None, "", "B1,,B2"]))
    assert got.tolist() == [["A1", "A2", "A3", "A4", "A5", "A6"], [], [], ["B1", "B2"]]


def test_line_numbers():
    assert V.clean_line_no(pd.Series(["3.0", "3", " 4 ", None, "1.5", "A-1"])).fillna("-").tolist() \
        == ["3", "3", "4", "-", "1.5", "A-1"]


# ---------------------------------------------------------------- properties

_cells = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.from_regex(r"[¥￥\-+]?[0-9０-９,，.]{0,12}(万|亿|元|台|kW|MW|千瓦)?", fullmatch=True),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
)
_PLAIN_NUMBER = re.compile(r"\d+(\.\d+)?")


@settings(max_examples=150, deadline=None)
@given(st.lists(_cells, max_size=20), st.sampled_from([1.0, 1e4]))
def test_money_parser_never_crashes_and_only_returns_finite_non_negative(cells, scale):
    p = V.parse_money(pd.Series(cells, dtype=object), scale)
    assert len(p.value) == len(cells) == len(p.status)
    ok = p.status == V.OK
    assert np.isfinite(p.value[ok]).all() and (p.value[ok] >= 0).all()
    assert np.isnan(p.value[~ok]).all()
    for text, value, status in zip(cells, p.value, p.status, strict=True):
        # str.strip() drops more than float() tolerates ("0\x1f"): compare the stripped text
        if text is not None and _PLAIN_NUMBER.fullmatch(text.strip()):
            assert status == V.OK and value == pytest.approx(float(text.strip()) * scale)


@settings(max_examples=150, deadline=None)
@given(st.lists(_cells, max_size=20))
def test_quantity_parser_never_crashes_and_ok_means_positive(cells):
    q = V.parse_quantity(pd.Series(cells, dtype=object))
    ok = q.status == V.OK
    assert (q.value[ok] > 0).all() and np.isfinite(q.value[ok]).all()
    assert np.isnan(q.value[~ok]).all()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_cells, st.dates().map(str), st.dates().map(
    lambda d: f"{d.year}年{d.month}月{d.day}日")), max_size=20))
def test_date_parser_never_crashes_and_only_returns_real_dates(cells):
    p = V.parse_date(pd.Series(cells, dtype=object))
    for text, value, status in zip(cells, p.value, p.status, strict=True):
        if status == V.OK:
            assert isinstance(value, dt.date)
        else:
            assert value is None
        if text and re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text) and 1900 <= int(text[:4]) <= 2100:
            assert status == V.OK and value == dt.date.fromisoformat(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(1900, 2100), st.integers(1, 12), st.integers(1, 31))
def test_date_parser_rejects_exactly_the_days_that_do_not_exist(y, m, d):
    try:
        real = dt.date(y, m, d)
    except ValueError:
        real = None
    value, status = one(V.parse_date, f"{y}-{m:02d}-{d:02d}")
    assert value == real and (status == V.OK) == (real is not None)


@settings(max_examples=150, deadline=None)
@given(st.lists(_cells, max_size=20), st.sampled_from([1.0, 1000.0]))
def test_capacity_parsers_never_crash(cells, scale):
    s = pd.Series(cells, dtype=object)
    p = V.parse_capacity(s, scale)
    assert (p.value[p.status == V.OK] >= 0).all()
    kw = V.capacity_from_text(s)
    assert len(kw) == len(cells)
    assert (kw[~np.isnan(kw)] >= 0).all()


def test_power_unit_prefilter_covers_every_character_nfkc_turns_into_a_unit_letter():
    """capacity_from_text prepares only the cells that can mention kW/MW/千瓦/兆瓦; the class
    of characters it looks for must hold every one whose NFKC form brings such a letter."""
    import unicodedata

    letters = set("kmw千瓦兆")
    needed = "".join(chr(cp) for cp in range(0x80, 0x110000)
                     if not 0xD800 <= cp <= 0xDFFF
                     and letters & set(unicodedata.normalize("NFKC", chr(cp)).lower()))
    caught = V.may_hold_power_unit(pd.Series(list(needed), dtype=object))
    assert caught.all(), [c for c, ok in zip(needed, caught, strict=True) if not ok]
    # and the prefilter changes nothing: same capacities as searching every cell
    cells = pd.Series(["制冷量８００ｋＷ", "冷量:600千瓦", "0.8㎿", "1,200 KW 列间空调", "网卡 千兆",
                       "功率 5 k w", "GPU服务器", None], dtype=object)
    got = V.capacity_from_text(cells)
    assert got[:4].tolist() == [800.0, 600.0, 800.0, 1200.0]
    assert np.isnan(got[4:]).all()


# The raw JSON of a line is built from Arrow string joins; it must be the very text DuckDB's
# json_object writes (quotes, backslashes and control characters escaped, the rest as is).
_JSON_CHARS = st.text(alphabet=st.sampled_from(
    ['"', "\\", "\n", "\t", "\r", "\x00", "\x01", "\x1f", "\x7f", "/", "\u2028", "é", "机", "😀",
     " ", "a", "1", "{", "}", ":", ","]), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), _JSON_CHARS), min_size=3, max_size=3),
                min_size=1, max_size=20),
       st.lists(_JSON_CHARS.filter(bool), min_size=3, max_size=3, unique=True))
def test_raw_json_is_the_text_duckdb_json_object_writes(rows, names):
    import duckdb
    import pyarrow as pa

    from iccaudit.normalise.raw import _raw_json

    cols = [pa.array([r[j] for r in rows], pa.large_string()) for j in range(3)]
    got = _raw_json(cols, names).to_pylist()
    con = duckdb.connect()
    con.register("t", pa.table({"c0": cols[0], "c1": cols[1], "c2": cols[2]}))
    want = [r[0] for r in con.execute(
        "SELECT json_object($1::VARCHAR, c0, $2::VARCHAR, c1, $3::VARCHAR, c2)::VARCHAR "
        "FROM t", names).fetchall()]
    assert got == want


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), _JSON_CHARS), min_size=3, max_size=3),
                min_size=1, max_size=20),
       st.lists(_JSON_CHARS.filter(bool), min_size=3, max_size=3, unique=True))
def test_raw_kept_as_cells_is_written_as_the_same_json_text(rows, names):
    """A large file's raw column stays the cells under their header names (a struct); its
    JSON text, written later, is the text json_object writes for the same cells."""
    import pyarrow as pa

    from iccaudit.normalise.raw import _raw_json, raw_text

    names = [n.replace("\x00", "") or "x" for n in names]  # never a NUL in a kept name
    if len(set(names)) < 3:
        return
    cols = [pa.array([r[j] for r in rows], pa.large_string()) for j in range(3)]
    cells = pa.StructArray.from_arrays(cols, names=names)
    assert raw_text(cells).to_pylist() == _raw_json(cols, names).to_pylist()
