"""What reviewers' verdicts say about the detectors: precision per rule and per mechanism
with 95 % Wilson intervals, and the rules reviewers dismiss most.

A fingerprint counts once, by its current verdict, whatever the number of runs it appeared
in; ``needs-info`` is not a judgement and counts in neither side. Everything is one SQL
query over the stored findings and verdicts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from iccaudit.report import data as rdata

#: z of a two-sided 95 % interval.
Z95 = 1.959963984540054

#: One row per reviewed fingerprint, with its detector and mechanism (from the latest run
#: that raised it).
_REVIEWED = """
reviewed AS (
  SELECT v.fingerprint, v.status, f.detector, f.kind, f.mechanism
  FROM current_verdicts v
  JOIN (SELECT f.fingerprint, f.detector, f.kind, f.mechanism FROM findings f
        JOIN runs r USING (run_id)
        QUALIFY row_number() OVER (PARTITION BY f.fingerprint
                                   ORDER BY r.started_at DESC, f.finding_id) = 1) f
    USING (fingerprint)
)"""

_PRECISION = """
WITH {reviewed},
counts AS (
  SELECT {key} AS key, {extra}
         count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
         count(*) FILTER (WHERE status = 'dismissed') AS dismissed,
         count(*) FILTER (WHERE status = 'needs-info') AS needs_info
  FROM reviewed GROUP BY ALL
),
p AS (
  SELECT *, confirmed + dismissed AS n,
         CASE WHEN confirmed + dismissed > 0
              THEN confirmed / (confirmed + dismissed) END AS precision
  FROM counts
)
SELECT *,
  CASE WHEN n > 0 THEN (precision + $z * $z / (2 * n)
       - $z * sqrt(precision * (1 - precision) / n + $z * $z / (4 * n * n)))
       / (1 + $z * $z / n) END AS ci_low,
  CASE WHEN n > 0 THEN (precision + $z * $z / (2 * n)
       + $z * sqrt(precision * (1 - precision) / n + $z * $z / (4 * n * n)))
       / (1 + $z * $z / n) END AS ci_high
FROM p
ORDER BY n DESC, key
"""


def precision(db: str | Path) -> dict[str, pd.DataFrame]:
    """Precision from reviewed findings: ``rules`` (per detector), ``mechanisms`` and
    ``overall``; columns key, confirmed, dismissed, needs_info, n, precision, ci_low,
    ci_high (a rule's frame also has kind and mechanism)."""
    con = rdata.open_db(db)
    try:
        out = {}
        for name, key, extra in (("rules", "detector", ("any_value(kind) AS kind, "
                                  "any_value(mechanism) AS mechanism,")),
                                 ("mechanisms", "mechanism", ""), ("overall", "'all'", "")):
            sql = _PRECISION.format(reviewed=_REVIEWED, key=key, extra=extra)
            out[name] = con.execute(sql, {"z": Z95}).df()
        return out
    finally:
        con.close()


def dismissal_stats(db: str | Path, threshold: float = 0.5,
                    min_reviewed: int = 3) -> pd.DataFrame:
    """Per rule: reviewed findings, dismissed share, suppressions; only rules with at least
    ``min_reviewed`` judged findings whose dismissed share exceeds ``threshold``."""
    con = rdata.open_db(db)
    try:
        return con.execute(f"""
            WITH {_REVIEWED},
            s AS (SELECT detector, count(*) AS suppressions FROM suppressions GROUP BY ALL)
            SELECT r.detector, any_value(r.kind) AS kind, any_value(r.mechanism) AS mechanism,
                   count(*) FILTER (WHERE status IN ('confirmed', 'dismissed')) AS reviewed,
                   count(*) FILTER (WHERE status = 'dismissed') AS dismissed,
                   dismissed / reviewed AS dismissed_share,
                   coalesce(any_value(s.suppressions), 0) AS suppressions
            FROM reviewed r LEFT JOIN s USING (detector)
            GROUP BY r.detector
            HAVING reviewed >= $min AND dismissed_share > $threshold
            ORDER BY dismissed_share DESC, reviewed DESC, r.detector""",
                           {"min": int(min_reviewed), "threshold": float(threshold)}).df()
    finally:
        con.close()
