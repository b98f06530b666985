"""Build the sandbox: line_items + reference tables + views, then lock it down."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

from iccaudit import schema
from iccaudit.enrich.reference import Reference, load_reference, load_reference_tables
from iccaudit.enrich.views import view_statements


def _insert_line_items(con: duckdb.DuckDBPyConnection, line_items: Any) -> None:
    cols = schema.columns("line_items")
    # a pandas frame or an Arrow table (the pipeline passes Arrow: a fraction of the memory)
    is_arrow = hasattr(line_items, "column_names")
    names = list(line_items.column_names if is_arrow else line_items.columns)
    missing = [c for c in cols if c not in names]
    if missing:
        raise ValueError(f"line_items frame lacks columns {missing}")
    con.execute(schema.ddl("line_items"))
    if len(line_items) == 0:
        return
    types = {name: schema.sql_type(f.annotation)
             for name, f in schema.LineItem.model_fields.items()}
    con.register("_incoming_line_items",
                 line_items.select(cols) if is_arrow else line_items[cols])
    try:
        select = ", ".join(f'CAST("{c}" AS {types[c]})' for c in cols)
        con.execute(f"INSERT INTO line_items SELECT {select} FROM _incoming_line_items")
    finally:
        con.unregister("_incoming_line_items")


def build_sandbox(
    line_items: pd.DataFrame | pa.Table,
    reference_dir: Path,
    *,
    reference: Reference | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with this run's lines, the reference book and the views.

    Parameters
    ----------
    line_items
        A pandas DataFrame or Arrow table with every column of
        :class:`iccaudit.schema.LineItem` (including ``run_id`` and ``item_id``); the table is
        created from the schema DDL, so types are exact even for an empty frame.
    reference_dir
        ``rules/reference/`` (YAML); ignored when ``reference`` is given.
    reference
        An already loaded reference book (tests, notebooks).

    Returns
    -------
    duckdb.DuckDBPyConnection
        With ``enable_external_access = false`` and ``lock_configuration = true``: the
        connection can read no file and its settings cannot be changed back.

    Raises
    ------
    iccaudit.enrich.ReferenceError
        A reference file is invalid (one line with file:line).
    """
    ref = reference if reference is not None else load_reference(Path(reference_dir))
    con = duckdb.connect(":memory:")
    try:
        _insert_line_items(con, line_items)
        load_reference_tables(con, ref)
        for statement in view_statements(ref):
            con.execute(statement)
        try:
            con.execute("SET enable_progress_bar = false")  # no DuckDB bars on the CLI's stderr
        except duckdb.InvalidInputException:
            pass  # in Jupyter without ipywidgets DuckDB refuses to touch the setting at all
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con
