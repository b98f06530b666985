"""End to end: `iccaudit score` on the bundled samples, through the real CLI and a real DuckDB file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from iccaudit.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples" / "tenders"
LABELS = ROOT / "data" / "samples" / "labels.csv"


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    db = tmp_path_factory.mktemp("e2e") / "findings.duckdb"
    result = CliRunner().invoke(
        cli, ["score", str(SAMPLES), "--db", str(db), "--format", "json", "--seed", "0"]
    )
    assert result.exit_code == 0, result.output
    return db, json.loads(result.stdout)


def test_every_sample_file_reconciles(scored):
    db, summary = scored
    con = duckdb.connect(str(db), read_only=True)
    files = con.execute(
        "SELECT source_file, rows_read, line_items, rejects, non_items, status FROM files"
    ).fetchall()
    on_disk = sorted(p for p in SAMPLES.rglob("*") if p.is_file())
    assert len(files) == len(on_disk)
    for name, rows_read, items, rejects, non_items, status in files:
        assert status == "ok", name
        assert rows_read == items + rejects + non_items, name
        assert items > 0, name
    stored = con.execute("SELECT count(*) FROM line_items").fetchone()[0]
    assert stored == summary["line_items"] == sum(f[2] for f in files)
    assert summary["rejects"] == sum(f[3] for f in files) > 0
    assert summary["non_items"] == sum(f[4] for f in files) > 0


def test_findings_point_at_stored_lines(scored):
    db, summary = scored
    con = duckdb.connect(str(db), read_only=True)
    assert summary["findings"] > 0
    orphans = con.execute(
        """SELECT count(*) FROM findings f ANTI JOIN line_items li
           ON f.run_id = li.run_id AND f.item_id = li.item_id
           WHERE f.item_id IS NOT NULL"""
    ).fetchone()[0]
    assert orphans == 0
    bad_rows = con.execute(
        """SELECT count(*) FROM findings f JOIN line_items li USING (run_id, item_id)
           WHERE f.source_file <> li.source_file OR f.source_row <> li.source_row"""
    ).fetchone()[0]
    assert bad_rows == 0
    assert summary["not_evaluated"] == [] or all(
        ne["kind"] == "model" for ne in summary["not_evaluated"]
    )


def test_same_inputs_and_seed_give_the_same_findings(scored, tmp_path):
    db, _ = scored
    db2 = tmp_path / "again.duckdb"
    result = CliRunner().invoke(cli, ["score", str(SAMPLES), "--db", str(db2), "-q",
                                      "--format", "json", "--seed", "0"])
    assert result.exit_code == 0, result.output
    query = """SELECT finding_id, group_id, detector, source_file, source_row, severity,
                      round(score, 9), round(est_excess_cny, 2), message
               FROM findings ORDER BY ALL"""
    a = duckdb.connect(str(db), read_only=True).execute(query).fetchall()
    b = duckdb.connect(str(db2), read_only=True).execute(query).fetchall()
    assert a == b


def test_rescoring_adds_a_run_and_latest_run_queries_do_not_double_count(tmp_path):
    tenders = tmp_path / "t"
    shutil.copytree(SAMPLES, tenders)
    db = tmp_path / "f.duckdb"
    for _ in range(2):
        result = CliRunner().invoke(cli, ["score", str(tenders), "--db", str(db), "-q",
                                          "--no-models"])
        assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    runs = con.execute("SELECT run_id, inputs FROM runs ORDER BY started_at").fetchall()
    assert len(runs) == 2
    assert json.loads(runs[0][1]) == json.loads(runs[1][1])  # same content hashes
    per_run = con.execute(
        "SELECT run_id, count(*) FROM line_items GROUP BY run_id ORDER BY run_id"
    ).fetchall()
    assert per_run[0][1] == per_run[1][1]
    latest = con.execute(
        """SELECT count(*) FROM line_items
           WHERE run_id = (SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)"""
    ).fetchone()[0]
    assert latest == per_run[0][1]


def test_nothing_readable_is_one_line_error_and_no_database(tmp_path):
    junk = tmp_path / "in"
    junk.mkdir()
    (junk / "readme.txt").write_text("not a tender")
    db = tmp_path / "f.duckdb"
    result = CliRunner().invoke(cli, ["score", str(junk), "--db", str(db)])
    assert result.exit_code == 1
    assert "nothing could be read" in result.output
    assert not db.exists()


def test_rescore_reruns_rules_on_stored_lines(scored, tmp_path):
    db, summary = scored
    copy = tmp_path / "copy.duckdb"
    shutil.copy(db, copy)
    result = CliRunner().invoke(cli, ["rescore", "--db", str(copy), "--format", "json",
                                      "--seed", "0"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["run_id"] != summary["run_id"]
    assert again["line_items"] == summary["line_items"]
    assert again["findings_by_severity"] == summary["findings_by_severity"]
    con = duckdb.connect(str(copy), read_only=True)
    per_run = con.execute(
        """SELECT run_id, (SELECT count(*) FROM findings f WHERE f.run_id = r.run_id),
                  (SELECT count(*) FROM files f WHERE f.run_id = r.run_id)
           FROM runs r ORDER BY started_at"""
    ).fetchall()
    assert len(per_run) == 2
    assert per_run[0][1:] == per_run[1][1:]
    options = json.loads(con.execute("SELECT options FROM runs ORDER BY started_at DESC LIMIT 1"
                                     ).fetchall()[0][0])
    assert options["rescore_of"] == summary["run_id"]


RAW_RULE = """\
id: raw-mentions-h100
title: Raw cells mention H100
title_zh: 原始单元格提到 H100
mechanism: price_outlier
severity: low
status: experimental
description: A rule that reads the raw JSON of a line.
rationale: The sandbox carries raw only when a rule of the run reads it.
view: items
where: raw LIKE '%H100%'
message:
  zh: "原始数据提到 H100"
  en: "raw cells mention H100"
