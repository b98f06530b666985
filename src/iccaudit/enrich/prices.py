"""Dated reference prices: ``rules/reference/prices.yaml`` and the table the views look up.

A *series* is the price of one accelerator model on one basis (a complete server, a card, a
machine head, a GPU module) at dated *points*, each a range with its source::

    series:
      - model: H100
        basis: server
        cards: 8
        points:
          - {from: 2024-01, low: 2700000, high: 2800000, source: S, note: "peak (article)"}
          - {from: 2024-12, low: 2350000, high: 2450000, source: S, note: "≈2.4 M by December"}

The price of a line is taken as of its date (the line's date, else its tender's first date,
else the run's default price date):

- between two points, linearly interpolated by day (a market drifts; a step would put a
  May tender at January's price);
- before the first point, the first point; after the last point, the last point (a newer
  point has to be added to the book to move it);
- with no date at all (undated tender, no ``--price-date``), the last point.

A model and basis without a series keep the undated range of ``accelerators.yaml``
(``server``, ``card``) or ``assembly.yaml`` (``head``, ``module``), as one point valid at any
date. Every line's evidence says which point(s) it used (``ref_point``) and where its date
came from (``ref_date_basis``).

:func:`price_point_frame` turns the book into the ``ref_price_points`` table: one row per
segment of a series (before the first point, between consecutive points, after the last),
so the lookup is one equality-plus-range join, set at a time.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import Field, field_validator

from iccaudit.enrich.refbase import PRICE_DATE_RE, Loc, Source, _Strict

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

Basis = Literal["server", "card", "head", "module"]
#: Segment bounds of the lookup table: before the first point and after the last.
EARLIEST, LATEST = dt.date(1, 1, 1), dt.date(9999, 12, 31)


def price_date(text: str) -> dt.date:
    """A book date (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``) as the first day it covers."""
    parts = [int(p) for p in text.split("-")] + [1, 1]
    return dt.date(parts[0], parts[1], parts[2])


class PricePoint(_Strict):
    """One dated price range of a series: effective from ``from`` (the field is ``from`` in
    YAML) until the next point's date, interpolated linearly in between."""

    date: str = Field(alias="from")
    low: float = Field(gt=0)
    high: float = Field(gt=0)
    peak: float | None = Field(None, gt=0)
    source: Source
    note: str = Field(min_length=1)

    @field_validator("date", mode="before")
    @classmethod
    def _date_shape(cls, value: object) -> str:
        text = value.isoformat() if isinstance(value, dt.date) else str(value)
        if not PRICE_DATE_RE.match(text):
            raise ValueError("from must be YYYY, YYYY-MM or YYYY-MM-DD")
        try:
            price_date(text)
        except ValueError as exc:
            raise ValueError(f"from {text!r} is not a date: {exc}") from None
        return text


class PriceSeries(_Strict):
    """The dated prices of one model on one basis; ``cards``: accelerator cards of the priced
    configuration (servers and modules; default ``reference_cards_per_server``)."""

    model: str
    basis: Basis
    cards: int | None = Field(None, ge=1, le=64)
    points: list[PricePoint] = Field(min_length=1)


class PricesFile(_Strict):
    series: list[PriceSeries] = Field(default_factory=list)


def series_problem(data: PricesFile) -> tuple[Loc, str] | None:
    """The first ordering problem of the file, as (location, message): point dates that do not
    strictly increase (unordered or overlapping), a model and basis given twice."""
    seen: dict[tuple[str, str], int] = {}
    for i, series in enumerate(data.series):
        key = (series.model, series.basis)
        if key in seen:
            return (("series", i, "basis"),
                    f"{series.model} {series.basis} has a series already (series {seen[key]})")
        seen[key] = i
        for j in range(1, len(series.points)):
            before, this = series.points[j - 1], series.points[j]
            if price_date(this.date) <= price_date(before.date):
                return (("series", i, "points", j, "from"),
                        f"point dates must increase: {this.date} follows {before.date}")
    return None


