"""Golden fixtures of the enrich views: small line items in, the rows of one view out.

Each ``fixtures/<name>.yaml`` names a view and holds cases: the line items (given to
:func:`tests.enrich.conftest.line`), optional overrides of ``params.yaml`` entries, the
columns compared and the view's rows for them (``ORDER BY ALL``). Every case runs through the
real sandbox (real DuckDB, the bundled reference book).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from iccaudit.enrich import build_sandbox
from iccaudit.enrich.dictionary import DICTIONARY
from iccaudit.enrich.reference import ENRICH_PARAMS, ParamsFile, Reference
from tests.enrich.conftest import REFERENCE_DIR, frame, line

FIXTURES = Path(__file__).parent / "fixtures"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [(p.stem, yaml.safe_load(p.read_text(encoding="utf-8")))
            for p in sorted(FIXTURES.glob("*.yaml"))]


def _cases() -> list[Any]:
    return [pytest.param(doc["view"], case, id=f"{stem}: {case['name']}")
            for stem, doc in _documents() for case in doc["cases"]]


def with_params(reference: Reference, overrides: dict[str, float]) -> Reference:
    """The reference book with some ``params.yaml`` values replaced."""
    unknown = set(overrides) - set(ENRICH_PARAMS)
    assert not unknown, f"not an enrich parameter: {unknown}"
    params = [p.model_copy(update={"value": overrides[p.key]}) if p.key in overrides else p
              for p in reference.params.params]
    return reference.model_copy(update={"params": ParamsFile(params=params)})


def _same(actual: object, expected: object) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return actual == pytest.approx(expected, rel=1e-12, abs=1e-12)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    return type(actual) is type(expected) and actual == expected


def test_every_view_has_fixtures():
    views = {doc["view"] for _, doc in _documents()}
    assert views >= set(DICTIONARY) | {"line_items"}


@pytest.mark.parametrize(("view", "case"), _cases())
def test_fixture(reference, view, case):
    ref = with_params(reference, case.get("params", {}))
    lines = [line(fields.pop("item_name"), fields.pop("unit_price_cny"), **fields)
             for fields in (dict(f) for f in case["lines"])]
    con = build_sandbox(frame(lines), REFERENCE_DIR, reference=ref)
    try:
        columns = ", ".join(f'"{c}"' for c in case["columns"])
        got = [list(r) for r in con.execute(f"SELECT {columns} FROM {view} ORDER BY ALL")
               .fetchall()]
    finally:
        con.close()
    expected = case["rows"]
    assert len(got) == len(expected), f"{len(got)} rows: {got}"
    for got_row, want_row in zip(got, expected, strict=True):
        assert len(want_row) == len(case["columns"]), want_row
        wrong = {c: (g, w) for c, g, w in zip(case["columns"], got_row, want_row, strict=True)
                 if not _same(g, w)}
        assert not wrong, f"row {want_row[0]!r}: {{column: (got, expected)}} {wrong}"
