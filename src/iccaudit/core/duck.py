"""Small DuckDB helpers that every stage may use (results as Arrow or pandas)."""

from __future__ import annotations

from typing import Any

import duckdb


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """A query's result as an Arrow table (fast and lean; ``.df()`` copies row by row)."""
    rel = con.sql(sql, params=params)
    if hasattr(rel, "to_arrow_table"):  # duckdb >= 1.4
        return rel.to_arrow_table()
    return rel.arrow()  # pragma: no cover - older duckdb


def fetch_frame(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """A query's result as a pandas DataFrame, via Arrow."""
    return fetch_arrow(con, sql, params).to_pandas()
