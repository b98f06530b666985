"""Out of core (items on disk, a spilling DuckDB sandbox) scores exactly like in memory."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from iccaudit.pipeline import ScoreOptions, run_score

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "tenders"

QUERIES = {
    "findings": "SELECT detector, source_file, source_sheet, source_row, severity, "
                "round(est_excess_cny) FROM findings ORDER BY ALL",
    "line_items": "SELECT * EXCLUDE (run_id) FROM line_items ORDER BY item_id",
    "rejects": "SELECT * EXCLUDE (run_id) FROM rejects ORDER BY ALL",
    "non_items": "SELECT * EXCLUDE (run_id) FROM non_items ORDER BY ALL",
    "files": "SELECT * EXCLUDE (run_id) FROM files ORDER BY ALL",
}


def _score(paths: list[Path], db: Path, large: bool, work: Path | None = None) -> dict:
    run_score(ScoreOptions(paths=paths, db=db, large=large, work_dir=work, seed=0))
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {name: con.execute(q).fetchall() for name, q in QUERIES.items()}
    finally:
        con.close()


@pytest.mark.parametrize("reverse", [False, True], ids=["input-in-order", "input-reversed"])
def test_out_of_core_equals_in_memory(tmp_path, reverse):
    # reversed paths: items arrive out of (file, sheet, row) order and must be sorted on disk
    paths = sorted(SAMPLES.iterdir(), reverse=reverse)
    work = tmp_path / "work"
    work.mkdir()
    memory = _score(paths, tmp_path / "m.duckdb", large=False)
    disk = _score(paths, tmp_path / "d.duckdb", large=True, work=work)
    for name in QUERIES:
        assert disk[name] == memory[name], name
    assert len(memory["findings"]) > 50 and len(memory["line_items"]) > 500
    assert list(work.iterdir()) == []  # the out-of-core files are gone


def test_a_terminated_out_of_core_run_leaves_no_files_and_no_run(tmp_path):
    """SIGTERM (a batch system's stop) unwinds like Ctrl-C: the temporary files go, the
    database is not written."""
    import os
    import signal
    import subprocess
    import sys
    import time

    work = tmp_path / "work"
    work.mkdir()
    db = tmp_path / "f.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-m", "iccaudit.cli", "score", str(SAMPLES), "--db", str(db), "-q",
         "--out-of-core", "--work-dir", str(work)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(work.rglob("*")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.poll() is None, "the run ended before it could be stopped"
    os.kill(child.pid, signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(work.iterdir()) == []
    assert not db.exists()
