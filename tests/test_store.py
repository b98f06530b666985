"""The findings database: DDL from the models, one transaction per run, locks, kills."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pandas as pd
import pytest

from iccaudit import store
from iccaudit.core import schema


def _run_frame(run_id: str) -> pd.DataFrame:
    return pd.DataFrame([{
        "run_id": run_id, "started_at": dt.datetime(2026, 1, 1), "finished_at": None,
        "tool_version": "test", "inputs": "[]", "options": "{}", "status": "complete",
    }])


def _items(run_id: str, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": run_id, "item_id": range(1, n + 1), "source_file": "t.csv",
        "source_row": range(2, n + 2), "tender_id": "T1", "line_no": [str(i) for i in range(n)],
        "item_name": "GPU服务器", "quantity": 1.0, "unit_price_cny": 2_400_000.0, "raw": "{}",
    })


def test_ddl_follows_the_pydantic_models():
    con = duckdb.connect()
    store.ensure_schema(con)
    for table, model in schema.TABLES.items():
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        assert cols == list(model.model_fields), table
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE line_items)")
                 .fetchall())
    assert types["serial_numbers"] == "VARCHAR[]"
    assert types["date"] == "DATE"
    assert types["unit_price_cny"] == "DOUBLE"


def test_write_run_commits_all_tables(tmp_path):
    db = tmp_path / "f.duckdb"
    store.write_run(db, {"runs": _run_frame("r1"), "line_items": _items("r1", 5)})
    con = store.connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM line_items").fetchone()[0] == 5
    assert store.latest_run_id(con) == "r1"
    assert con.execute("SELECT value FROM iccaudit_meta WHERE key='schema_version'"
                       ).fetchone()[0] == str(schema.SCHEMA_VERSION)


def test_failed_run_leaves_database_as_it_was(tmp_path):
    db = tmp_path / "f.duckdb"
    store.write_run(db, {"runs": _run_frame("r1"), "line_items": _items("r1", 3)})
    bad_findings = pd.DataFrame([{"run_id": "r2", "finding_id": "x"}])  # NOT NULL columns missing
    with pytest.raises(duckdb.Error):
        store.write_run(db, {"runs": _run_frame("r2"), "line_items": _items("r2", 4),
                             "findings": bad_findings})
    con = store.connect(db, read_only=True)
    assert con.execute("SELECT list(run_id) FROM runs").fetchone()[0] == ["r1"]
    assert con.execute("SELECT count(*) FROM line_items").fetchone()[0] == 3


def test_lines_written_in_the_background_commit_with_the_run(tmp_path):
    db = tmp_path / "f.duckdb"
    writer = store.RunWriter(db)
    writer.insert_in_background({"line_items": _items("r1", 50_000)})
    writer.insert({"runs": _run_frame("r1")})  # waits for the background insert first
    writer.commit()
    con = store.connect(db, read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT item_id) FROM line_items"
                       ).fetchone() == (50_000, 50_000)
    assert writer.background_s > 0


def test_a_table_given_as_a_function_is_made_by_the_writer_when_its_write_begins(tmp_path):
    """The rows exist only while they are written: the function runs on the writer thread,
    after the work queued before it."""
    import threading

    made: list[tuple[str, int]] = []
    writer = store.RunWriter(tmp_path / "f.duckdb")
    writer.insert_in_background({"runs": _run_frame("r1"), "line_items": _items("r1", 20_000)})

    def items() -> pd.DataFrame:
        written = writer.con.execute("SELECT count(*) FROM line_items").fetchall()[0][0]
        made.append((threading.current_thread().name, written))
        return _items("r1", 10).assign(item_id=range(20_000, 20_010))

    writer.insert_in_background({"line_items": items})
    writer.commit()
    assert made == [("iccaudit-store", 20_000)]
    con = duckdb.connect(str(tmp_path / "f.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM line_items").fetchone()[0] == 20_010


def test_the_background_writer_takes_an_arrow_table_over_and_frees_it_as_it_writes(tmp_path):
    """Handed over with no other reference, the rows' memory comes back once written."""
    import gc

    import pyarrow as pa

    n = 300_000
    lines = pa.Table.from_pandas(_items("r1", n), preserve_index=False)
    lines = lines.append_column("capacity_kw", pa.array(range(n), pa.float64()))
    before = pa.total_allocated_bytes()
    writer = store.RunWriter(tmp_path / "f.duckdb")
    tables = {"line_items": lines, "runs": _run_frame("r1")}
    del lines
    writer.insert_in_background(tables)
    writer.wait()
    gc.collect()
    assert tables == {}  # taken over
    assert pa.total_allocated_bytes() < before - 2_000_000  # the rows' buffers are gone
    writer.commit()
    con = store.connect(tmp_path / "f.duckdb", read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT item_id), sum(capacity_kw) "
                       "FROM line_items").fetchone() == (n, n, float(sum(range(n))))


