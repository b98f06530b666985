"""Recognition coverage: how much of a run the lexicon understood, per file and per run.

A line is *unknown* when nothing recognised its category (``recognised_by = 'none'``) and
*model-only* when only the learned fallback guessed it (``'model'``); its money is
``quantity x unit_price_cny``. The ``recognition_coverage`` view of the findings database
gives the shares; :func:`gaps` lists the unrecognised wordings by money, so that a rule
author knows which words to add to ``rules/lexicon/``.
"""

from __future__ import annotations

import duckdb
import pandas as pd

#: The view: one row per (run, file) and one per run (``source_file`` NULL, scope 'run').
COVERAGE_VIEW = """
CREATE OR REPLACE VIEW recognition_coverage AS
SELECT run_id,
    CASE WHEN grouping(source_file) = 1 THEN 'run' ELSE 'file' END AS scope,
    source_file,
    count(*) AS lines,
    count(*) FILTER (WHERE recognised_by = 'none') AS lines_unknown,
    count(*) FILTER (WHERE recognised_by = 'model') AS lines_model_only,
    coalesce(sum(money), 0) AS money_cny,
    coalesce(sum(money) FILTER (WHERE recognised_by = 'none'), 0) AS money_unknown_cny,
    coalesce(sum(money) FILTER (WHERE recognised_by = 'model'), 0) AS money_model_only_cny,
    count(*) FILTER (WHERE recognised_by = 'none') / count(*) AS share_lines_unknown,
    count(*) FILTER (WHERE recognised_by = 'model') / count(*) AS share_lines_model_only,
    coalesce(sum(money) FILTER (WHERE recognised_by = 'none'), 0)
        / nullif(sum(money), 0) AS share_money_unknown,
    coalesce(sum(money) FILTER (WHERE recognised_by = 'model'), 0)
        / nullif(sum(money), 0) AS share_money_model_only
FROM (
    SELECT li.run_id, li.source_file, r.recognised_by,
        abs(coalesce(li.quantity * li.unit_price_cny, 0)) AS money
    FROM line_items li
    JOIN line_recognition r ON r.run_id = li.run_id AND r.item_id = li.item_id
)
GROUP BY GROUPING SETS ((run_id, source_file), (run_id))
"""


def has_recognition(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether the run stored how its lines were recognised (runs before the lexicon did not)."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "line_recognition" not in tables:
        return False
    found = con.execute("SELECT count(*) FROM line_recognition WHERE run_id = ?",
                        [run_id]).fetchall()[0][0]
    return bool(found)


def coverage(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """The coverage rows of a run: the run first, then its files by unknown money."""
    select = COVERAGE_VIEW.split(" AS\n", 1)[1]  # the view's query, for a read-only database
    return con.execute(
        f"SELECT * FROM ({select}) WHERE run_id = ? "
        "ORDER BY scope = 'file', money_unknown_cny + money_model_only_cny DESC, source_file",
        [run_id]).df()


def gaps(con: duckdb.DuckDBPyConnection, run_id: str, limit: int = 20,
         lines: bool = False) -> pd.DataFrame:
    """The wordings the lexicon did not recognise (unknown or model-only), by money.

    ``lines=False`` groups identical wordings (item name, model, spec): what to add to the
    lexicon; ``lines=True`` lists the lines themselves, largest first.
    """
    base = """
        SELECT li.source_file, li.line_no, li.item_name, li.model, li.spec,
            r.recognised_by, r.category, r.model_confidence,
            abs(coalesce(li.quantity * li.unit_price_cny, 0)) AS money_cny
        FROM line_items li
        JOIN line_recognition r ON r.run_id = li.run_id AND r.item_id = li.item_id
        WHERE li.run_id = ? AND r.recognised_by <> 'lexicon'"""
    if lines:
        sql = f"SELECT * FROM ({base}) ORDER BY money_cny DESC, source_file, line_no LIMIT ?"
    else:
        sql = f"""
            SELECT item_name, model, spec,
                string_agg(DISTINCT recognised_by, ',' ORDER BY recognised_by) AS recognised_by,
                any_value(category ORDER BY money_cny DESC) AS category,
                max(model_confidence) AS model_confidence,
                count(*) AS lines, count(DISTINCT source_file) AS files,
                sum(money_cny) AS money_cny
            FROM ({base})
            GROUP BY ALL
            ORDER BY money_cny DESC, lines DESC, item_name, model, spec
            LIMIT ?"""
    return con.execute(sql, [run_id, limit]).df()
