"""Fixtures of the outlier-model tests: synthetic items rows and an in-memory DuckDB per test."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from iccaudit.detect.models import load_settings
from iccaudit.detect.models.synthetic import synthetic_items


@pytest.fixture(scope="session")
def labelled_items() -> tuple[pd.DataFrame, np.ndarray]:
    """4,000 items-shaped rows with 2 % marked-up lines (label 1) and 1 % cheap lines."""
    return synthetic_items(4000, seed=11)


@pytest.fixture(scope="session")
def settings():
    return load_settings()


def items_db(items: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB holding ``items`` as a table of that name."""
    con = duckdb.connect()
    con.register("_src", items)
    con.execute("CREATE TABLE items AS SELECT * FROM _src")
    con.unregister("_src")
    return con


@pytest.fixture
def fresh_db(labelled_items):
    con = items_db(labelled_items[0])
    yield con
    con.close()
