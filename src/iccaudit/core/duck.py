"""Small DuckDB helpers that every stage may use (results as Arrow or pandas)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


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
