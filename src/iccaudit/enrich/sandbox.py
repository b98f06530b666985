"""Build the sandbox: the run's lines + reference tables + views, then lock it down."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from iccaudit.core import schema
from iccaudit.enrich.reference import Reference, load_reference, load_reference_tables
from iccaudit.enrich.views import view_statements

_SOURCE = "_incoming_line_items"
#: The name a statement creates.
_MADE = re.compile(r"\s*CREATE (?:TABLE|VIEW) (\w+)")


def _typed_source(con: duckdb.DuckDBPyConnection, line_items: Any) -> str:
    """Register the caller's rows and return a FROM item giving them typed by the schema.

    The rows are not copied into a table of their own: enrich reads the few columns it
    computes on, and ``items`` (the one wide copy) reads them all; ``line_items`` is then a
    view of ``items``.
    """
    cols = schema.columns("line_items")
    # a pandas frame or an Arrow table (the pipeline passes Arrow: a fraction of the memory)
    is_arrow = hasattr(line_items, "column_names")
    names = list(line_items.column_names if is_arrow else line_items.columns)
    missing = [c for c in cols if c not in names]
    if missing:
        raise ValueError(f"line_items frame lacks columns {missing}")
    types = {name: schema.sql_type(f.annotation)
             for name, f in schema.LineItem.model_fields.items()}
    # raw held as the cells (a large file's ingest): its JSON text is made here, and only
    # when something reads it
    cells = isinstance(line_items, pa.Table) and schema.raw_is_cells(line_items.schema)
    select = ", ".join(f'{schema.RAW_CELLS_AS_JSON} AS "raw"' if c == "raw" and cells
                       else f'CAST("{c}" AS {types[c]}) AS "{c}"' for c in cols)
    # __row: each row's position, by which enrich joins the 90-day window back to the rows
    if hasattr(line_items, "sql"):
        # rows in a Parquet file (store.ParquetRows, an out-of-core run): DuckDB's own reader
        # streams them within its memory limit; scanning the Arrow dataset took 3x the time
        # and memory outside the limit. Read while building, before external access is off.
        return f"(SELECT {select}, __row FROM {line_items.sql(position='__row')})"
    import numpy as np

    rows = np.arange(len(line_items), dtype="int64")
    if is_arrow:
        con.register(_SOURCE, line_items.select(cols).append_column("__row", pa.array(rows)))
    else:
        con.register(_SOURCE, line_items[cols].assign(__row=rows))
    return f"(SELECT {select}, __row FROM {_SOURCE})"


def _check_rows(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> None:
    """The schema's NOT NULL columns (of ``columns``) hold values and item_id is unique
    (findings point at lines by it)."""
    required = [name for name, f in schema.LineItem.model_fields.items()
                if f.is_required() and not schema._is_optional(f.annotation) and name in columns]
    counts = ", ".join(f'count(*) FILTER (WHERE "{c}" IS NULL)' for c in required)
    row = con.execute(f"SELECT count(*) - count(DISTINCT item_id), {counts} "
                      f"FROM {table}").fetchall()[0]
    if row[0]:
        raise ValueError(f"line_items: item_id is not unique ({row[0]:,} repeated row(s))")
    for name, nulls in zip(required, row[1:], strict=True):
        if nulls:
            raise ValueError(f"line_items: column {name!r} is empty in {nulls:,} row(s)")


def _connect(database: Path | None, memory_limit: str | None,
             temp_directory: Path | None = None) -> duckdb.DuckDBPyConnection:
    config = {"memory_limit": memory_limit} if memory_limit else {}
    if temp_directory is not None:
        config["temp_directory"] = str(temp_directory)
    if database is None:
        return duckdb.connect(":memory:", config=config)
    path = Path(database)
    if path.exists() and path.stat().st_size > 0:
        # a findings database passed by mistake would get the sandbox's tables written into it
        raise ValueError(f"{path}: the sandbox needs a new (or empty) database file")
    if path.exists():
        path.unlink()  # an empty file (tempfile.mkstemp) is not a DuckDB database
    # spilled blocks go beside the database file (DuckDB's default <database>.tmp), which
    # DuckDB removes on close
    return duckdb.connect(str(path), config=config)


def build_sandbox(
    line_items: pd.DataFrame | pa.Table,
    reference_dir: Path,
    *,
    reference: Reference | None = None,
    database: Path | None = None,
    memory_limit: str | None = None,
    temp_directory: Path | None = None,
    raw: bool = True,
    on_built: Callable[[str, duckdb.DuckDBPyConnection], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with this run's lines, the reference book and the views.

    Parameters
    ----------
    line_items
        A pandas DataFrame or Arrow table with every column of
        :class:`iccaudit.core.schema.LineItem` (including ``run_id`` and a unique ``item_id``);
        every column is cast to the schema's type, so types are exact even for an empty frame.
    reference_dir
        ``rules/reference/`` (YAML); ignored when ``reference`` is given.
    reference
        An already loaded reference book (tests, notebooks).
    database
        A new database file for the sandbox (the caller deletes it after closing the
        connection): with ``memory_limit`` DuckDB then spills to disk instead of running out
        of memory on batches of tens of millions of lines. Default: in memory.
    memory_limit
        DuckDB's ``memory_limit`` (``"4GB"``), set before the configuration is locked.
    temp_directory
        Where DuckDB spills beyond the limit. An in-memory sandbox with a memory limit and a
        temporary directory spills too, and skips the checkpoints a database file makes
        (10 M lines: 84 s instead of 95 s to build); the out-of-core pipeline uses that.
    raw
        Keep each line's ``raw`` JSON in ``items`` and ``line_items``. The pipeline leaves it
        out when no rule of the run reads it: it is the widest column (a third of the bytes
        of 1 M generated lines) and nothing else in the sandbox uses it.
    on_built
        Called with the name of each table or view once it is built, and the connection: a
        caller may start reading a finished view (on a cursor of its own, in a thread) while
        the others are built. The pipeline starts its models once ``items`` is there.

    Returns
    -------
    duckdb.DuckDBPyConnection
        With ``enable_external_access = false`` and ``lock_configuration = true``: the
        connection can read no file and its settings cannot be changed back. Holds the
        public views of :mod:`iccaudit.enrich.dictionary` (materialised as tables) and
        ``line_items`` (a view of ``items``' first columns).

    Raises
    ------
    iccaudit.enrich.ReferenceError
        A reference file is invalid (one line with file:line).
    ValueError
        ``line_items`` lacks a column, repeats an ``item_id`` or leaves a required column
        empty; ``database`` is an existing, non-empty file.
    """
    ref = reference if reference is not None else load_reference(Path(reference_dir))
    con = _connect(database, memory_limit, temp_directory)
    try:
        # every step joins by keys and positions, none relies on the order rows are stored
        # in: DuckDB may then write its tables in parallel
        con.execute("SET preserve_insertion_order = false")
        source = _typed_source(con, line_items)
        try:
            load_reference_tables(con, ref)
            columns = [c for c in schema.columns("line_items") if raw or c != "raw"]
            for statement in view_statements(ref, source, columns):
                con.execute(statement)
                if on_built is not None and (made := _MADE.match(statement)):
                    on_built(made.group(1), con)
        finally:
            con.unregister(_SOURCE)
        # on the built table, not the source: a Parquet source would be read once more
        _check_rows(con, "items", columns)
        try:
            con.execute("SET enable_progress_bar = false")  # no DuckDB bars on the CLI's stderr
        except duckdb.InvalidInputException:
            pass  # in Jupyter without ipywidgets DuckDB refuses to touch the setting at all
        con.execute("SET preserve_insertion_order = true")  # readers get DuckDB's default
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con
