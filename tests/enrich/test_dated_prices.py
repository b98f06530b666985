"""Reference prices as of the line's date (rules/reference/prices.yaml).

The expected prices are computed here from the two sourced H100 points as the domain notes
give them (≈2.7–2.8 M at the 2024-01 peak, ≈2.35–2.45 M by 2024-12), by day, not read back
from the lookup table."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from iccaudit.enrich import ReferenceError, build_sandbox, load_reference
from tests.enrich.conftest import REFERENCE_DIR, frame, line

JAN, DEC = dt.date(2024, 1, 1), dt.date(2024, 12, 1)
JAN_RANGE, DEC_RANGE = (2_700_000, 2_800_000), (2_350_000, 2_450_000)


def _between(on: dt.date) -> tuple[float, float]:
    w = (on - JAN).days / (DEC - JAN).days
    return tuple(a + w * (b - a) for a, b in zip(JAN_RANGE, DEC_RANGE, strict=True))


def _refs(reference, rows, price_date=None):
    con = build_sandbox(frame(rows), REFERENCE_DIR, reference=reference, price_date=price_date)
    try:
        return con.execute(
            "SELECT tender_id, ref_low_cny, ref_high_cny, ref_peak_cny, ref_price_date, "
            "ref_date_basis, ref_point, ref_as_of FROM items ORDER BY item_id").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize(("on", "expected", "point"), [
    (dt.date(2023, 6, 1), JAN_RANGE, "2024-01 (before the first point)"),
    (dt.date(2023, 12, 31), JAN_RANGE, "2024-01 (before the first point)"),
    (JAN, JAN_RANGE, "2024-01→2024-12 (interpolated)"),
    (dt.date(2024, 1, 2), _between(dt.date(2024, 1, 2)), "2024-01→2024-12 (interpolated)"),
    (dt.date(2024, 6, 16), _between(dt.date(2024, 6, 16)), "2024-01→2024-12 (interpolated)"),
    (dt.date(2024, 11, 30), _between(dt.date(2024, 11, 30)),
     "2024-01→2024-12 (interpolated)"),
    (DEC, DEC_RANGE, "2024-12 (latest point)"),
    (dt.date(2025, 3, 1), DEC_RANGE, "2024-12 (latest point)"),
])
def test_h100_server_priced_as_of_the_line_date(reference, on, expected, point):
    (row,) = _refs(reference, [line("GPU服务器", 2_600_000, spec="8*H100", date=on)])
    assert row[1:3] == (pytest.approx(expected[0]), pytest.approx(expected[1]))
    assert row[3] == 2_800_000  # the series' peak, at any date
    assert row[4:7] == (on, "line date", point)
    assert f"as of {on.isoformat()} (line date; point {point}, source S)" in row[7]


def test_four_card_server_and_module_scale_the_dated_point(reference):
    on = dt.date(2024, 12, 15)
    rows = _refs(reference, [
        line("GPU服务器", 1_200_000, spec="4*H100", date=on),
        line("GPU模组", 1_800_000, spec="HGX H100 8卡", date=on),
    ])
    assert rows[0][1:3] == (DEC_RANGE[0] / 2, DEC_RANGE[1] / 2)
    # module 2024-12: complete 2.35–2.45 M minus head 0.4–0.45 M minus 0.1–0.2 M saving
    assert rows[1][1:3] == (2_350_000 - 450_000 - 200_000, 2_450_000 - 400_000 - 100_000)


def test_undated_lines_take_the_tender_date_then_the_run_date_then_the_latest_point(
        reference):
    rows = [
        line("GPU服务器", 2_600_000, spec="8*H100", tender_id="T1", date=None),
        line("交换机", 100_000, tender_id="T1", date=dt.date(2024, 1, 1)),
        line("GPU服务器", 2_600_000, spec="8*H100", tender_id="T2", date=None),
    ]
    t1, _, t2 = _refs(reference, rows)
    assert t1[1:3] == JAN_RANGE and t1[4:6] == (JAN, "tender date")
    assert t2[1:3] == DEC_RANGE and t2[4:6] == (None, "undated: latest point")
    assert "as of the latest point (undated: latest point" in t2[7]
    t1, _, t2 = _refs(reference, rows, price_date=dt.date(2024, 6, 16))
    assert t1[4:6] == (JAN, "tender date")
    assert t2[1:3] == (pytest.approx(_between(dt.date(2024, 6, 16))[0]),
                       pytest.approx(_between(dt.date(2024, 6, 16))[1]))
    assert t2[4:6] == (dt.date(2024, 6, 16), "run price date")


def test_a_model_with_one_dated_range_holds_it_at_any_date(reference):
    rows = _refs(reference, [line("GPU服务器", 2_100_000, spec="8*H800", date=d)
                             for d in (dt.date(2022, 1, 1), dt.date(2026, 1, 1))])
    for row in rows:
        assert row[1:4] == (2_000_000, 2_300_000, 2_300_000)
        assert row[6] == "2023-09 (only point)"


def test_cooling_is_not_dated(reference):
    (row,) = _refs(reference, [line("冷板式液冷系统", 500_000, capacity_kw=100)])
    assert row[1:3] == (5000, 6000)
    assert row[5:8] == (None, None, None)


# -- the book refuses a broken series, naming file and line ---------------------------------

SERIES = """series:
  - model: H100
    basis: server
    cards: 8
    points:
      - {from: 2024-01, low: 2700000, high: 2800000, source: S, note: peak}
      - {from: 2024-12, low: 2350000, high: 2450000, source: S, note: december}
"""


@pytest.mark.parametrize(("text", "where", "message"), [
    (SERIES.replace("from: 2024-12", "from: 2023-12"), ":7:", "point dates must increase"),
    (SERIES.replace("from: 2024-12", "from: 2024-01"), ":7:", "point dates must increase"),
    (SERIES.replace("source: S, note: december", "note: december"), ":7:", "source"),
    (SERIES.replace("low: 2350000", "low: 0"), ":7:", "greater than 0"),
    (SERIES.replace("from: 2024-12", "from: 2024-13"), ":7:", "not a date"),
    (SERIES.replace("low: 2700000, high: 2800000", "low: 2900000, high: 2800000"), ":6:",
     "low 2.9e+06 is above high"),
    (SERIES + SERIES.removeprefix("series:\n"), ":9:", "H100 server has a series already"),
    (SERIES.replace("model: H100", "model: H900"), "prices.yaml: series.0.model",
     "unknown accelerator 'H900'"),
])
def test_a_broken_series_is_refused_with_file_line_and_reason(tmp_path: Path, text, where,
                                                              message):
    book = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, book)
    (book / "prices.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ReferenceError) as err:
        load_reference(book)
    assert "prices.yaml" in str(err.value) and where in str(err.value)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_the_bundled_book_dates_every_accelerator_price(reference):
    """Every accelerator price of the bundled book is dated: a series in prices.yaml or the
    date of its one range, and every point has a source."""
    for acc in reference.accelerators.accelerators:
        for rng in (acc.server, acc.card):
            assert rng is None or rng.date, acc.id
    for model in reference.assembly.models:
        for rng in (model.head, model.module):
            assert rng is None or rng.date, model.model
    assert any(len(s.points) > 1 for s in reference.prices.series)
