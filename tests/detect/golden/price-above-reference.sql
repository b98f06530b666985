SELECT
  item_id AS "__key",
  CAST(item_id AS TEXT) AS "__group",
  COALESCE(LEAST(GREATEST(CAST((
    LEAST(ratio_to_ref_high / 4, 1)
  ) AS DOUBLE), 0), 1), 1) AS "__score",
  CAST((
    (
      unit_price_cny - ref_high_cny
    ) * quantity
  ) AS DOUBLE) AS "__excess",
  CAST(TO_JSON(
    {'unit_price_cny': unit_price_cny, 'ref_high_cny': ref_high_cny, 'ratio': unit_price_cny / ref_high_cny}
  ) AS TEXT) AS "__evidence",
  CAST(NULL AS TEXT) AS "__tender",
  unit_price_cny AS "f_unit_price_cny",
  unit_price_cny / ref_high_cny AS "f_ratio"
FROM items
WHERE
  (
    category = 'gpu_server' AND unit_price_cny > 2 * ref_high_cny
  )
