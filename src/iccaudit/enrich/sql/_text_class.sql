-- _text_class: the recognition of each distinct text (tid): what _items_class says, the
-- brand, and the reference range of the undated bases (kW of liquid cooling, retrofitted
-- server). Accelerator references (server, card, head, module) depend on the line's date:
-- @figures looks them up in ref_price_points.
CREATE TABLE _text_class AS
SELECT c.tid, c.text, c.accel_model, c.accel_vendor, c.is_domestic, c.export_controlled,
    c.export_control_date, c.fp16_dense_tflops, c.tdp_w, c.category, c.ref_basis,
    c.cards_per_unit, c.condition_class, c.condition_conflict, c.cooling_type, c.shell_wording,
    c.spec_says_assembled, c.is_lump_sum, c.capacity_total_wording, c.unit_norm,
    c.recognised_by, c.model_confidence,
    CASE WHEN c.category = 'cooling_retrofit' AND c.is_lump_sum
         THEN try_cast(nullif(regexp_extract(c.text, $servers_count, 1), '')
                       AS DOUBLE) END AS servers_in_text,
    b.brand_canonical,
    -- the tax basis the text states (不含税 before 含税), and a stated VAT rate
    CASE WHEN regexp_matches(c.text, $vat_excluded) THEN false
         WHEN regexp_matches(c.text, $vat_included) THEN true END AS vat_in_text,
    coalesce(@num(c.text, $vat_rate, 1), @num(c.text, $vat_rate_before, 1)) / 100
        AS vat_rate_in_text,
    CASE WHEN c.brand_norm IS NULL THEN 'unknown'
         WHEN b.brand_canonical IS NOT NULL THEN 'mainstream'
         ELSE 'other' END AS brand_tier,
    CASE c.ref_basis
        WHEN 'kw' THEN k.low_per_kw
        WHEN 'retrofit' THEN rp.retrofit_low
    END AS ref_low_cny,
    CASE c.ref_basis
        WHEN 'kw' THEN k.high_per_kw
        WHEN 'retrofit' THEN rp.retrofit_high
    END AS ref_high_cny,
    CASE c.ref_basis
        WHEN 'kw' THEN k.high_per_kw
        WHEN 'retrofit' THEN rp.retrofit_high
    END AS ref_peak_cny,
    CASE c.ref_basis
        WHEN 'kw' THEN k.source WHEN 'retrofit' THEN rp.retrofit_source
    END AS ref_source,
    -- like with like: the accelerator model, else the stated model, else the item name
    coalesce(c.accel_model,
             nullif(regexp_replace(lower(c.model), '[\s\-_/]+', '', 'g'), ''),
             regexp_replace(c.name_core, '[\s\-_/]+', '', 'g')) AS peer_key
FROM _items_class c
LEFT JOIN (
    SELECT d.brand_norm, min(rb.brand) AS brand_canonical
    FROM (SELECT DISTINCT brand_norm FROM _items_text WHERE brand_norm IS NOT NULL) d
    JOIN ref_brands rb ON contains(d.brand_norm, rb.alias)
    GROUP BY d.brand_norm
) b ON b.brand_norm = c.brand_norm
LEFT JOIN ref_cooling k ON c.ref_basis = 'kw' AND k.cooling_type = c.cooling_type
CROSS JOIN (
    SELECT max(num_value) FILTER (WHERE key = 'retrofit_per_server_low') AS retrofit_low,
           max(num_value) FILTER (WHERE key = 'retrofit_per_server_high') AS retrofit_high,
           max(source) FILTER (WHERE key = 'retrofit_per_server_low') AS retrofit_source
    FROM ref_params
) rp
