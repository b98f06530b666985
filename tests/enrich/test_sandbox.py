"""The sandbox contract: dictionary = views, docs current, locked down, reference errors located."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from iccaudit.core import schema
from iccaudit.enrich import ReferenceError, build_sandbox, load_reference
from iccaudit.enrich.dictionary import DICTIONARY, render_markdown
from tests.enrich.conftest import REFERENCE_DIR, frame, line

DOCS = Path(__file__).resolve().parents[2] / "docs" / "dictionary.md"


@pytest.mark.parametrize("rows", [[], [line("GPU服务器", 2_400_000, spec="8*H100")]],
                         ids=["empty", "one-line"])
def test_views_match_the_dictionary(sandbox, rows):
    con = sandbox(rows)
    for view, cols in DICTIONARY.items():
        actual = {name: typ for name, typ, *_ in con.execute(f"DESCRIBE {view}").fetchall()}
        assert actual == {name: col.type for name, col in cols.items()}, view


def test_items_keeps_every_line_item_column_and_row(sandbox):
    rows = [line("GPU服务器", 2_400_000, spec="8*H100", serial_numbers=["A1234"]),
            line("IB交换机", 300_000), line("运维服务", 1, unit="项")]
    con = sandbox(rows)
    cols = [r[0] for r in con.execute("DESCRIBE items").fetchall()]
    assert cols[: len(schema.columns("line_items"))] == schema.columns("line_items")
    assert con.execute("SELECT count(*), count(DISTINCT item_id) FROM items").fetchone() == (3, 3)
    got = con.execute("SELECT serial_numbers, text FROM items WHERE item_id = 1").fetchone()
    assert got == (["A1234"], "gpu服务器 | 8*h100")


def test_every_dictionary_column_is_described():
    for view, cols in DICTIONARY.items():
        for name, col in cols.items():
            assert col.description.strip() and col.type, f"{view}.{name}"


def test_committed_docs_are_current():
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), (
        "docs/dictionary.md is stale: python -m iccaudit.enrich.dictionary > docs/dictionary.md")


def test_sandbox_cannot_read_files_or_change_settings(sandbox, tmp_path):
    con = sandbox([line("GPU服务器", 2_400_000)])
    (tmp_path / "x.csv").write_text("a\n1\n")
    for sql in ("SELECT * FROM read_csv('/etc/passwd')",
                f"SELECT * FROM read_csv('{tmp_path / 'x.csv'}')",
                f"COPY items TO '{tmp_path / 'out.csv'}'",
                f"ATTACH '{tmp_path / 'other.duckdb'}' AS other"):
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    for sql in ("SET enable_external_access = true", "SET lock_configuration = false",
                "SET threads = 1"):
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    assert not (tmp_path / "out.csv").exists()


def test_frame_without_schema_columns_is_refused(reference):
    bad = frame([line("GPU服务器", 1)]).drop(columns=["tender_id"])
    with pytest.raises(ValueError, match="tender_id"):
        build_sandbox(bad, REFERENCE_DIR, reference=reference)


def test_bundled_reference_loads_with_sources():
    ref = load_reference(REFERENCE_DIR)
    ids = {a.id for a in ref.accelerators.accelerators}
    assert {"H100", "H800", "A800", "A100", "H20", "L20", "RTX4090", "Ascend910B", "MLU370",
            "K100"} <= ids
    h100 = next(a for a in ref.accelerators.accelerators if a.id == "H100")
    assert (h100.server.low, h100.server.high, h100.server.source) == (2_400_000, 2_500_000, "S")
    assert str(ref.param("export_control_effective")) == "2023-10-25"
    assert {b.name for b in ref.brands.brands} >= {"Inspur", "xFusion", "H3C", "PowerLeader"}


def _copy_reference(tmp_path: Path) -> Path:
    target = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, t in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if needle in t)


def test_unknown_field_is_reported_with_file_and_line(tmp_path):
    ref_dir = _copy_reference(tmp_path)
    path = ref_dir / "accelerators.yaml"
    _edit(path, "    tdp_w: 400\n    fp16_dense_tflops: 148",
          "    tdp_w: 400\n    tdp_watts: 400\n    fp16_dense_tflops: 148")
    with pytest.raises(ReferenceError) as exc:
        load_reference(ref_dir)
    msg = str(exc.value)
    assert msg.startswith(f"{path}:{_line_of(path, 'tdp_watts')}: ")
    assert "unknown field 'tdp_watts'" in msg and "\n" not in msg


@pytest.mark.parametrize(("file", "old", "new", "needle", "message"), [
    ("cooling.yaml", "    low: 9000", "    low: 19000", "type: immersion", "above high"),
    ("cooling.yaml", "    source: S\n    note: \"冷板式", "    source: X\n    note: \"冷板式",
     "source: X", "per_kw.0.source"),
    ("brands.yaml", "aliases: [宝德, powerleader]", "aliases: [宝德, powerleader, 浪潮]",
     "name: PowerLeader", "alias '浪潮' of PowerLeader is also an alias of Inspur"),
    ("accelerators.yaml", "aliases: [rtx4090d,", "aliases: [h100, rtx4090d,", "[h100, rtx4090d",
     "also an alias of H100"),
    ("params.yaml", "{key: usd_cny, value: 7.2", "{key: usd_cny, valu: 7.2", "usd_cny",
     "unknown field 'valu'"),
])
def test_invalid_values_are_located(tmp_path, file, old, new, needle, message):
    ref_dir = _copy_reference(tmp_path)
    path = ref_dir / file
    _edit(path, old, new)
    with pytest.raises(ReferenceError) as exc:
        load_reference(ref_dir)
    msg = str(exc.value)
    assert message in msg and "\n" not in msg
    assert msg.startswith(f"{path}:")
    assert msg.startswith(f"{path}:{_line_of(path, needle)}:")


def test_broken_yaml_and_missing_or_unknown_files(tmp_path):
    ref_dir = _copy_reference(tmp_path)
    (ref_dir / "cooling.yaml").write_text("per_kw: [\n  {type: cold_plate\n", encoding="utf-8")
    with pytest.raises(ReferenceError, match=r"cooling\.yaml:\d+:\d+: invalid YAML"):
        load_reference(ref_dir)
    (ref_dir / "cooling.yaml").unlink()
    with pytest.raises(ReferenceError, match="missing reference file.*cooling.yaml"):
        load_reference(ref_dir)
    shutil.copy(REFERENCE_DIR / "cooling.yaml", ref_dir / "cooling.yaml")
    (ref_dir / "costs.yaml").write_text("a: 1\n", encoding="utf-8")
    with pytest.raises(ReferenceError, match=r"costs\.yaml:1: unknown reference file"):
        load_reference(ref_dir)


def test_build_sandbox_reports_reference_errors(tmp_path):
    ref_dir = _copy_reference(tmp_path)
    _edit(ref_dir / "cooling.yaml", "retrofit_per_server:", "retrofit_per_srv:")
    with pytest.raises(ReferenceError, match=r"cooling\.yaml:\d+: .*retrofit"):
        build_sandbox(frame([]), ref_dir)


def test_sandbox_in_steps_items_is_readable_before_the_other_views():
    from iccaudit.enrich.sandbox import Sandbox

    rows = [line("GPU服务器", 2_400_000, spec="8*H100"), line("IB交换机", 300_000)]
    sandbox = Sandbox(frame(rows), REFERENCE_DIR)
    con = sandbox.build_until("items")
    cursor = con.cursor()  # readable at once, on a cursor of its own
    assert cursor.execute("SELECT count(*) FROM items").fetchall()[0][0] == 2
    cursor.close()
    assert sandbox.built[-1] == "items"
    assert "tender_assemblies" not in sandbox.built
    con = sandbox.finish()
    for view in ("tender_assemblies", "serial_reuse", "duplicate_lines", "tender_compute",
                 "line_items"):
        assert con.execute(f"SELECT count(*) FROM {view}").fetchall()[0][0] >= 0, view
        assert sandbox.built.count(view) == 1, view
        assert sandbox.built.index("items") < sandbox.built.index(view), view
    with pytest.raises(duckdb.Error):  # locked down like build_sandbox's connection
        con.execute("SET enable_external_access = true")
    con.close()


def test_sandbox_refuses_an_unknown_view():
    from iccaudit.enrich.sandbox import Sandbox

    sandbox = Sandbox(frame([line("GPU服务器", 2_400_000)]), REFERENCE_DIR)
    with pytest.raises(ValueError, match="no table or view 'nope'"):
        sandbox.build_until("nope")
