"""Every SQL recipe of docs/sql.md runs against a real findings database, and the key ones
return what they promise."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"


def recipes() -> list[tuple[str, str]]:
    """(heading, sql) for every ```sql block, named by the ## heading above it."""
    text = DOC.read_text(encoding="utf-8")
    out, heading = [], None
    for m in re.finditer(r"^## ([^\n]+)$|^```sql\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        if m.group(1):
            heading = m.group(1).strip()
        else:
            out.append((heading, m.group(2)))
    return out


RECIPES = recipes()


def run(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()  # several statements: the last one's rows
    finally:
        con.close()


def test_doc_has_ten_recipes_each_with_a_purpose():
    assert len(RECIPES) >= 10
    text = DOC.read_text(encoding="utf-8")
    for heading, _ in RECIPES:
        section = text.split(f"## {heading}", 1)[1].split("```sql", 1)[0]
        assert section.strip(), f"recipe {heading!r} has no purpose line"


@pytest.mark.parametrize("heading,sql", RECIPES, ids=[h.split(".")[0] for h, _ in RECIPES])
def test_recipe_runs(any_db, heading, sql):
    rows = run(any_db, sql)
    if "-- expect: rows" in sql:
        assert rows, f"{heading}: expected rows"
    if "-- expect: none" in sql:
        assert rows == [], f"{heading}: expected no rows, got {rows[:3]}"


def _recipe(prefix: str) -> str:
    return next(sql for heading, sql in RECIPES if heading.startswith(prefix))


def test_recipes_answer_right_on_the_fixture(fixture_db):
    from tests.report.dbfactory import RUN_NEW

    top = run(fixture_db, _recipe("1."))
    assert top[0][0] == "ZB-2024-001" and top[0][1] == 15_600_000  # corroboration not doubled
    suppliers = run(fixture_db, _recipe("2."))
    assert [r[0] for r in suppliers] == ["华信智算科技有限公司", "鼎盛数据有限公司"]
    assert [r[1] for r in suppliers] == [1, 1]  # the split pair is one finding group
    cooling = run(fixture_db, _recipe("3."))
    assert {r[6] for r in cooling} == {"cooling-cold-plate-per-kw", "ecod"}
    both = run(fixture_db, _recipe("4."))
    assert [(r[0], r[2], r[5], r[6]) for r in both] == [
        ("a/tender_A.xlsx", 7, "cooling-cold-plate-per-kw", "ecod")]
    assert {r[0] for r in run(fixture_db, _recipe("5."))} == {"price_missing",
                                                               "quantity_unparseable"}
    diff = run(fixture_db, _recipe("7."))
    assert {(r[0], r[4]) for r in diff} == {("new", "iforest"), ("new", "bill-arithmetic"),
                                            ("gone", "dup-identical-line")}
    assert run(fixture_db, _recipe("8.")) == [
        ("serial-reuse", "rule", "Binder Error: column 'serials' not found <in view serial_reuse>")
    ]
    by_mech = {r[0]: r[1] for r in run(fixture_db, _recipe("9."))}
    assert by_mech["liquid_cooling_markup"] == 15_600_000
    group = run(fixture_db, _recipe("10."))
    assert [r[5] for r in group] == [7]  # the cooling line, once per detector row of the group
    supplier = run(fixture_db, _recipe("11."))
    assert {r[4] for r in supplier} == {"liquid_cooling_markup"}
    recon = run(fixture_db, _recipe("12."))
    assert len(recon) == 4 and all(r[7] for r in recon)
    history = run(fixture_db, _recipe("13."))
    assert {r[1] for r in history} == {RUN_NEW, "20240101T000000000000Z-aaaaaaaa"}
