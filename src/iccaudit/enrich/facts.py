"""The facts a run stores about its lines: a narrow slice of the sandbox's ``items``.

The report and the exports show these (category, accelerator, cards, price per kW, reference
band, peer median) as the run derived them, read back from the findings database; nothing
downstream re-runs enrich. The columns are those of :class:`iccaudit.core.schema.LineFact`,
each named and typed like the ``items`` column it copies.
"""

from __future__ import annotations

from typing import Any

import duckdb

from iccaudit.core import schema
from iccaudit.core.duck import fetch_arrow


def line_facts_sql() -> str:
    """The query on a sandbox that gives one ``line_facts`` row per line of ``items``."""
    fields = schema.LineFact.model_fields
    cols = ", ".join(f'CAST("{name}" AS {schema.sql_type(f.annotation)}) AS "{name}"'
                     for name, f in fields.items())
    return f"SELECT {cols} FROM items"


def line_facts(con: duckdb.DuckDBPyConnection) -> Any:
    """The ``line_facts`` rows of a built sandbox, as an Arrow table (the store writes it
    as it is)."""
    return fetch_arrow(con, line_facts_sql())
