"""The fingerprints of findings and the views over the stored runs.

Fingerprint: a finding line across runs. ``findings.fingerprint`` is the first 16 hex digits
of the SHA-256 of a JSON array of the tender id, the detector, its ``rule_version``, the
implicated line's content (item name, brand, model, spec, quantity, unit, unit price, line
total: what the line says, not where it sits) and the occurrence of that same content in the
run (1 unless a tender bills the very same line twice). The file path, the row, the run id
and the item id are left out, so rescoring, reordering rows or moving the file keeps it; a
change of the rule's logic (``rule_version``) or of the line's content changes it.

Views (recreated by :func:`create_views` whenever the schema is ensured or a suppression is
added): ``latest_run``, ``current_verdicts`` (the latest verdict per fingerprint),
``finding_lines`` (every finding with its line and current verdict), ``finding_suppressions``
(which suppression covers which finding), ``findings_reviewed`` (``finding_lines`` with
``suppressed_by`` and ``dismissed``) and ``latest_findings`` (that, for the latest run).
"""

from __future__ import annotations

import duckdb

from iccaudit.core.fingerprint import content_sql, fingerprint_sql
from iccaudit.store.conditions import suppressions_view_sql

#: Fills ``fingerprint`` for every finding that has none (the findings of a database migrated
#: from schema 1; a run's own findings arrive with theirs). Set-at-a-time, one statement.
FINGERPRINT_SQL = f"""
UPDATE findings SET fingerprint = fp.fingerprint
FROM (
  SELECT run_id, finding_id,
         {fingerprint_sql("content", "source_file", "source_sheet", "source_row", "finding_id",
                          partition="run_id")} AS fingerprint
  FROM (
    SELECT f.run_id, f.finding_id, f.source_file, f.source_sheet, f.source_row,
           {content_sql("f.tender_id", "f.detector", "f.rule_version", "li")} AS content
    FROM findings f
    LEFT JOIN line_items li ON li.run_id = f.run_id AND li.item_id = f.item_id
    WHERE f.fingerprint IS NULL
  )
) fp
WHERE findings.run_id = fp.run_id AND findings.finding_id = fp.finding_id
"""

#: Columns of the implicated line that ``finding_lines`` adds to a finding.
LINE_COLUMNS = ("supplier", "item_name", "brand", "model", "spec", "quantity", "unit",
                "unit_price_cny", "total_cny")

STATIC_VIEWS = {
    "latest_run": """
SELECT * FROM runs WHERE status = 'complete' ORDER BY started_at DESC LIMIT 1""",
    "current_verdicts": """
SELECT * FROM verdicts
QUALIFY row_number() OVER (PARTITION BY fingerprint ORDER BY verdict_id DESC) = 1""",
    "finding_lines": f"""
SELECT f.*, {", ".join(f"li.{c}" for c in LINE_COLUMNS)},
       v.status AS verdict, v.reason AS verdict_reason, v.reviewer AS verdict_by,
       v.made_at AS verdict_at, v.run_id AS verdict_run_id
FROM findings f
LEFT JOIN line_items li ON li.run_id = f.run_id AND li.item_id = f.item_id
LEFT JOIN current_verdicts v ON v.fingerprint = f.fingerprint""",
}

DERIVED_VIEWS = {
    "findings_reviewed": """
SELECT fl.*, s.suppressed_by,
       coalesce(fl.verdict = 'dismissed', false) OR s.suppressed_by IS NOT NULL AS dismissed
FROM finding_lines fl
LEFT JOIN (SELECT run_id, finding_id, min(suppression_id) AS suppressed_by
           FROM finding_suppressions GROUP BY ALL) s USING (run_id, finding_id)""",
    "latest_findings": """
SELECT fr.* FROM findings_reviewed fr SEMI JOIN latest_run USING (run_id)""",
}

VIEWS = (*STATIC_VIEWS, "finding_suppressions", *DERIVED_VIEWS)


def fill_fingerprints(con: duckdb.DuckDBPyConnection) -> None:
    """Compute the fingerprint of every finding that has none."""
    con.execute(FINGERPRINT_SQL)


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every view; the suppressions' one from the rows of ``suppressions``."""
    for name, sql in STATIC_VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    con.execute(f"CREATE OR REPLACE VIEW finding_suppressions AS {suppressions_view_sql(con)}")
    for name, sql in DERIVED_VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