def test_an_aborted_run_removes_the_database_it_created_and_spares_an_existing_one(tmp_path):
    new = tmp_path / "new.duckdb"
    writer = store.RunWriter(new)
    writer.insert_in_background({"line_items": _items("r1", 50_000)})
    writer.abort()
    assert not new.exists() and not new.with_name("new.duckdb.wal").exists()

    old = tmp_path / "old.duckdb"
    store.write_run(old, {"runs": _run_frame("r1"), "line_items": _items("r1", 3)})
    writer = store.RunWriter(old)
    writer.insert_in_background({"line_items": _items("r2", 50_000)})
    writer.abort()
    con = store.connect(old, read_only=True)
    assert con.execute("SELECT list(DISTINCT run_id) FROM line_items").fetchone()[0] == ["r1"]
    assert con.execute("SELECT count(*) FROM line_items").fetchone()[0] == 3


def test_a_background_insert_error_is_raised_by_the_next_call(tmp_path):
    writer = store.RunWriter(tmp_path / "f.duckdb")
    bad = _items("r1", 3).drop(columns=["raw"])  # raw is NOT NULL
    writer.insert_in_background({"line_items": bad})
    with pytest.raises(duckdb.Error):
        writer.commit()
    assert not (tmp_path / "f.duckdb").exists()


def test_raw_json_is_stored_with_zstd(tmp_path):
    db = tmp_path / "f.duckdb"
    store.write_run(db, {"runs": _run_frame("r1"), "line_items": _items("r1", 200_000)})
    con = store.connect(db, read_only=True)
    used = {r[0] for r in con.execute(
        "SELECT compression FROM pragma_storage_info('line_items') WHERE column_name = 'raw' "
        "AND segment_type = 'VARCHAR'").fetchall()}
    assert used == {"ZSTD"}


def test_unknown_columns_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown columns"):
        store.write_run(tmp_path / "f.duckdb",
                        {"runs": _run_frame("r1").assign(surprise=1)})


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "f.duckdb"
    con = duckdb.connect(str(db))
    con.execute(store.META_DDL)
    con.execute("INSERT INTO iccaudit_meta VALUES ('schema_version', '999')")
    con.close()
    with pytest.raises(store.StoreError, match="newer than this iccaudit"):
        store.write_run(db, {"runs": _run_frame("r1")})


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(store.StoreError, match="no such database"):
        store.connect(tmp_path / "nope.duckdb", read_only=True)


def test_not_a_database_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_bytes(b"this is not duckdb" * 100)
    with pytest.raises(store.StoreError):
        store.connect(bogus)


_HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE TABLE IF NOT EXISTS t(x INT)")
    print("locked", flush=True)
    time.sleep(60)
""")


def test_second_writer_gets_a_one_line_error(tmp_path):
    db = tmp_path / "f.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(store.StoreError, match="in use by another iccaudit process"):
            store.write_run(db, {"runs": _run_frame("r1")})
    finally:
        holder.kill()
        holder.wait()


_KILLED_WRITER = textwrap.dedent("""
    import sys, datetime as dt, pandas as pd
    from iccaudit import store
    import iccaudit.store as s
    real_insert = s.insert_frame
    def slow_insert(con, table, frame):
        n = real_insert(con, table, frame)
        if table == "line_items":
            print("inside", flush=True)
            import time; time.sleep(60)
        return n
    s.insert_frame = slow_insert
    run = pd.DataFrame([{"run_id": "r2", "started_at": dt.datetime(2026, 1, 2),
                         "tool_version": "t", "inputs": "[]", "options": "{}"}])
    items = pd.DataFrame({"run_id": "r2", "item_id": range(1, 200001), "source_file": "t.csv",
                          "source_row": 1, "tender_id": "T", "line_no": "1", "item_name": "x",
                          "quantity": 1.0, "unit_price_cny": 1.0, "raw": "{}"})
    store.write_run(sys.argv[1], {"runs": run, "line_items": items})