_COLUMNS = {
    "model_id": "VARCHAR", "basis": "VARCHAR", "cards": "BIGINT", "seg_from": "DATE",
    "seg_to": "DATE", "from_date": "DATE", "to_date": "DATE", "from_low": "DOUBLE",
    "from_high": "DOUBLE", "to_low": "DOUBLE", "to_high": "DOUBLE", "from_mid": "DOUBLE",
    "to_mid": "DOUBLE", "series_peak": "DOUBLE",
    "point": "VARCHAR", "dated": "BOOLEAN", "source": "VARCHAR", "note": "VARCHAR",
}
#: DuckDB types of ``ref_price_points``.
PRICE_POINTS_DDL: dict[str, str] = _COLUMNS


#: A point as the lookup rows are made from it: date text, low, high, peak, source, note.
_Point = tuple[str, float, float, float | None, str, str]


def _segments(model: str, basis: str, cards: int | None,
              points: Sequence[_Point]) -> list[dict[str, object]]:
    """The lookup rows of one series, its points in date order."""
    peak = max(p[3] or p[2] for p in points)
    rows: list[dict[str, object]] = []

    def row(seg_from: dt.date, seg_to: dt.date, a: _Point, b: _Point | None,
            point: str) -> dict[str, object]:
        return {"model_id": model, "basis": basis, "cards": cards, "seg_from": seg_from,
                "seg_to": seg_to, "from_date": price_date(a[0]) if b else None,
                "to_date": price_date(b[0]) if b else None, "from_low": a[1],
                "from_high": a[2], "to_low": b[1] if b else a[1],
                "to_high": b[2] if b else a[2], "from_mid": (a[1] + a[2]) / 2,
                "to_mid": (b[1] + b[2]) / 2 if b else (a[1] + a[2]) / 2, "series_peak": peak, "point": point,
                "dated": len(points) > 1,
                "source": a[4] if b is None or a[4] == b[4] else f"{a[4]}/{b[4]}",
                "note": a[5] if b is None else f"{a[5]} → {b[5]}"}

    first, last = points[0], points[-1]
    if len(points) == 1:
        return [row(EARLIEST, LATEST, first, None, f"{first[0]} (only point)")]
    rows.append(row(EARLIEST, price_date(first[0]), first, None,
                    f"{first[0]} (before the first point)"))
    for a, b in itertools.pairwise(points):
        rows.append(row(price_date(a[0]), price_date(b[0]), a, b,
                        f"{a[0]}→{b[0]} (interpolated)"))
    rows.append(row(price_date(last[0]), LATEST, last, None, f"{last[0]} (latest point)"))
    return rows


class _Range(Protocol):
    """A price range of accelerators.yaml or assembly.yaml (reference.PriceRange)."""

    @property
    def low(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def peak(self) -> float | None: ...
    @property
    def cards(self) -> int | None: ...
    @property
    def date(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def note(self) -> str: ...


def price_point_frame(prices: PricesFile,
                      ranges: Iterable[tuple[str, str, _Range | None]],
                      default_cards: int) -> pd.DataFrame:
    """``ref_price_points``: the segments of every series of ``prices``, and one segment
    valid at any date for each undated range (model, basis, range) of a model and basis
    without a series. ``default_cards``: params reference_cards_per_server."""
    dated = {(s.model, s.basis) for s in prices.series}
    rows: list[dict[str, object]] = []
    for s in prices.series:
        cards = (s.cards or default_cards) if s.basis in ("server", "module") else None
        pts = [(p.date, p.low, p.high, p.peak, p.source, p.note) for p in s.points]
        rows += _segments(s.model, s.basis, cards, pts)
    for model, basis, rng in ranges:
        if rng is None or (model, basis) in dated:
            continue
        cards = ((rng.cards or default_cards) if basis == "server"
                 else default_cards if basis == "module" else None)
        label = f"{rng.date} (only point)" if rng.date else "undated range"
        rows += _segments(model, basis, cards,
                          [(rng.date or "0001", rng.low, rng.high, rng.peak, rng.source,
                            rng.note)])
        rows[-1]["point"] = label
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(_COLUMNS))
    return frame.sort_values(["model_id", "basis", "seg_from"], ignore_index=True)
