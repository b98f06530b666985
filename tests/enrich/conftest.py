"""Fixtures of the enrich tests: sandboxes built from small hand-written line items."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from iccaudit.core import schema
from iccaudit.enrich import build_sandbox, load_reference

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "rules" / "reference"


def line(item_name: str, unit_price_cny: float, **fields: object) -> dict:
    """One line item with sensible defaults; ``fields`` override any column."""
    row: dict = {
        "source_file": "t.csv", "source_sheet": None, "source_row": 2, "tender_id": "T1",
        "project_name": None, "line_no": "1", "item_name": item_name, "brand": None,
        "model": None, "spec": None, "quantity": 1.0, "unit": "台",
        "unit_price_cny": float(unit_price_cny), "total_cny": None, "supplier": None,
        "date": dt.date(2024, 6, 1), "condition": None, "serial_numbers": [],
        "capacity_kw": None, "manufacture_date": None, "price_includes_vat": None,
        "claimed_pflops": None, "raw": json.dumps({"名称": item_name}, ensure_ascii=False),
    }
    unknown = set(fields) - set(row)
    assert not unknown, unknown
    row.update(fields)
    return row


def frame(rows: list[dict]) -> pd.DataFrame:
    """Line items as the pipeline hands them over: run_id and item_id first."""
    df = pd.DataFrame(rows, columns=[c for c in schema.columns("line_items")
                                     if c not in ("run_id", "item_id")])
    df.insert(0, "item_id", range(1, len(df) + 1))
    df.insert(0, "run_id", "run-test")
    for i, r in enumerate(rows):
        df.at[i, "source_row"] = r.get("source_row", i + 2)
    return df


@pytest.fixture(scope="session")
def reference():
    return load_reference(REFERENCE_DIR)


@pytest.fixture
def sandbox(reference) -> Callable[[list[dict]], object]:
    """Build a sandbox from rows; every connection is closed at teardown."""
    opened = []

    def build(rows: list[dict]):
        con = build_sandbox(frame(rows), REFERENCE_DIR, reference=reference)
        opened.append(con)
        return con

    yield build
    for con in opened:
        con.close()


def one(con, sql: str, *params):
    """The single value of a one-row, one-column query."""
    rows = con.execute(sql, list(params)).fetchall()
    assert len(rows) == 1, rows
    return rows[0][0]


def batch_values(reference, rows: list[dict], columns: str) -> list[tuple]:
    """Build one sandbox for many cases and return ``columns`` per row, in row order.

    Recognition is per line, so parametrised cases share one sandbox (one build instead of
    one per case keeps the suite fast); each case then asserts its own row.
    """
    con = build_sandbox(frame(rows), REFERENCE_DIR, reference=reference)
    try:
        return con.execute(f"SELECT {columns} FROM items ORDER BY item_id").fetchall()
    finally:
        con.close()
