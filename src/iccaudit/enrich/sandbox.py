"""Build the sandbox: the run's lines + reference tables + views, then lock it down."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Protocol

import duckdb
import pandas as pd
import pyarrow as pa

from iccaudit.core import schema
from iccaudit.enrich.fallback import fallback_step, normalise_step
from iccaudit.enrich.lexicon import Lexicon
from iccaudit.enrich.lexicon_check import load_lexicon
from iccaudit.enrich.reference import Reference, load_reference, load_reference_tables
from iccaudit.enrich.views import PYTHON_STEPS, default_lexicon, view_statements

_SOURCE = "_incoming_line_items"
#: The name a statement creates.
_MADE = re.compile(r"\s*CREATE (?:TEMP )?(?:TABLE|VIEW) (\w+)")


class RowsFile(Protocol):
    """Line items in a file DuckDB reads itself (``store.ParquetRows``, an out-of-core run)."""

    column_names: list[str]

    def sql(self, position: str | None = None) -> str: ...

    def __len__(self) -> int: ...


#: What a sandbox is built from: the lines in memory (pandas or Arrow) or in a file.
LineSource = pd.DataFrame | pa.Table | RowsFile


def _typed_source(con: duckdb.DuckDBPyConnection, line_items: LineSource) -> str:
    """Register the caller's rows and return a FROM item giving them typed by the schema.

    The rows are not copied into a table of their own: enrich reads the few columns it
    computes on, and ``items`` (the one wide copy) reads them all; ``line_items`` is then a
    view of ``items``.
    """
    cols = schema.columns("line_items")
    # a pandas frame or an Arrow table (the pipeline passes Arrow: a fraction of the memory)
    names = list(line_items.columns if isinstance(line_items, pd.DataFrame)
                 else line_items.column_names)
    # a column with a default (added to the schema later, e.g. currency) may be absent: NULL
    fields = schema.LineItem.model_fields
    absent = {c for c in cols if c not in names and not fields[c].is_required()}
    missing = [c for c in cols if c not in names and c not in absent]
    if missing:
        raise ValueError(f"line_items frame lacks columns {missing}")
    types = {name: schema.sql_type(f.annotation)
             for name, f in schema.LineItem.model_fields.items()}
    # raw held as the cells (a large file's ingest): its JSON text is made here, and only
    # when something reads it
    cells = isinstance(line_items, pa.Table) and schema.raw_is_cells(line_items.schema)
    select = ", ".join(f'{schema.RAW_CELLS_AS_JSON} AS "raw"' if c == "raw" and cells
                       else f'CAST(NULL AS {types[c]}) AS "{c}"' if c in absent
                       else f'CAST("{c}" AS {types[c]}) AS "{c}"' for c in cols)
    present = [c for c in cols if c not in absent]
    # __row: each row's position, by which enrich joins the 90-day window back to the rows
    if not isinstance(line_items, pd.DataFrame | pa.Table):
        # rows in a Parquet file (store.ParquetRows, an out-of-core run): DuckDB's own reader
        # streams them within its memory limit; scanning the Arrow dataset took 3x the time
        # and memory outside the limit. Read while building, before external access is off.
        return f"(SELECT {select}, __row FROM {line_items.sql(position='__row')})"
    import numpy as np

    rows = np.arange(len(line_items), dtype="int64")
    if isinstance(line_items, pa.Table):
        con.register(_SOURCE, line_items.select(present).append_column("__row",
                                                                       pa.array(rows)))
    else:
        con.register(_SOURCE, line_items[present].assign(__row=rows))
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
    config: dict[str, str | bool | int | float | list[str]] = (
        {"memory_limit": memory_limit} if memory_limit else {})
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
    line_items: LineSource,
    reference_dir: Path,
    *,
    reference: Reference | None = None,
    database: Path | None = None,
    memory_limit: str | None = None,
    temp_directory: Path | None = None,
    raw: bool = True,
    price_date: dt.date | None = None,
    lexicon: Lexicon | None = None,
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
        Given, the sandbox is out of core: the internal steps' tables are kept in its
        database, not made temporary (``temp_steps`` of
        :func:`~iccaudit.enrich.views.view_statements`).
    raw
        Keep each line's ``raw`` JSON in ``items`` and ``line_items``. The pipeline leaves it
        out when no rule of the run reads it: it is the widest column (a third of the bytes
        of 1 M generated lines) and nothing else in the sandbox uses it.
    price_date
        The date lines without one (no line date, no dated line in their tender) are priced
        at against the dated reference (``prices.yaml``). Default: each series' last point.
    lexicon
        The recognition lexicon; default: ``<reference_dir>/../lexicon`` when that folder
        exists, else the bundled pack's (:func:`iccaudit.core.paths.lexicon_dir`).

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
    iccaudit.enrich.LexiconError
        The lexicon is invalid (every problem with file:line).
    ValueError
        ``line_items`` lacks a column, repeats an ``item_id`` or leaves a required column
        empty; ``database`` is an existing, non-empty file.
    """
    sandbox = Sandbox(line_items, reference_dir, reference=reference, database=database,
                      memory_limit=memory_limit, temp_directory=temp_directory, raw=raw,
                      price_date=price_date, lexicon=lexicon)
    return sandbox.finish()


