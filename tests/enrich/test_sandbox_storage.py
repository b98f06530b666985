"""Where the sandbox keeps its rows: one wide copy aligned by position, or a database file."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from iccaudit.enrich import build_sandbox
from iccaudit.enrich.dictionary import DICTIONARY
from tests.enrich.conftest import REFERENCE_DIR, frame, line

ROWS = [
    line("GPU服务器", 2_400_000, spec="8*H100", serial_numbers=["SN-0001"], tender_id="T1"),
    line("GPU服务器", 2_500_000, spec="8*H100", serial_numbers=["sn 0001"], tender_id="T2"),
    line("液冷CDU", 480_000, capacity_kw=200.0, unit="套"),
    line("IB交换机", 300_000, quantity=2.0),
    line("IB交换机", 300_000, quantity=2.0),
    line("运维服务", 1, unit="项"),
]


def _views(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {view: con.execute(f"SELECT * FROM {view} ORDER BY ALL").fetchall()
            for view in [*DICTIONARY, "line_items"]}


def _shuffled_lines(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` lines whose item_ids are a permutation (not the row order) and whose prices,
    quantities and names all differ, so that a line paired with another's figures shows."""
    ids = np.random.default_rng(seed).permutation(n) + 1
    df = frame([line("IB交换机", 1.0)]).iloc[np.zeros(n, dtype=int)].reset_index(drop=True)
    df["item_id"] = ids
    df["item_name"] = "IB交换机 " + pd.Series(ids % 997).astype(str)
    df["quantity"] = (ids % 7 + 1).astype(float)
    df["unit_price_cny"] = ids * 10.0
    df["tender_id"] = "T" + pd.Series(ids % 300).astype(str)
    return df


def test_items_rows_keep_their_own_figures_across_row_groups(reference):
    # more rows than one DuckDB row group (122,880), in an order unrelated to item_id: the
    # figures computed on narrow rows must come back to the line they were computed from
    n = 130_000
    con = build_sandbox(_shuffled_lines(n), REFERENCE_DIR, reference=reference)
    try:
        got = con.execute("""
            SELECT count(*), count(DISTINCT item_id),
                count(*) FILTER (WHERE line_total_cny IS DISTINCT FROM quantity * unit_price_cny),
                count(*) FILTER (WHERE text IS DISTINCT FROM lower(item_name)),
                count(*) FILTER (WHERE peer_price_cny IS DISTINCT FROM unit_price_cny)
            FROM items""").fetchall()
        assert got == [(n, n, 0, 0, 0)]
        lines = con.execute("SELECT count(*), min(item_id), max(item_id) FROM line_items")
        assert lines.fetchall() == [(n, 1, n)]
    finally:
        con.close()


def test_line_items_is_one_copy_of_the_rows(sandbox):
    con = sandbox(ROWS)
    kinds = dict(con.execute(
        "SELECT table_name, table_type FROM information_schema.tables").fetchall())
    assert kinds["line_items"] == "VIEW" and kinds["items"] == "BASE TABLE"
    assert {k for k in kinds if k.startswith("_")} == set()  # the internal steps are dropped
    raw = con.execute("SELECT raw FROM line_items ORDER BY item_id").fetchall()
    assert [r[0] for r in raw] == list(frame(ROWS)["raw"])


@pytest.mark.parametrize(("column", "value", "message"), [
    ("item_id", 1, "item_id is not unique"),
    ("item_name", None, "'item_name' is empty in 1 row"),
])
def test_rows_breaking_the_schema_are_refused(reference, column, value, message):
    bad = frame(ROWS)
    bad.loc[2, column] = value
    with pytest.raises(ValueError, match=message):
        build_sandbox(bad, REFERENCE_DIR, reference=reference)


def test_file_backed_sandbox_gives_the_same_views_and_stays_locked(reference, tmp_path):
    db = tmp_path / "sandbox.duckdb"
    in_memory = build_sandbox(frame(ROWS), REFERENCE_DIR, reference=reference)
    on_file = build_sandbox(frame(ROWS), REFERENCE_DIR, reference=reference, database=db,
                            memory_limit="256MB")
    try:
        assert db.exists()
        assert _views(on_file) == _views(in_memory)
        settings = on_file.execute(
            "SELECT current_setting('memory_limit'), current_setting('enable_external_access'),"
            " current_setting('lock_configuration')").fetchall()[0]
        assert settings[0].startswith("244") and settings[1:] == (False, True)  # 256 MB = 244 MiB
        (tmp_path / "x.csv").write_text("a\n1\n")
        for sql in (f"SELECT * FROM read_csv('{tmp_path / 'x.csv'}')",
                    f"COPY items TO '{tmp_path / 'out.csv'}'",
                    f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
                    "SET enable_external_access = true", "SET memory_limit = '64GB'",
                    "SET temp_directory = '/tmp'"):
            with pytest.raises(duckdb.Error):
                on_file.execute(sql)
        assert not (tmp_path / "out.csv").exists()
    finally:
        in_memory.close()
        on_file.close()


