-- _text_class: the recognition of each distinct text (tid): what _items_class says, the
-- brand, and the reference range of its basis. Server references are priced for a server of
-- ref_accelerators.server_cards cards and scale with the line's cards_per_unit; module
-- references for a module of $reference_cards_per_server cards (params.yaml).
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
    CASE WHEN c.brand_norm IS NULL THEN 'unknown'
         WHEN b.brand_canonical IS NOT NULL THEN 'mainstream'
         ELSE 'other' END AS brand_tier,
    CASE c.ref_basis
        WHEN 'server' THEN r.server_low * c.cards_per_unit / r.server_cards
        WHEN 'card' THEN r.card_low
        WHEN 'head' THEN r.head_low
        WHEN 'module' THEN r.module_low * c.cards_per_unit / $reference_cards_per_server
        WHEN 'kw' THEN k.low_per_kw
        WHEN 'retrofit' THEN rp.retrofit_low
    END AS ref_low_cny,
    CASE c.ref_basis
        WHEN 'server' THEN r.server_high * c.cards_per_unit / r.server_cards
        WHEN 'card' THEN r.card_high
        WHEN 'head' THEN r.head_high
        WHEN 'module' THEN r.module_high * c.cards_per_unit / $reference_cards_per_server
        WHEN 'kw' THEN k.high_per_kw
        WHEN 'retrofit' THEN rp.retrofit_high
    END AS ref_high_cny,
    CASE c.ref_basis
        WHEN 'server' THEN r.server_peak * c.cards_per_unit / r.server_cards
        WHEN 'card' THEN r.card_high
        WHEN 'head' THEN r.head_high
        WHEN 'module' THEN r.module_high * c.cards_per_unit / $reference_cards_per_server
        WHEN 'kw' THEN k.high_per_kw
        WHEN 'retrofit' THEN rp.retrofit_high
    END AS ref_peak_cny,
    CASE c.ref_basis
        WHEN 'server' THEN r.server_source WHEN 'card' THEN r.card_source
        WHEN 'head' THEN r.head_source WHEN 'module' THEN r.module_source
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
LEFT JOIN ref_accelerators r ON r.model_id = c.accel_model
LEFT JOIN ref_cooling k ON c.ref_basis = 'kw' AND k.cooling_type = c.cooling_type
CROSS JOIN (
    SELECT max(num_value) FILTER (WHERE key = 'retrofit_per_server_low') AS retrofit_low,
           max(num_value) FILTER (WHERE key = 'retrofit_per_server_high') AS retrofit_high,
           max(source) FILTER (WHERE key = 'retrofit_per_server_low') AS retrofit_source
    FROM ref_params
) rp
