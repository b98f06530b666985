"""The facts a run stores about its lines: a narrow slice of the sandbox's ``items``.

The report and the exports show these (category, accelerator, cards, price per kW, reference
band, peer median) as the run derived them, read back from the findings database; nothing
downstream re-runs enrich. The columns are those of :class:`iccaudit.core.schema.LineFact`,
each named and typed like the ``items`` column it copies.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from iccaudit.core import schema
from iccaudit.core.duck import fetch_arrow


def line_facts_sql() -> str:
    """The query on a sandbox that gives the ``line_facts`` columns but ``run_id``, one row
    per line of ``items``."""
    fields = schema.LineFact.model_fields
    cols = ", ".join(f'CAST("{name}" AS {schema.sql_type(f.annotation)}) AS "{name}"'
                     for name, f in fields.items() if name != "run_id")
    return f"SELECT {cols} FROM items"


def _with_run_id(table: pa.Table, run_id: str) -> pa.Table:
    indices: pa.Array = pa.array(np.zeros(table.num_rows, dtype=np.int8))
    ids = pa.DictionaryArray.from_arrays(indices, pa.array([run_id], pa.string()))
    return table.add_column(0, "run_id", ids)


def line_recognition(con: duckdb.DuckDBPyConnection, run_id: str) -> pa.Table:
    """The ``line_recognition`` rows of a built sandbox: how each line was recognised."""
    fields = schema.LineRecognition.model_fields
    cols = ", ".join(f'CAST("{name}" AS {schema.sql_type(f.annotation)}) AS "{name}"'
                     for name, f in fields.items() if name != "run_id")
    return _with_run_id(fetch_arrow(con, f"SELECT {cols} FROM items"), run_id)


def line_facts(con: duckdb.DuckDBPyConnection, run_id: str) -> pa.Table:
    """The ``line_facts`` rows of a built sandbox, as an Arrow table the store writes as is.

    ``run_id`` (the run the sandbox's lines belong to) is one dictionary entry rather than a
    string per row: a quarter of the table's memory at any size.
    """
    table = fetch_arrow(con, line_facts_sql())
    indices: pa.Array = pa.array(np.zeros(table.num_rows, dtype=np.int8))
    ids = pa.DictionaryArray.from_arrays(indices,
                                         pa.array([run_id], pa.string()))
    return table.add_column(0, "run_id", ids)
