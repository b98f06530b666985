"""Concurrent and killed `iccaudit score` runs on one database, through the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from . import corpus as C
from .conftest import assert_one_line_error, check_database, invoke, run_cli

ROWS = 20_000
IN_USE = "in use by another iccaudit process"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("large")
    assert invoke(["samples", "--out", str(out), "--rows", str(ROWS)]).code == 0
    return out / "tenders"


@pytest.fixture
def db_with_one_run(tmp_path) -> tuple[Path, dict]:
    db = tmp_path / "f.duckdb"
    small = tmp_path / "small.csv"
    small.write_bytes(C.csv_bytes([C.HEADER, C.ROW, C.ROW2]))
    assert invoke(["score", str(small), "--db", str(db), "--no-models"]).code == 0
    return db, check_database(db)


def _score_cmd(paths: Path, db: Path) -> list[str]:
    return [sys.executable, "-c", "from iccaudit.cli import main; main()", "score", str(paths),
            "--db", str(db), "--no-models", "-q", "--format", "json"]


def test_two_concurrent_runs_wait_or_fail_in_one_line(corpus, db_with_one_run):
    db, before = db_with_one_run
    procs = [subprocess.Popen(_score_cmd(corpus, db), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert "Traceback" not in out + err
        if code != 0:  # the loser of the race for the file lock
            assert code == 1 and err.strip().count("\n") == 0 and IN_USE in err, err
    assert any(code == 0 for code, _, _ in results)
    after = check_database(db)
    won = sum(code == 0 for code, _, _ in results)
    assert after["runs"] == before["runs"] + won
    assert set(before["run_ids"]) < set(after["run_ids"])


_HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(120)
""")


def test_a_held_database_is_a_one_line_error_and_stays_intact(db_with_one_run, tmp_path):
    db, before = db_with_one_run
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        small = tmp_path / "other.csv"
        small.write_bytes(C.csv_bytes([C.HEADER, C.ROW]))
        out = run_cli(["score", str(small), "--db", str(db), "--no-models", "-q"])
        assert_one_line_error(out, str(db), IN_USE)
    finally:
        holder.kill()
        holder.wait()
    assert check_database(db) == before


def test_run_killed_while_writing_leaves_only_complete_runs(corpus, db_with_one_run):
    db, before = db_with_one_run
    wal = Path(f"{db}.wal")
    size = db.stat().st_size
    proc = subprocess.Popen(_score_cmd(corpus, db), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        # The store opens the file only once every stage has succeeded: a WAL or a growing
        # file means the run's single transaction is being written right now.
        deadline = time.monotonic() + 300
        while proc.poll() is None and not wal.exists() and db.stat().st_size == size:
            assert time.monotonic() < deadline, "score never started writing"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    after = check_database(db)  # only complete runs, every file reconciles, doctor passes
    # The earlier run intact, and of the killed one nothing, or all of it: DuckDB writes the
    # WAL at COMMIT, and a kill that lands after the commit record was written (a loaded
    # machine is slow to deliver it) leaves the killed run committed whole.
    assert after["run_ids"][: len(before["run_ids"])] == before["run_ids"]
    if after != before:
        assert after["runs"] == before["runs"] + 1, (before, after)
        assert all(after[t] > before[t] for t in ("files", "line_items")), (before, after)
    # and the database still takes new runs
    small = db.parent / "small.csv"
    assert invoke(["score", str(small), "--db", str(db), "--no-models", "-q"]).code == 0
    assert check_database(db)["runs"] == after["runs"] + 1
