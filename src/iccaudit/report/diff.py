"""What changed between two runs: the runs of a database, and their findings side by side.

A finding is matched across runs by its detector and the source line it implicates (file,
sheet, row, tender), not by ``item_id`` or ``finding_id``, which number lines within a run: a
run that reads one more file still matches every line of the files both read. Per matched
line, the severities, the money at risk and the messages are compared; one line per finding
added, removed or changed. Set-at-a-time, in one DuckDB query.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from iccaudit import store
from iccaudit.report.data import open_db, resolve_run

RUNS_SQL = """
SELECT r.run_id, r.started_at, r.tool_version, r.files, r.line_items, r.findings,
       json_extract_string(r.options, '$.rescore_of') AS rescore_of,
       c.sha256 AS config_sha256
FROM runs r
LEFT JOIN run_config c ON c.run_id = r.run_id AND c.kind = 'pack'
WHERE r.status = 'complete'
ORDER BY r.started_at
"""

_PER_LINE = """
SELECT detector, parse_filename(source_file) AS file, source_sheet, source_row, tender_id,
       min(mechanism) AS mechanism,
       min(CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2
                         WHEN 'low' THEN 3 ELSE 4 END) AS rank,
       round(sum(est_excess_cny), 2) AS excess,
       min(message_en) AS message
FROM findings WHERE run_id = ?
GROUP BY ALL
"""

DIFF_SQL = f"""
WITH a AS ({_PER_LINE}), b AS ({_PER_LINE})
SELECT CASE WHEN a.detector IS NULL THEN 'added'
            WHEN b.detector IS NULL THEN 'removed' ELSE 'changed' END AS change,
       coalesce(b.detector, a.detector) AS detector,
       coalesce(b.mechanism, a.mechanism) AS mechanism,
       coalesce(b.tender_id, a.tender_id) AS tender_id,
       coalesce(b.file, a.file) AS file,
       coalesce(b.source_sheet, a.source_sheet) AS source_sheet,
       coalesce(b.source_row, a.source_row) AS source_row,
       ['critical', 'high', 'medium', 'low', 'info'][a.rank + 1] AS severity_a,
       ['critical', 'high', 'medium', 'low', 'info'][b.rank + 1] AS severity_b,
       a.excess AS excess_a, b.excess AS excess_b,
       coalesce(b.message, a.message) AS message
FROM a FULL OUTER JOIN b
  ON a.detector = b.detector AND a.file = b.file AND a.source_row = b.source_row
 AND a.tender_id = b.tender_id AND a.source_sheet IS NOT DISTINCT FROM b.source_sheet
WHERE a.detector IS NULL OR b.detector IS NULL
   OR a.rank <> b.rank OR a.excess IS DISTINCT FROM b.excess
   OR a.message IS DISTINCT FROM b.message
ORDER BY change, detector, file, source_sheet NULLS FIRST, source_row
"""


def list_runs(db: str | Path) -> pd.DataFrame:
    """The complete runs of the database, oldest first, with the hash of their configuration."""
    con = open_db(db)
    try:
        return con.execute(RUNS_SQL).df()
    finally:
        con.close()


def diff_runs(db: str | Path, run_a: str | None = None,
              run_b: str | None = None) -> tuple[str, str, pd.DataFrame]:
    """(run A, run B, one row per finding added, removed or changed from A to B).

    B defaults to the latest run, A to the run before B.
    """
    con = open_db(db)
    try:
        b = resolve_run(con, run_b)
        if run_a is None:
            row = con.execute(
                "SELECT run_id FROM runs WHERE status = 'complete' AND started_at < "
                "(SELECT started_at FROM runs WHERE run_id = ?) "
                "ORDER BY started_at DESC LIMIT 1", [b]).fetchone()
            if row is None:
                raise store.StoreError(f"run {b!r} is the first run of the database: "
                                       "name the two runs to compare")
            a = str(row[0])
        else:
            a = resolve_run(con, run_a)
        return a, b, con.execute(DIFF_SQL, [a, b]).df()
    finally:
        con.close()
