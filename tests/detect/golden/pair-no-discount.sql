SELECT
  item_ids AS "__key",
  ARRAY_TO_STRING(LIST_SORT(item_ids), ',') AS "__group",
  CAST(1 AS DOUBLE) AS "__score",
  CAST((
    pair_price_cny - 0.93 * ref_cny
  ) AS DOUBLE) AS "__excess",
  CAST(TO_JSON({'pair_price_cny': pair_price_cny, 'ref_cny': ref_cny}) AS TEXT) AS "__evidence",
  CAST(NULL AS TEXT) AS "__tender",
  pair_price_cny AS "f_pair_price_cny"
FROM tender_pairs
WHERE
  (
    pair_price_cny >= 0.95 * ref_cny
  )