tests:
  - name: mentions
    expect: hit
    row: {raw: '{"型号": "H100 80GB"}'}
  - name: silent
    expect: miss
    row: {raw: '{"型号": "A800"}'}
"""


def test_a_rule_reading_raw_gets_it_and_the_sandbox_leaves_raw_out_otherwise(scored, tmp_path):
    from iccaudit import store
    from iccaudit.core.paths import bundled_rules_dir, reference_dir
    from iccaudit.enrich import build_sandbox

    pack = tmp_path / "extra" / "raw_rules"
    pack.mkdir(parents=True)
    (pack / "raw-mentions-h100.yaml").write_text(RAW_RULE, encoding="utf-8")
    db = tmp_path / "raw.duckdb"
    result = CliRunner().invoke(cli, ["score", str(SAMPLES), "--db", str(db), "--no-models",
                                      "--rules", str(pack), "--format", "json"])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    expected = con.execute("SELECT count(*) FROM line_items WHERE raw LIKE '%H100%'"
                           ).fetchall()[0][0]
    found = con.execute("SELECT count(*), count(DISTINCT item_id) FROM findings "
                        "WHERE detector = 'raw-mentions-h100'").fetchall()[0]
    status = con.execute("SELECT status FROM rule_runs WHERE detector = 'raw-mentions-h100'"
                         ).fetchall()
    assert expected > 0 and found == (expected, expected) and status == [("ok",)]

    # without such a rule the sandbox has no raw column, and everything else is the same
    lines = store.fetch_arrow(con, "SELECT * FROM line_items")
    con.close()
    full = build_sandbox(lines, reference_dir(bundled_rules_dir()))
    lean = build_sandbox(lines, reference_dir(bundled_rules_dir()), raw=False)
    for view in ("items", "line_items"):
        cols = [d[0] for d in full.execute(f"SELECT * FROM {view} LIMIT 0").description]
        lean_cols = [d[0] for d in lean.execute(f"SELECT * FROM {view} LIMIT 0").description]
        assert "raw" in cols and lean_cols == [c for c in cols if c != "raw"]
        same = ", ".join(f'"{c}"' for c in lean_cols)
        assert (full.execute(f"SELECT {same} FROM {view} ORDER BY item_id").fetchall()
                == lean.execute(f"SELECT {same} FROM {view} ORDER BY item_id").fetchall())
    full.close()
    lean.close()


def test_a_run_failing_after_its_transaction_opened_leaves_no_database(tmp_path):
    # the models' settings are read once the lines are being written: a bad file stops the
    # run there, and the database it would have created does not exist afterwards
    bad = tmp_path / "models.yaml"
    bad.write_text("version: 1\nensemble: [no-such-detector]\n", encoding="utf-8")
    db = tmp_path / "f.duckdb"
    result = CliRunner().invoke(cli, ["score", str(SAMPLES), "--db", str(db),
                                      "--models-config", str(bad)])
    assert result.exit_code == 3, result.output
    assert not db.exists() and not db.with_name("f.duckdb.wal").exists()


def test_items_are_numbered_in_file_sheet_row_order():
    """item_id follows (file, sheet, row), whatever order the batch came in; the quick path
    for one sheet read in order and the sort agree."""
    import pyarrow as pa

    from iccaudit.normalise import item_order
    from iccaudit.run.score import _numbered

    def table(files, sheets, rows):
        return pa.table({"source_file": pa.array(files, pa.string()),
                         "source_sheet": pa.array(sheets, pa.string()),
                         "source_row": pa.array(rows, pa.int64())})

    in_order = table(["a.csv"] * 4, [None] * 4, [2, 3, 5, 9])
    assert item_order(in_order) is None
    numbered = _numbered(in_order, "run-1")
    assert numbered.column("item_id").to_pylist() == [1, 2, 3, 4]
    assert numbered.column("run_id").to_pylist() == ["run-1"] * 4

    # one sheet, rows out of order: sorted by row
    shuffled = table(["a.csv"] * 3, ["S"] * 3, [7, 3, 5])
    assert item_order(shuffled).to_pylist() == [1, 2, 0]
    # rows in order but two files, or a sheet beside none: the sort decides (None first)
    two_files = table(["b.xlsx", "a.csv"], [None, None], [2, 3])
    assert item_order(two_files).to_pylist() == [1, 0]
    sheets = table(["a.xlsx"] * 3, ["S2", None, "S1"], [2, 3, 4])
    assert item_order(sheets).to_pylist() == [1, 2, 0]
    assert _numbered(sheets, "r").column("source_sheet").to_pylist() == [None, "S1", "S2"]


def test_imports_run_with_the_collector_paused_and_their_objects_frozen():
    import gc

    from iccaudit.run.resources import gc_paused as _gc_paused

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with _gc_paused():
            assert not gc.isenabled()
            made = [{"k": [i]} for i in range(1000)]  # noqa: F841 - objects to freeze
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + 1000
        gc.disable()  # a caller that had it off keeps it off
        with _gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()


def test_findings_texts_are_stored_with_zstd(scored):
    # zstd writes the findings' JSON and messages twice as fast as DuckDB's default string
    # compression, into a third of the space (docs/performance.md)
    db, _ = scored
    con = duckdb.connect(str(db), read_only=True)
    used = dict(con.execute(
        "SELECT column_name, list(DISTINCT compression ORDER BY compression) "
        "FROM pragma_storage_info('findings') WHERE segment_type = 'VARCHAR' "
        "AND column_name IN ('evidence', 'message', 'message_en') GROUP BY ALL").fetchall())
    assert used == {"evidence": ["ZSTD"], "message": ["ZSTD"], "message_en": ["ZSTD"]}


def test_in_memory_the_lines_are_written_beside_enrich(tmp_path, monkeypatch):
    """The store takes the lines as soon as the sandbox has its copy of them, and frees
    them as it writes while enrich builds its largest table; not once enrich is done (1 M
    lines, 40 % flagged: peak 2.80 -> 2.62 GB). The line facts need enrich and come after."""
    from iccaudit.enrich import Sandbox
    from iccaudit.run import stages
    from iccaudit.run.options import ScoreOptions
    from iccaudit.run.score import run_score

    events: list[tuple[str, ...]] = []
    write, finish = stages.Run.write_in_background, Sandbox.finish

    def logged_write(self, tables):
        events.append(("write", *tables))
        return write(self, tables)

    def logged_finish(self):
        events.append(("enriched",))
        return finish(self)

    monkeypatch.setattr(stages.Run, "write_in_background", logged_write)
    monkeypatch.setattr(Sandbox, "finish", logged_finish)
    result = run_score(ScoreOptions(paths=[SAMPLES], db=tmp_path / "f.duckdb"))
    enriched = events.index(("enriched",))
    lines = next(i for i, e in enumerate(events) if "line_items" in e)
    facts = next(i for i, e in enumerate(events) if "line_facts" in e)
    assert lines < enriched < facts
    con = duckdb.connect(str(tmp_path / "f.duckdb"), read_only=True)
    try:
        stored = con.execute("SELECT count(*) FROM line_items").fetchall()[0][0]
        assert stored == int(result.files["line_items"].sum()) > 0
    finally:
        con.close()
