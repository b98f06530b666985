"""Out of core (items on disk, a spilling DuckDB sandbox) scores exactly like in memory."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from iccaudit.run import ScoreOptions, run_score
from iccaudit.run.resources import sandbox_memory_limit

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "tenders"

QUERIES = {
    "findings": "SELECT detector, source_file, source_sheet, source_row, severity, "
                "round(est_excess_cny) FROM findings ORDER BY ALL",
    "line_items": "SELECT * EXCLUDE (run_id) FROM line_items ORDER BY item_id",
    "rejects": "SELECT * EXCLUDE (run_id) FROM rejects ORDER BY ALL",
    "non_items": "SELECT * EXCLUDE (run_id) FROM non_items ORDER BY ALL",
    "files": "SELECT * EXCLUDE (run_id) FROM files ORDER BY ALL",
    "line_facts": "SELECT * EXCLUDE (run_id) FROM line_facts ORDER BY item_id",
    "run_config": "SELECT kind, path, sha256 FROM run_config ORDER BY ALL",
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
    assert len(memory["line_facts"]) == len(memory["line_items"])
    assert list(work.iterdir()) == []  # the out-of-core files are gone


@pytest.mark.parametrize("reverse", [False, True], ids=["input-in-order", "input-reversed"])
def test_out_of_core_with_a_layout_staged_as_cells_equals_in_memory(tmp_path, monkeypatch,
                                                                    reverse):
    """A first file of one layout in batches of its own: the staging keeps its cells and
    the other files' JSON beside them (reversed: then sorted into a new file); the run is
    still the in-memory one."""
    import iccaudit.normalise.batches as ingest_module
    from iccaudit.normalise import ParquetSink

    header = "序号,设备名称,品牌,规格型号,数量,单位,单价（元）,合计（元）,供应商\n"
    lines = "".join(f"{i},GPU服务器,浪潮,NF5688M7,{1 + i % 3},台,{2_000_000 + i * 1000},,甲\n"
                    for i in range(1, 40))
    first = tmp_path / "z_long.csv"
    first.write_text(header + lines, encoding="utf-8")
    paths = [first, *sorted(SAMPLES.iterdir(), reverse=reverse)]
    work = tmp_path / "work"
    work.mkdir()
    memory = _score(paths, tmp_path / "m.duckdb", large=False)
    monkeypatch.setattr(ingest_module, "BATCH_ROWS", 10)
    staged = []
    original = ParquetSink._staged

    def spy(self, items):
        staged.append(self._cells is not None)
        return original(self, items)

    monkeypatch.setattr(ParquetSink, "_staged", spy)
    disk = _score(paths, tmp_path / "d.duckdb", large=True, work=work)
    assert staged and all(staged)  # cells from the first batch on
    for name in QUERIES:
        assert disk[name] == memory[name], name
    assert sum(r[1] == str(first) for r in memory["line_items"]) == 39


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


def test_a_sandbox_in_a_database_file_scores_like_one_in_memory(tmp_path, monkeypatch):
    """Inputs from SANDBOX_FILE_BYTES on are enriched in a database file in a temporary
    folder (its tables compressed): the same rows and findings, and the folder is gone."""
    import iccaudit.enrich.sandbox as sandbox_module
    import iccaudit.run.score as score_module

    paths = sorted(SAMPLES.iterdir())
    memory = _score(paths, tmp_path / "m.duckdb", large=False)
    monkeypatch.setattr(score_module, "SANDBOX_FILE_BYTES", 0)
    work = tmp_path / "work"
    work.mkdir()
    files: list[Path] = []
    limits: list[str | None] = []
    real = sandbox_module._connect

    def spy(database, memory_limit, temp_directory=None):
        con = real(database, memory_limit, temp_directory)
        files.append(database)
        limits.append(memory_limit)
        assert database is not None and database.exists()  # built in the file, not in memory
        assert temp_directory is None  # not out of core: its step tables are temporary
        return con

    monkeypatch.setattr(sandbox_module, "_connect", spy)
    monkeypatch.delenv("ICCAUDIT_MEMORY_LIMIT", raising=False)
    filed = _score(paths, tmp_path / "f.duckdb", large=False, work=work)
    assert len(files) == 1 and files[0].parent.parent == work
    # its blocks are held in memory up to a limit set by the number of lines
    assert limits == [sandbox_memory_limit(len(filed["line_items"]))]
    for name in QUERIES:
        assert filed[name] == memory[name], name
    assert list(work.iterdir()) == []


def test_the_memory_limit_of_a_sandbox_in_a_file_follows_its_lines(monkeypatch):
    """At least 1 GB, SANDBOX_BYTES_PER_LINE a line, at most half the machine (at least
    2 GB, so that an 8 GB laptop holds the peer medians of the largest input scored in
    memory); $ICCAUDIT_MEMORY_LIMIT overrides it."""
    from iccaudit.run import resources

    monkeypatch.delenv("ICCAUDIT_MEMORY_LIMIT", raising=False)
    assert sandbox_memory_limit(10) == "1024MB"
    monkeypatch.setattr(resources, "machine_memory", lambda: 8 * 1024**3)
    per_line = resources.SANDBOX_BYTES_PER_LINE
    assert sandbox_memory_limit(1_000_000) == f"{per_line * 1_000_000 // 1024**2}MB"
    assert sandbox_memory_limit(4_000_000) == "4096MB"  # half of 8 GB
    monkeypatch.setattr(resources, "machine_memory", lambda: 2 * 1024**3)
    assert sandbox_memory_limit(4_000_000) == "2048MB"  # never below 2 GB
    monkeypatch.setenv("ICCAUDIT_MEMORY_LIMIT", "3GB")
    assert sandbox_memory_limit(10) == "3GB"
