"""`rescore --rules-only` keeps the enriched lines beside the database and re-uses them.

Real runs on the bundled samples into a real DuckDB file: the second rules-only re-run opens
the kept sandbox instead of enriching, and finds exactly what the first found; a change of
configuration (another price date) misses the kept file and enriches afresh.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from iccaudit.cli import cli

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "tenders"


def _run(args: list[str]) -> dict:
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _latest(db: Path) -> tuple[dict, list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        run_id, options = con.execute(
            "SELECT run_id, options FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
        findings = con.execute(
            "SELECT finding_id, detector, item_id, severity, message, message_en, evidence "
            "FROM findings WHERE run_id = ? ORDER BY ALL", [run_id]).fetchall()
    finally:
        con.close()
    return json.loads(options), findings


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("enriched") / "findings.duckdb"
    _run(["score", str(SAMPLES), "--db", str(path), "--no-models"])
    return path


def test_second_rules_only_rescore_reuses_the_enriched_lines(db: Path) -> None:
    kept = db.with_name(db.name + ".enriched")
    _run(["rescore", "--db", str(db), "--rules-only"])
    first_options, first = _latest(db)
    assert first_options["enriched_reused"] is False
    files = sorted(kept.glob("*.duckdb"))
    assert len(files) == 1 and not list(kept.glob("*.building"))

    # the latest run is now the rescore: its lines are the first run's, so the same file
    _run(["rescore", "--db", str(db), "--rules-only"])
    second_options, second = _latest(db)
    assert second_options["enriched_reused"] is True
    assert sorted(kept.glob("*.duckdb")) == files
    assert second == first and len(first) > 10

    # and the scoring run itself gave the same findings
    con = duckdb.connect(str(db), read_only=True)
    try:
        scored = con.execute(
            "SELECT finding_id, detector, item_id, severity, message, message_en, evidence "
            "FROM findings WHERE run_id = (SELECT run_id FROM runs ORDER BY started_at "
            "LIMIT 1) ORDER BY ALL").fetchall()
    finally:
        con.close()
    assert scored == first


def test_another_configuration_enriches_afresh(db: Path) -> None:
    kept = db.with_name(db.name + ".enriched")
    _run(["rescore", "--db", str(db), "--rules-only"])
    before = set(kept.glob("*.duckdb"))
    _run(["rescore", "--db", str(db), "--rules-only", "--price-date", "2023-01-01"])
    options, _ = _latest(db)
    assert options["enriched_reused"] is False
    assert len(set(kept.glob("*.duckdb")) - before) == 1


def test_rescore_with_models_keeps_nothing(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    _run(["score", str(SAMPLES), "--db", str(db), "--no-models"])
    options = _run(["rescore", "--db", str(db)])
    assert options["findings"] > 0
    assert not db.with_name(db.name + ".enriched").exists()


def test_an_unreadable_kept_file_is_rebuilt_and_said(tmp_path: Path) -> None:
    db = tmp_path / "u.duckdb"
    _run(["score", str(SAMPLES), "--db", str(db), "--no-models"])
    _run(["rescore", "--db", str(db), "--rules-only"])
    _, first = _latest(db)
    (kept,) = db.with_name(db.name + ".enriched").glob("*.duckdb")
    kept.write_bytes(b"not a database")
    summary = _run(["rescore", "--db", str(db), "--rules-only"])
    assert any("unreadable" in w for w in summary["warnings"])
    options, again = _latest(db)
    assert options["enriched_reused"] is False and again == first
    assert kept.stat().st_size > 1000  # rebuilt in place


def test_a_rescore_copies_every_line_of_its_source_run(tmp_path: Path) -> None:
    """The rescore's lines are copied inside the database (never read into Python when the
    enriched lines are reused): the same rows, files, rejects and non-items as the source
    run, under the new run id."""
    db = tmp_path / "findings.duckdb"
    _run(["score", str(SAMPLES), "--db", str(db), "--no-models"])
    _run(["rescore", "--db", str(db), "--rules-only"])
    _run(["rescore", "--db", str(db), "--rules-only"])  # the kept file reused
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY started_at")
                .fetchall()]
        assert len(runs) == 3
        for table in ("line_items", "files", "rejects", "non_items"):
            cols = ", ".join(f'"{c}"' for c, *_ in con.execute(f"DESCRIBE {table}").fetchall()
                             if c != "run_id")
            rows = [con.execute(f"SELECT {cols} FROM {table} WHERE run_id = ? ORDER BY ALL",
                                [run]).fetchall() for run in runs]
            assert rows[0], table
            assert rows[1] == rows[0] and rows[2] == rows[0], table
        n = con.execute("SELECT count(*) FROM line_items WHERE run_id = ?",
                        [runs[0]]).fetchall()[0][0]
        counted = con.execute("SELECT line_items FROM runs ORDER BY started_at").fetchall()
        assert [c for (c,) in counted] == [n] * 3
    finally:
        con.close()