class Sandbox:
    """:func:`build_sandbox` in steps, for a caller that reads a table while the rest is built.

    ``Sandbox(...)`` loads the reference book and registers the lines; :meth:`build_until`
    builds the views up to one of them (the pipeline starts its models once ``items`` is
    there, on a cursor of :attr:`con` in a thread); :meth:`finish` builds the rest, checks the
    lines and locks the connection down. A sandbox that fails closes its connection.
    """

    def __init__(self, line_items: LineSource, reference_dir: Path, *,
                 reference: Reference | None = None, database: Path | None = None,
                 memory_limit: str | None = None, temp_directory: Path | None = None,
                 raw: bool = True, price_date: dt.date | None = None,
                 lexicon: Lexicon | None = None) -> None:
        ref = reference if reference is not None else load_reference(Path(reference_dir))
        if lexicon is None:
            beside = Path(reference_dir).parent / "lexicon"
            lexicon = load_lexicon(beside) if beside.is_dir() else default_lexicon()
        self.lexicon = lexicon
        self.con = _connect(database, memory_limit, temp_directory)
        self.built: list[str] = []
        try:
            # every step joins by keys and positions, none relies on the order rows are
            # stored in: DuckDB may then write its tables in parallel
            self.con.execute("SET preserve_insertion_order = false")
            source = _typed_source(self.con, line_items)
            load_reference_tables(self.con, ref)
            self._columns = [c for c in schema.columns("line_items") if raw or c != "raw"]
            self._statements = list(view_statements(
                ref, source, self._columns, price_date=price_date, lexicon=lexicon,
                temp_steps=temp_directory is None))
        except BaseException:
            self.close()
            raise

    def build_until(self, name: str) -> duckdb.DuckDBPyConnection:
        """Build the views up to and including ``name`` (a no-op once it is built)."""
        try:
            while name not in self.built and self._statements:
                self._step()
        except BaseException:
            self.close()
            raise
        if name not in self.built:
            raise ValueError(f"the sandbox builds no table or view {name!r}")
        return self.con

    def finish(self) -> duckdb.DuckDBPyConnection:
        """Build what is left, check the lines, and close the connection to the outside."""
        con = self.con
        try:
            while self._statements:
                self._step()
            con.unregister(_SOURCE)
            # on the built table, not the source: a Parquet source would be read once more
            _check_rows(con, "items", self._columns)
            try:
                con.execute("SET enable_progress_bar = false")  # no DuckDB bars on stderr
            except duckdb.InvalidInputException:
                pass  # in Jupyter without ipywidgets DuckDB refuses to touch the setting
            con.execute("SET preserve_insertion_order = true")  # readers get the default
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            self.close()
            raise
        return con

    def _step(self) -> None:
        """Run the next statement; a table or view it creates goes into :attr:`built`."""
        statement = self._statements.pop(0)
        self.con.execute(statement)
        if made := _MADE.match(statement):
            self.built.append(made.group(1))
            step = PYTHON_STEPS.get(made.group(1))
            if step == "normalise":
                self.built += normalise_step(self.con, self.lexicon)
            elif step == "fallback":
                self.built += fallback_step(self.con, self.lexicon)

    def close(self) -> None:
        self.con.close()
