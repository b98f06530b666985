"""The facts a run stores about its lines: a narrow slice of the sandbox's ``items``.

The report and the exports show these (category, accelerator, cards, price per kW, reference
band, peer median) as the run derived them, read back from the findings database; nothing
downstream re-runs enrich. The columns are those of :class:`iccaudit.core.schema.LineFact`,
each named and typed like the ``items`` column it copies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from iccaudit.core import schema


def _columns_sql(fields: dict[str, Any]) -> str:
    """The query on a sandbox that gives a stored table's columns but ``run_id`` (``fields``:
    its model's), typed like them, one row per line of ``items``."""
    cols = ", ".join(f'CAST("{name}" AS {schema.sql_type(f.annotation)}) AS "{name}"'
                     for name, f in fields.items() if name != "run_id")
    return f"SELECT {cols} FROM items"


#: Rows per batch of the streamed line facts and recognition.
STREAM_ROWS = 122_880


def _streamed(con: duckdb.DuckDBPyConnection, sql: str, run_id: str,
              done: Callable[[], None] | None) -> pa.RecordBatchReader:
    """The rows of ``sql`` on ``con`` with ``run_id`` in front, read :data:`STREAM_ROWS` at a
    time as the reader is read; ``done`` is called once they are all read (or the reader is
    let go).

    ``run_id`` is one dictionary entry rather than a string per row (the store writes the
    text)."""
    reader = con.sql(sql).to_arrow_reader(STREAM_ROWS)
    out = reader.schema.insert(0, pa.field("run_id", pa.dictionary(pa.int8(), pa.string())))
    run = pa.array([run_id], pa.string())

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in reader:
                indices: pa.Array = pa.array(np.zeros(batch.num_rows, dtype=np.int8))
                ids = pa.DictionaryArray.from_arrays(indices, run)
                yield pa.RecordBatch.from_arrays([ids, *batch.columns], schema=out)
        finally:
            if done is not None:
                done()

    return pa.RecordBatchReader.from_batches(out, batches())


def line_recognition(con: duckdb.DuckDBPyConnection, run_id: str) -> pa.Table:
    """The ``line_recognition`` rows of a built sandbox: how each line was recognised."""
    return line_recognition_reader(con, run_id).read_all()


def line_recognition_reader(con: duckdb.DuckDBPyConnection, run_id: str, *,
                            done: Callable[[], None] | None = None) -> pa.RecordBatchReader:
    """:func:`line_recognition` as a reader of its batches, read from ``con`` as they are
    read (see :func:`line_facts_reader`)."""
    return _streamed(con, _columns_sql(schema.LineRecognition.model_fields), run_id, done)


def line_facts(con: duckdb.DuckDBPyConnection, run_id: str) -> pa.Table:
    """The ``line_facts`` rows of a built sandbox, as an Arrow table the store writes as is."""
    return line_facts_reader(con, run_id).read_all()


def line_facts_reader(con: duckdb.DuckDBPyConnection, run_id: str, *,
                      done: Callable[[], None] | None = None) -> pa.RecordBatchReader:
    """:func:`line_facts` as a reader of its batches, each read from ``con`` as it is read:
    the store writes them as they come (10 M lines: 2.2 GB of Arrow that never exist at
    once). ``done`` (closing the cursor ``con``) is called once they are all read."""
    return _streamed(con, _columns_sql(schema.LineFact.model_fields), run_id, done)


def recognition_summary(con: duckdb.DuckDBPyConnection, largest: int = 5) -> dict[str, Any]:
    """How much of the sandbox's lines the lexicon recognised: lines and money unknown
    (``recognised_by = 'none'``) or model-only, the files with such lines, and the largest
    unrecognised lines."""
    row = con.execute("""
        SELECT count(*),
            count(*) FILTER (WHERE recognised_by = 'none'),
            count(*) FILTER (WHERE recognised_by = 'model'),
            coalesce(sum(abs(line_total_cny)), 0),
            coalesce(sum(abs(line_total_cny)) FILTER (WHERE recognised_by = 'none'), 0),
            coalesce(sum(abs(line_total_cny)) FILTER (WHERE recognised_by = 'model'), 0)
        FROM items""").fetchall()[0]
    lines, unknown, model, money, money_unknown, money_model = row
    top = con.execute(f"""
        SELECT source_file, line_no, item_name, recognised_by, category, model_confidence,
            abs(coalesce(line_total_cny, 0)) AS money_cny
        FROM items WHERE recognised_by <> 'lexicon'
        ORDER BY money_cny DESC, source_file, line_no LIMIT {int(largest)}""").fetchall()
    files = con.execute("""
        SELECT source_file, count(*) AS lines,
            count(*) FILTER (WHERE recognised_by = 'none') AS lines_unknown,
            count(*) FILTER (WHERE recognised_by = 'model') AS lines_model_only,
            coalesce(sum(abs(line_total_cny)) FILTER (WHERE recognised_by <> 'lexicon'), 0)
                / nullif(sum(abs(line_total_cny)), 0) AS share_money_not_lexicon
        FROM items GROUP BY source_file
        HAVING count(*) FILTER (WHERE recognised_by <> 'lexicon') > 0
        ORDER BY share_money_not_lexicon DESC NULLS LAST, source_file""").fetchall()
    file_keys = ("source_file", "lines", "lines_unknown", "lines_model_only",
                 "share_money_not_lexicon")
    keys = ("source_file", "line_no", "item_name", "recognised_by", "category",
            "model_confidence", "money_cny")
    return {
        "lines": int(lines), "lines_unknown": int(unknown), "lines_model_only": int(model),
        "money_cny": float(money), "money_unknown_cny": float(money_unknown),
        "money_model_only_cny": float(money_model),
        "largest_unrecognised": [dict(zip(keys, r, strict=True)) for r in top],
        "files": [dict(zip(file_keys, r, strict=True)) for r in files],
    }
