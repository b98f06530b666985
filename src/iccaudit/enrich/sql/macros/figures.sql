-- @figures(rows, rid, carry_inner, carry_outer)
-- A subquery of each row's figures: ``rows`` (aliased li) are line items, ``rid`` their
-- position; ``carry_inner`` and ``carry_outer`` are columns carried beside the figures (each
-- followed by a comma, or empty): of the row (li.) or of its text's recognition (c.), those
-- the inner SELECT does not make, and those the outer one does not make. The one definition
-- of the figures: _lines and items compute them alike.
(
SELECT {carry_outer}f.rid, f.tid, f.tender_id, f.category, f.peer_key,
    f.brand_tier, f.line_total_cny, f.total_diff_cny, f.card_count, f.capacity_scope,
    f.price_per_kw, f.retrofit_servers, f.purchase_date, f.basis_price_cny,
    f.ref_price_date, f.ref_date_basis, f.ref_point, f.ref_as_of, f.capacity_from_tender_kw,
    f.capacity_source, f.vat_factor, f.tax_basis,
    f.basis_price_cny / f.ref_high_cny AS ratio_to_ref_high,
    f.basis_price_cny / f.ref_low_cny AS ratio_to_ref_low,
    f.line_total_cny / nullif(f.tender_total_cny, 0) AS line_value_share,
    f.tender_total_cny,
    CASE WHEN f.is_lump_sum THEN NULL
         WHEN f.basis_price_cny IS NOT NULL THEN f.basis_price_cny
         WHEN f.ref_basis IN ('kw', 'retrofit') THEN NULL
         ELSE f.unit_price_cny * f.vat_factor END AS peer_price_cny,
    CASE WHEN f.is_lump_sum THEN NULL
         WHEN f.basis_price_cny IS NOT NULL THEN f.ref_basis
         WHEN f.ref_basis IN ('kw', 'retrofit') THEN NULL
         ELSE 'unit:' || coalesce(f.unit_norm, '') END AS peer_basis
FROM (
    SELECT p.*,
        CASE p.ref_basis
            WHEN 'kw' THEN p.price_per_kw
            WHEN 'retrofit' THEN CASE WHEN p.retrofit_servers > 0
                                      THEN p.line_total_cny / p.retrofit_servers END
            WHEN 'server' THEN CASE WHEN NOT p.is_lump_sum THEN p.unit_price_cny END
            WHEN 'card' THEN CASE WHEN NOT p.is_lump_sum THEN p.unit_price_cny END
            WHEN 'head' THEN CASE WHEN NOT p.is_lump_sum THEN p.unit_price_cny END
            WHEN 'module' THEN CASE WHEN NOT p.is_lump_sum THEN p.unit_price_cny END
        END * CASE WHEN p.ref_basis IN ('kw') THEN 1 ELSE p.vat_factor END AS basis_price_cny,
        CASE WHEN p.ref_point IS NOT NULL THEN
            '¥' || format('{:,.0f}', p.ref_low_cny) || '–' || format('{:,.0f}', p.ref_high_cny)
            || ' as of ' || coalesce(strftime(p.ref_price_date, '%Y-%m-%d'), 'the latest point')
            || ' (' || p.ref_date_basis || '; point ' || p.ref_point || ', source '
            || p.ref_source || ')'
        END AS ref_as_of
    FROM (
        SELECT {carry_inner}{rid} AS rid, c.tid, li.tender_id,
            li.unit_price_cny, c.category,
            -- prices in another currency than yuan: peers in that currency only, and no
            -- reference price (the book is in yuan)
            CASE WHEN coalesce(li.currency, 'CNY') = 'CNY' THEN c.peer_key
                 ELSE c.peer_key || ' ' || li.currency END AS peer_key,
            c.brand_tier, c.ref_basis, c.is_lump_sum, c.unit_norm,
            -- accelerator references as of the line's date (ref_price_points; prices.yaml),
            -- scaled from the priced configuration's cards to the line's; cooling and
            -- retrofit references are undated (_text_class)
            CASE WHEN coalesce(li.currency, 'CNY') <> 'CNY' THEN NULL
                 WHEN rp.model_id IS NULL THEN c.ref_low_cny
                 ELSE @at_cards(@dated(low, coalesce(li.date, td.first_date,
                                                        $default_price_date)), c.cards_per_unit)
            END AS ref_low_cny,
            CASE WHEN coalesce(li.currency, 'CNY') <> 'CNY' THEN NULL
                 WHEN rp.model_id IS NULL THEN c.ref_high_cny
                 ELSE @at_cards(@dated(high, coalesce(li.date, td.first_date,
                                                        $default_price_date)), c.cards_per_unit)
            END AS ref_high_cny,
            CASE WHEN coalesce(li.currency, 'CNY') <> 'CNY' THEN NULL
                 WHEN rp.model_id IS NULL THEN c.ref_peak_cny
                 ELSE @at_cards(rp.series_peak, c.cards_per_unit)
            END AS ref_peak_cny,
            coalesce(rp.source, c.ref_source) AS ref_source,
            CASE WHEN rp.model_id IS NOT NULL
                 THEN coalesce(li.date, td.first_date,
                               CASE WHEN $price_date_given THEN $default_price_date END)
            END AS ref_price_date,
            CASE WHEN rp.model_id IS NULL THEN NULL
                 WHEN li.date IS NOT NULL THEN 'line date'
                 WHEN td.first_date IS NOT NULL THEN 'tender date'
                 WHEN $price_date_given THEN 'run price date'
                 ELSE 'undated: latest point' END AS ref_date_basis,
            rp.point AS ref_point,
            li.quantity * li.unit_price_cny AS line_total_cny,
            li.total_cny - li.quantity * li.unit_price_cny AS total_diff_cny,
            CASE WHEN c.cards_per_unit IS NOT NULL THEN li.quantity * c.cards_per_unit
            END AS card_count,
            CASE WHEN li.capacity_kw > 0 THEN
                CASE WHEN c.is_lump_sum OR c.capacity_total_wording THEN 'line' ELSE 'unit' END
                WHEN c.category = 'liquid_cooling' AND tl.cooling_kw > 0 THEN 'tender'
            END AS capacity_scope,
            -- per kW on one tax basis (vat_factor); a cooling line stating no capacity cools
            -- its tender's accelerators (_tender_load), together with the tender's other such
            -- lines: their sum over the load
            CASE WHEN c.category = 'liquid_cooling' AND li.capacity_kw > 0 THEN
                CASE WHEN c.is_lump_sum OR c.capacity_total_wording
                     THEN li.quantity * li.unit_price_cny / li.capacity_kw
                     ELSE li.unit_price_cny / li.capacity_kw END
                WHEN c.category = 'liquid_cooling' AND tl.cooling_kw > 0
                THEN tl.cooling_unstated_cny / tl.cooling_kw
            END * @vat_factor(li, c) AS price_per_kw,
            CASE WHEN c.category = 'liquid_cooling' AND coalesce(li.capacity_kw, 0) <= 0
                      AND tl.cooling_kw > 0 THEN tl.cooling_kw END AS capacity_from_tender_kw,
            CASE WHEN c.category = 'liquid_cooling' AND coalesce(li.capacity_kw, 0) <= 0
                      AND tl.cooling_kw > 0
                 THEN 'tender servers: ' || format('{:,.0f}', tl.load_cards)
                      || ' accelerators on line(s) ' || array_to_string(tl.load_lines, ', ')
                      || CASE WHEN tl.load_line_count > len(tl.load_lines) THEN ' …' ELSE '' END
                      || ' draw ≈' || format('{:,.0f}', tl.it_load_kw) || ' kW; cooling ≈'
                      || format('{:,.0f}', tl.cooling_kw) || ' kW'
                 WHEN li.capacity_kw > 0 THEN 'stated'
            END AS capacity_source,
            @vat_factor(li, c) AS vat_factor,
            CASE WHEN coalesce(li.price_includes_vat, c.vat_in_text) IS NULL
                 THEN 'not stated (taken as tax-inclusive, like the reference)'
                 WHEN coalesce(li.price_includes_vat, c.vat_in_text) THEN 'tax-inclusive'
                 ELSE 'tax-exclusive, ×' || format('{:.2f}', @vat_factor(li, c)) || ' ('
                      || format('{:.0f}', 100 * coalesce(c.vat_rate_in_text, $vat_rate_equipment))
                      || '% VAT' || CASE WHEN c.vat_rate_in_text IS NULL THEN ', the equipment '
                      || 'rate' ELSE ', stated' END || ')'
            END AS tax_basis,
            CASE WHEN c.category = 'cooling_retrofit' THEN
                CASE WHEN NOT c.is_lump_sum THEN li.quantity ELSE c.servers_in_text END
            END AS retrofit_servers,
            coalesce(li.date, td.first_date) AS purchase_date,
            td.total_cny AS tender_total_cny
        FROM {rows} li
        -- each row's text by its six columns (NULLs alike), then the text's recognition
        @text_of(li)
        LEFT JOIN _td td ON td.tender_id IS NOT DISTINCT FROM li.tender_id
        LEFT JOIN _tender_load tl ON tl.tender_id IS NOT DISTINCT FROM li.tender_id
        LEFT JOIN ref_price_points rp ON rp.model_id = c.accel_model AND rp.basis = c.ref_basis
            AND coalesce(li.date, td.first_date, $default_price_date) >= rp.seg_from
            AND coalesce(li.date, td.first_date, $default_price_date) < rp.seg_to
    ) p
) f
)