def test_file_backed_sandbox_spills_within_its_memory_limit(reference, tmp_path):
    # 130 k lines under a 128 MB limit: the ORDER BY, windows and joins of enrich need more
    # than that at once, so DuckDB spills to <database>.tmp; the figures are those of the
    # in-memory build
    lines = _shuffled_lines(130_000, seed=1)
    db = tmp_path / "big.duckdb"
    con = build_sandbox(lines, REFERENCE_DIR, reference=reference, database=db,
                        memory_limit="128MB")
    spill_dir = tmp_path / "big.duckdb.tmp"
    try:
        on_file = con.execute("SELECT sum(hash(i)) FROM items i").fetchall()
        # DuckDB makes the directory at its first spill (not at all under a 1 GB limit)
        assert spill_dir.is_dir()
    finally:
        con.close()
    assert not spill_dir.exists()  # and removes it on close
    ref_con = build_sandbox(lines, REFERENCE_DIR, reference=reference)
    try:
        assert on_file == ref_con.execute("SELECT sum(hash(i)) FROM items i").fetchall()
    finally:
        ref_con.close()


def test_sandbox_database_must_be_new(reference, tmp_path):
    used = tmp_path / "findings.duckdb"
    duckdb.connect(str(used)).execute("CREATE TABLE t AS SELECT 1 AS a").close()
    with pytest.raises(ValueError, match="new \\(or empty\\) database file"):
        build_sandbox(frame(ROWS), REFERENCE_DIR, reference=reference, database=used)
    assert duckdb.connect(str(used)).execute("SELECT a FROM t").fetchall() == [(1,)]
    empty = tmp_path / "empty.duckdb"
    empty.touch()  # what tempfile.mkstemp leaves
    con = build_sandbox(frame(ROWS), REFERENCE_DIR, reference=reference, database=empty)
    try:
        assert con.execute("SELECT count(*) FROM items").fetchall() == [(len(ROWS),)]
    finally:
        con.close()


def test_items_align_when_the_rows_stream_from_parquet(reference, tmp_path):
    # the out-of-core pipeline hands over a Parquet file (many row groups) rather than a table
    import pyarrow as pa
    import pyarrow.parquet as pq

    from iccaudit.store import ParquetRows

    n = 60_000
    path = tmp_path / "lines.parquet"
    pq.write_table(pa.Table.from_pandas(_shuffled_lines(n, seed=2), preserve_index=False),
                   path, row_group_size=7_000)
    con = build_sandbox(ParquetRows(path), REFERENCE_DIR, reference=reference,
                        database=tmp_path / "sandbox.duckdb", memory_limit="512MB")
    try:
        got = con.execute("""
            SELECT count(*), count(DISTINCT item_id),
                count(*) FILTER (WHERE line_total_cny IS DISTINCT FROM quantity * unit_price_cny),
                count(*) FILTER (WHERE text IS DISTINCT FROM lower(item_name))
            FROM items""").fetchall()
        assert got == [(n, n, 0, 0)]
    finally:
        con.close()


def test_line_facts_stream_in_batches_and_say_when_they_are_read(sandbox, monkeypatch):
    """The store writes a run's line facts and recognition as they are read from the
    sandbox, a batch at a time (10 M lines: 2.2 GB of Arrow that never exist at once); the
    batches are the whole table, and the cursor is closed once they are all read."""
    from iccaudit.enrich import facts

    monkeypatch.setattr(facts, "STREAM_ROWS", 2)
    con = sandbox([line("GPU服务器", 2_400_000.0 + k, source_row=k + 2) for k in range(5)])
    for whole, streamed in ((facts.line_facts, facts.line_facts_reader),
                            (facts.line_recognition, facts.line_recognition_reader)):
        closed: list[bool] = []
        reader = streamed(con, "r9", done=lambda seen=closed: seen.append(True))
        batches = list(reader)
        assert [b.num_rows for b in batches] == [2, 2, 1]
        assert closed == [True]
        table = pa.Table.from_batches(batches)
        assert table.column("run_id").to_pylist() == ["r9"] * 5
        assert table.equals(whole(con, "r9"))
        assert table.column_names[0] == "run_id" and len(table.column_names) > 2
