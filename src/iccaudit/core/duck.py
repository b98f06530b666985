"""Small DuckDB helpers that every stage may use (results as Arrow or pandas)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal: quoted, quotes doubled (backslashes literal, as
    standard SQL reads them)."""
    return "'" + text.replace("'", "''") + "'"


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> pa.Table:
    """A query's result as an Arrow table (fast and lean; ``.df()`` copies row by row)."""
    rel = con.sql(sql, params=params)
    table: pa.Table
    if hasattr(rel, "to_arrow_table"):  # duckdb >= 1.4
        table = rel.to_arrow_table()
    else:  # pragma: no cover - older duckdb
        table = rel.arrow()
    return table


def fetch_frame(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> pd.DataFrame:
    """A query's result as a pandas DataFrame, via Arrow."""
    return fetch_arrow(con, sql, params).to_pandas()


_local = threading.local()


def new_duckdb(large_strings: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # no DuckDB bars on the CLI's stderr
    except duckdb.InvalidInputException:
        pass  # in Jupyter without ipywidgets DuckDB refuses to touch the setting at all
    if large_strings:
        # large_string buffers: the type the normaliser works in, so no cast and no copy
        con.execute("SET arrow_large_buffer_size = true")
    return con


def duckdb_connection(large_strings: bool = False) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB connection per thread (and per Arrow string width) for ingest.

    Opening a connection costs about 20 ms: once per sheet that was most of the time of a small
    tender file. It holds no data between calls.
    """
    key = "large" if large_strings else "plain"
    con = getattr(_local, key, None)
    if con is None:
        con = new_duckdb(large_strings)
        setattr(_local, key, con)
    return con
