"""``iccaudit doctor``: check a findings database against the invariants the tool promises.

Every check is one SQL query returning the offending rows; an empty result means the invariant
holds. Older databases are migrated first (``store.migrate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iccaudit import store
from iccaudit.core import schema


@dataclass(frozen=True)
class Check:
    code: str
    description: str
    sql: str


CHECKS: tuple[Check, ...] = (
    Check(
        "D101",
        "per file, rows_read = line_items + rejects + non_items",
        """SELECT run_id, source_file, rows_read, line_items, rejects, non_items FROM files
           WHERE rows_read <> line_items + rejects + non_items""",
    ),
    Check(
        "D102",
        "files.line_items equals the line_items rows stored for that file",
        """SELECT f.run_id, f.source_file, f.line_items, count(li.item_id) AS stored
           FROM files f LEFT JOIN line_items li USING (run_id, source_file)
           GROUP BY ALL HAVING f.line_items <> count(li.item_id)""",
    ),
    Check(
        "D103",
        "files.rejects equals the rejects rows stored for that file",
        """SELECT f.run_id, f.source_file, f.rejects, count(r.source_row) AS stored
           FROM files f LEFT JOIN rejects r USING (run_id, source_file)
           GROUP BY ALL HAVING f.rejects <> count(r.source_row)""",
    ),
    Check(
        "D104",
        "runs.line_items equals the line_items rows of the run",
        """SELECT r.run_id, r.line_items, count(li.item_id) AS stored
           FROM runs r LEFT JOIN line_items li USING (run_id)
           GROUP BY ALL HAVING r.line_items <> count(li.item_id)""",
    ),
    Check(
        "D105",
        "every finding belongs to a run",
        """SELECT f.run_id, f.finding_id FROM findings f ANTI JOIN runs r USING (run_id)""",
    ),
    Check(
        "D106",
        "every finding that names a line item names one of its run",
        """SELECT f.run_id, f.finding_id, f.item_id FROM findings f
           WHERE f.item_id IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM line_items li
                             WHERE li.run_id = f.run_id AND li.item_id = f.item_id)""",
    ),
    Check(
        "D107",
        "every line item, reject, file, rule run, line fact, recognition and config row "
        "belongs to a run",
        """SELECT 'line_items' AS tbl, run_id FROM line_items ANTI JOIN runs USING (run_id)
           UNION ALL SELECT 'rejects', run_id FROM rejects ANTI JOIN runs USING (run_id)
           UNION ALL SELECT 'files', run_id FROM files ANTI JOIN runs USING (run_id)
           UNION ALL SELECT 'rule_runs', run_id FROM rule_runs ANTI JOIN runs USING (run_id)
           UNION ALL SELECT 'line_facts', run_id FROM line_facts ANTI JOIN runs USING (run_id)
           UNION ALL SELECT 'line_recognition', run_id FROM line_recognition
               ANTI JOIN runs USING (run_id)
           UNION ALL SELECT 'run_config', run_id FROM run_config ANTI JOIN runs USING (run_id)""",
    ),
    Check(
        "D108",
        "finding ids are unique within a run",
        """SELECT run_id, finding_id, count(*) AS n FROM findings
           GROUP BY ALL HAVING count(*) > 1""",
    ),
    Check(
        "D109",
        "severities and mechanisms come from the vocabularies",
        f"""SELECT run_id, finding_id, severity, mechanism FROM findings
            WHERE severity NOT IN ({", ".join(repr(s) for s in schema.SEVERITIES)})
               OR mechanism NOT IN ({", ".join(repr(m) for m in schema.MECHANISMS)})""",
    ),
    Check(
        "D110",
        "a run that stored its configuration stored one line_facts row per line item "
        "(runs from before those tables have neither)",
        """SELECT r.run_id, r.line_items, count(lf.item_id) AS facts
           FROM runs r SEMI JOIN run_config c USING (run_id)
           LEFT JOIN line_facts lf USING (run_id)
           GROUP BY ALL HAVING r.line_items <> count(lf.item_id)""",
    ),
    Check(
        "D111",
        "every finding has a fingerprint, unique within its run",
        """SELECT run_id, fingerprint, count(*) AS n FROM findings
           GROUP BY ALL HAVING fingerprint IS NULL OR count(*) > 1""",
    ),
    Check(
        "D112",
        "every verdict has a known status and names a finding some run raised",
        f"""SELECT v.verdict_id, v.fingerprint, v.status FROM verdicts v
            WHERE v.status NOT IN ({", ".join(repr(s) for s in schema.VERDICT_STATUSES)})
               OR NOT EXISTS (SELECT 1 FROM findings f WHERE f.fingerprint = v.fingerprint)""",
    ),
    Check(
        "D113",
        "a run that stored how its lines were recognised stored one line_recognition row per "
        "line item, each of a line item of the run (runs from before the lexicon have none)",
        """SELECT r.run_id, r.line_items, count(lr.item_id) AS recognised,
               count(lr.item_id) FILTER (WHERE li.item_id IS NULL) AS orphans
           FROM runs r JOIN line_recognition lr USING (run_id)
           LEFT JOIN line_items li ON li.run_id = lr.run_id AND li.item_id = lr.item_id
           GROUP BY ALL
           HAVING r.line_items <> count(DISTINCT lr.item_id) OR r.line_items <> count(*)
               OR count(lr.item_id) FILTER (WHERE li.item_id IS NULL) > 0""",
    ),
)


@dataclass
class Problem:
    code: str
    description: str
    count: int
    example: tuple


def run_doctor(db: Path) -> tuple[list[str], list[Problem]]:
    """Migrate the database if it is older, then run every check. Returns (notes, problems)."""
    notes: list[str] = []
    con = store.connect(db)
    try:
        before = store.schema_version(con)
        if before is None:
            raise store.StoreError(f"{db}: not an iccaudit database (no iccaudit_meta table)")
        if before < schema.SCHEMA_VERSION:
            store.migrate(con)
            notes.append(f"migrated schema {before} -> {schema.SCHEMA_VERSION}")
        else:
            store.ensure_schema(con)
        notes.append(f"schema version {schema.SCHEMA_VERSION}")
        runs = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
        notes.append(f"{runs} run(s)")
        problems = []
        for check in CHECKS:
            rows = con.execute(check.sql).fetchall()
            if rows:
                problems.append(Problem(check.code, check.description, len(rows), rows[0]))
        return notes, problems
    finally:
        con.close()
