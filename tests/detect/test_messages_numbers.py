"""Numbers and texts in messages read exactly as Python's ``format`` writes them, whatever
the column's type (float64, nullable Int64, text): the typed columns skip the objects."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from iccaudit.detect.rules.messages import render_messages

SPECS = [",.0f", ".0f", ".1f", ".2f", ",.2f", ".0%", ".1%", "+.1%", "+,.1f"]


def _numbers() -> list[float]:
    rng = np.random.default_rng(20261204)
    spread = rng.normal(0, 1, 3000) * 10.0 ** rng.integers(-6, 18, 3000)
    ties = np.concatenate([np.arange(-400, 400) / 2, np.arange(-400, 400) / 20,
                           np.arange(-400, 400) / 200, np.arange(-400, 400) / 8])
    edges = [0.0, -0.0, 0.005, 0.015, 1.005, 2.675, 1e15 - 0.5, 1e15, -1e15, 1e16, 1e300,
             5e-324, float("inf"), float("-inf"), float("nan")]
    return [float(x) for x in np.concatenate([spread, ties, edges])]


@pytest.mark.parametrize("spec", SPECS)
def test_fixed_point_numbers_match_python(spec: str) -> None:
    numbers = _numbers()
    frame = pd.DataFrame({"f_x": numbers + [None]})
    got = render_messages("{x:" + spec + "}", frame).tolist()
    want = ["—" if x is None or math.isnan(x) else format(x, spec) for x in numbers] + ["—"]
    assert got == want


@pytest.mark.parametrize("spec", [",.0f", ".1%"])
def test_integers_with_a_fixed_point_spec_match_python(spec: str) -> None:
    ints = [0, 1, -1, 12345678, -999999999, 10**14, 3, 12345678]
    frame = pd.DataFrame({"f_n": pd.array([*ints, None], dtype="Int64")})
    got = render_messages("n={n:" + spec + "}", frame).tolist()
    assert got == [f"n={format(i, spec)}" for i in ints] + ["n=—"]


def test_text_columns_of_every_type_give_the_same_messages() -> None:
    names = ["H100", None, "A800", "H100", "", "中文"]
    want = ["H100", "—", "A800", "H100", "", "中文"]
    for dtype in (object, "string", "str"):
        frame = pd.DataFrame({"f_s": pd.Series(names, dtype=dtype)})
        assert render_messages("{s}", frame).tolist() == want, dtype