""")


def test_run_killed_midway_leaves_only_complete_runs(tmp_path):
    db = tmp_path / "f.duckdb"
    store.write_run(db, {"runs": _run_frame("r1"), "line_items": _items("r1", 3)})
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(db)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "inside"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    time.sleep(0.1)
    con = store.connect(db, read_only=True)
    assert con.execute("SELECT list(run_id ORDER BY run_id) FROM runs").fetchone()[0] == ["r1"]
    assert con.execute("SELECT count(*) FROM line_items").fetchone()[0] == 3


def test_abort_after_a_commit_leaves_the_run_in_place(tmp_path):
    db = tmp_path / "f.duckdb"
    writer = store.RunWriter(db)
    writer.insert({"runs": _run_frame("r1"), "line_items": _items("r1", 3)})
    writer.commit()
    writer.abort()  # a caller's blanket clean-up after the commit must not undo it
    con = store.connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM line_items").fetchone()[0] == 3


def test_background_writes_are_queued_in_order_and_an_error_skips_the_rest(tmp_path):
    """insert_in_background returns at once; the writer thread writes in the queued order,
    and after a failed write the queued ones are skipped and the error raised once."""
    db = tmp_path / "f.duckdb"
    writer = store.RunWriter(db)
    writer.insert_in_background({"line_items": _items("r1", 30_000)})
    writer.insert_in_background({"runs": _run_frame("r1")})
    writer.wait()
    assert writer.con.execute("SELECT count(*) FROM line_items").fetchall()[0][0] == 30_000
    bad = _items("r2", 3).drop(columns=["raw"])  # raw is NOT NULL
    writer.insert_in_background({"line_items": bad})
    writer.insert_in_background({"line_items": _items("r3", 5)})
    with pytest.raises(duckdb.Error):
        writer.wait()
    writer.wait()  # raised once: r3, queued behind the failure, was skipped, not tried
    writer.abort()
    assert not db.exists()


def test_stored_rows_copy_a_run_under_a_new_id_inside_the_database(tmp_path):
    db = tmp_path / "f.duckdb"
    store.write_run(db, {"runs": _run_frame("r1"), "line_items": _items("r1", 5)})
    writer = store.RunWriter(db)
    writer.insert({"runs": _run_frame("r2"),
                   "line_items": store.StoredRows("line_items", "r1", "r2", 5)})
    assert writer.fetch_arrow("SELECT count(*) AS n FROM line_items WHERE run_id = 'r2'"
                              ).column("n").to_pylist() == [5]
    writer.commit()
    con = store.connect(db, read_only=True)
    cols = ", ".join(c for c in schema.columns("line_items") if c != "run_id")
    first, second = (con.execute(f"SELECT {cols} FROM line_items WHERE run_id = ? ORDER BY ALL",
                                 [r]).fetchall() for r in ("r1", "r2"))
    assert first == second and len(first) == 5


def test_a_run_closes_without_rewriting_the_row_groups_it_just_wrote(tmp_path):
    """The run's writer turns off the vacuum of DuckDB's closing checkpoint: it merged the
    partly filled row groups each insert leaves by rewriting them, alone on one core at the
    end of the run (1 M lines, 609 k findings: 0.9 s), for the same row groups; the rows are
    what was written."""
    db = tmp_path / "f.duckdb"
    writer = store.RunWriter(db)
    assert writer.con.execute("SELECT current_setting('max_vacuum_tasks')").fetchall() == [(0,)]
    writer.insert_in_background({"line_items": _items("r1", 30_000)})
    writer.insert_in_background({"line_items": _items("r1", 30_000).assign(
        item_id=range(30_001, 60_001))})
    writer.insert({"runs": _run_frame("r1")})
    writer.commit()
    con = store.connect(db, read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT item_id) FROM line_items"
                       ).fetchone() == (60_000, 60_000)
