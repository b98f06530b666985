"""What an in-file rule test row is: a ``line_items`` row, the engine's columns left out."""

from __future__ import annotations

from typing import Any

#: line_items columns a test row may not set: the engine assigns them.
ENGINE_COLUMNS = frozenset({"run_id", "item_id"})


def default_row(i: int) -> dict[str, Any]:
    """A valid line_items row (without run_id/item_id) that test rows override."""
    return {
        "source_file": "rule-test.csv",
        "source_sheet": None,
        "source_row": i + 1,
        "tender_id": "T-TEST",
        "project_name": "规则测试项目",
        "line_no": str(i),
        "item_name": "测试货物",
        "brand": None,
        "model": None,
        "spec": None,
        "quantity": 1.0,
        "unit": "台",
        "unit_price_cny": 1000.0,
        "total_cny": None,
        "supplier": None,
        "date": None,
        "condition": None,
        "serial_numbers": [],
        "capacity_kw": None,
        "manufacture_date": None,
        "price_includes_vat": None,
        "claimed_pflops": None,
        "raw": "{}",
    }
