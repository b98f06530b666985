SELECT
  NULL AS "__key",
  tender_id AS "__group",
  CAST(1 AS DOUBLE) AS "__score",
  CAST(NULL AS DOUBLE) AS "__excess",
  '{}' AS "__evidence",
  tender_id AS "__tender",
  claimed_pflops AS "f_claimed_pflops",
  actual_pflops AS "f_actual_pflops"
FROM tender_compute
WHERE
  (
    NOT claimed_pflops IS NULL AND actual_pflops > 0
  )
  AND (
    claimed_pflops > 1.5 * actual_pflops
  )
