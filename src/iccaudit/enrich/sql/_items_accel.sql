-- _items_accel: the accelerator each text names (an alias of rules/reference/accelerators.yaml
-- as a whole token: $accel_alias, group 1) with its reference specs, and whether the text
-- says the capacity is the line's total.
CREATE VIEW _items_accel AS
SELECT t.*,
    a.model_id AS accel_model,
    r.vendor AS accel_vendor,
    coalesce(r.is_domestic, @says(t.text, $domestic, $domestic_not)) AS is_domestic,
    coalesce(r.export_controlled, false) AS export_controlled,
    r.controlled_from AS export_control_date,
    r.fp16_dense_tflops,
    r.tdp_w,
    CASE
        WHEN @says(t.name_full, $capacity_total, $capacity_total_not)
            OR @says(t.text, $capacity_total, $capacity_total_not)
        THEN true ELSE false END AS capacity_total_wording,
FROM _items_text t
LEFT JOIN (SELECT DISTINCT alias_key, model_id FROM ref_accel_aliases) a
    ON a.alias_key = regexp_replace(regexp_extract(t.text, $accel_alias, 1),
                                    '[\s\-_]+', '', 'g')
LEFT JOIN ref_accelerators r ON r.model_id = a.model_id
