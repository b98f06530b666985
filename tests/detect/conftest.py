"""Fixtures of the rule-engine tests: a small sandbox of our own, with its own dictionary.

The engine's unit tests run against this fixture so that they pin the engine's behaviour, not
the enrich views (which have their own tests); the bundled pack is tested against the real
views in test_pack.py.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from iccaudit.core import schema
from iccaudit.detect.rules.ruletests import case_frame


@dataclass
class Col:
    type: str
    description: str = ""
    description_zh: str | None = None


_LINE_COLS = {
    name: Col(schema.sql_type(f.annotation)) for name, f in schema.LineItem.model_fields.items()
}
DICTIONARY: dict[str, dict[str, Col]] = {
    "items": {
        **_LINE_COLS,
        "line_total_cny": Col("DOUBLE"),
        "category": Col("VARCHAR"),
        "ratio_to_ref_high": Col("DOUBLE"),
        "ref_high_cny": Col("DOUBLE"),
    },
    "duplicate_lines": {
        "item_id": Col("BIGINT"), "tender_id": Col("VARCHAR"), "dup_ordinal": Col("BIGINT"),
        "first_item_id": Col("BIGINT"), "item_name": Col("VARCHAR"),
        "unit_price_cny": Col("DOUBLE"), "quantity": Col("DOUBLE"),
    },
    "tender_pairs": {
        "tender_id": Col("VARCHAR"), "item_ids": Col("BIGINT[]"),
        "pair_price_cny": Col("DOUBLE"), "ref_cny": Col("DOUBLE"),
    },
    "tender_compute": {
        "tender_id": Col("VARCHAR"), "claimed_pflops": Col("DOUBLE"),
        "actual_pflops": Col("DOUBLE"),
    },
}

_VIEWS = [
    """CREATE VIEW items AS SELECT *, quantity * unit_price_cny AS line_total_cny,
         CASE WHEN item_name LIKE '%服务器%' THEN 'gpu_server' ELSE 'other' END AS category,
         unit_price_cny / 2500000.0 AS ratio_to_ref_high, 2500000.0 AS ref_high_cny
       FROM line_items""",
    """CREATE VIEW duplicate_lines AS SELECT item_id, tender_id,
         row_number() OVER (PARTITION BY tender_id, item_name, model, quantity, unit_price_cny
                            ORDER BY item_id) AS dup_ordinal,
         min(item_id) OVER (PARTITION BY tender_id, item_name, model, quantity, unit_price_cny)
           AS first_item_id, item_name, unit_price_cny, quantity
       FROM line_items""",
    """CREATE VIEW tender_pairs AS SELECT h.tender_id, [h.item_id, m.item_id] AS item_ids,
         h.unit_price_cny + m.unit_price_cny AS pair_price_cny, 2500000.0 AS ref_cny
       FROM line_items h JOIN line_items m ON h.tender_id = m.tender_id
       WHERE h.item_name LIKE '%机头%' AND m.item_name LIKE '%模组%'""",
    """CREATE VIEW tender_compute AS SELECT tender_id, max(claimed_pflops) AS claimed_pflops,
         sum(quantity) * 8 * 0.989 AS actual_pflops FROM line_items GROUP BY tender_id""",
]


GOLDEN_DIR = Path(__file__).parent / "golden"


def build_fixture_sandbox(line_items: pd.DataFrame, reference_dir: Path | None = None):
    """Same contract as iccaudit.enrich.build_sandbox, on the fixture views."""
    con = duckdb.connect(":memory:")
    con.execute(schema.ddl("line_items"))
    con.register("_in", line_items)
    cols = ", ".join(f'"{c}"' for c in schema.columns("line_items"))
    con.execute(f"INSERT INTO line_items SELECT {cols} FROM _in")
    con.unregister("_in")
    for v in _VIEWS:
        con.execute(v)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


@pytest.fixture
def sandbox():
    """A function: rows (dicts over default line_items values) -> locked sandbox connection."""
    made = []

    def make(rows):
        con = build_fixture_sandbox(case_frame(rows, run_id="r1"))
        made.append(con)
        return con

    yield make
    for con in made:
        con.close()


RULE_HEAD = """\
id: {id}
title: Test rule
title_zh: 测试规则
mechanism: {mechanism}
severity: {severity}
status: {status}
description: A rule written by a test.
rationale: Tests need rules.
view: {view}
"""


def rule_yaml(id: str = "test-rule", *, mechanism: str = "price_outlier",
              severity: str = "high", status: str = "stable", view: str = "items",
              body: str = "") -> str:
    """A rule file: the common head plus the test's own lines (where, message, tests ...)."""
    head = RULE_HEAD.format(id=id, mechanism=mechanism, severity=severity, status=status,
                            view=view)
    return head + textwrap.dedent(body)


@pytest.fixture
def write_rule(tmp_path):
    """Write a rule file into tmp_path/<folder>/<name>.yaml and return its path."""

    def write(text: str, name: str = "test-rule", folder: str = "pack/price_outlier") -> Path:
        d = tmp_path / folder
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{name}.yaml"
        p.write_text(text, encoding="utf-8")
        return p

    return write
