-- items: the one wide copy of the lines: the caller's rows ({line_columns} of {source}),
-- their figures, the recognition of their text (by tid), the peer statistics and windows (by
-- row position, rid = __row). One statement, its joins in the order written (the caller
-- turns DuckDB's join-order optimiser off for it): the caller's rows probe, the recognition
-- of their texts and the peer statistics and windows are the build sides. The figures are
-- computed again here, by the same SQL as _lines' (@figures), rather than joined from _lines
-- by row position: _lines and its hash table (10 M lines: 2.6 GB) are gone before items is
-- built, which is the memory peak of enrich, and items spills that much less. The rows come
-- out in no particular order; nothing reads items by position.
-- robust_z: (log p - median) / ($robust_z_mad_scale MAD); when MAD is 0 (more than half the
-- peers at one price) fall back to $robust_z_meanad_scale x mean absolute deviation
-- (Iglewicz & Hoaglin's modified z); when both are 0 every peer has the same price and z is
-- 0; NULL below $robust_z_min_peers peers (the line itself included).
CREATE TABLE items AS
SELECT {line_columns},
    l.text, l.accel_model, l.accel_vendor, l.is_domestic, l.export_controlled,
    l.export_control_date, l.fp16_dense_tflops, l.tdp_w, l.category, l.ref_basis,
    l.cards_per_unit, l.condition_class, l.condition_conflict, l.cooling_type, l.shell_wording,
    l.spec_says_assembled, l.is_lump_sum, l.line_total_cny, l.total_diff_cny, l.card_count,
    l.capacity_scope, l.price_per_kw, l.retrofit_servers, l.purchase_date, l.brand_canonical,
    l.brand_tier, l.basis_price_cny, l.ref_low_cny, l.ref_high_cny, l.ref_peak_cny,
    l.ref_source, l.ref_price_date, l.ref_date_basis, l.ref_point, l.ref_as_of,
    l.capacity_from_tender_kw, l.capacity_source, l.vat_factor, l.tax_basis,
    cap.storage_tb, cap.storage_capacity_basis, cap.port_count, cap.port_speed_gbps,
    cap.power_kw, cap.power_kva,
    l.ratio_to_ref_high, l.ratio_to_ref_low, l.line_value_share,
    l.tender_total_cny, l.peer_price_cny, l.peer_basis, l.peer_key,
    l.recognised_by, l.model_confidence,
    CASE WHEN l.export_control_date IS NOT NULL AND l.purchase_date IS NOT NULL
         THEN l.purchase_date >= l.export_control_date END AS after_export_control,
    date_diff('day', l.manufacture_date, l.purchase_date) AS manufacture_age_days,
    s.peer_count,
    s.peer_tender_count,
    s.peer_median,
    l.peer_price_cny / s.peer_median AS ratio_to_peer_median,
    coalesce(s.mainstream_count, 0) AS mainstream_peer_count,
    s.mainstream_median AS mainstream_peer_median,
    l.peer_price_cny / s.mainstream_median AS ratio_to_mainstream_median,
    CASE WHEN s.peer_count IS NULL OR s.peer_count < $robust_z_min_peers THEN NULL
         WHEN s.mad_log > 0
         THEN (ln(l.peer_price_cny) - s.med_log) / ($robust_z_mad_scale * s.mad_log)
         WHEN s.meanad_log > 0
         THEN (ln(l.peer_price_cny) - s.med_log) / ($robust_z_meanad_scale * s.meanad_log)
         ELSE 0.0 END AS robust_z,
    w.peer_median_90d,
    w.peer_count_90d,
    tm.tender_mainstream_median,
    CASE WHEN l.peer_price_cny > 0 THEN coalesce(tm.tender_mainstream_count, 0) END
        AS tender_mainstream_count
FROM @figures({source}, li.__row, {carry_inner}, {carry_outer}) l
LEFT JOIN _peer_stats s
    ON l.peer_price_cny > 0 AND s.category = l.category AND s.peer_basis = l.peer_basis
    AND s.peer_key = l.peer_key
LEFT JOIN _peer_near w ON w.rid = l.rid
LEFT JOIN _text_capacity cap ON cap.tid = l.tid
LEFT JOIN _tender_mainstream tm
    ON l.peer_price_cny > 0 AND tm.tender_id IS NOT DISTINCT FROM l.tender_id
    AND tm.category IS NOT DISTINCT FROM l.category
    AND tm.peer_key IS NOT DISTINCT FROM l.peer_key
    AND tm.peer_basis IS NOT DISTINCT FROM l.peer_basis
