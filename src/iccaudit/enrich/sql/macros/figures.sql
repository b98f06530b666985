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
    f.basis_price_cny / f.ref_high_cny AS ratio_to_ref_high,
    f.basis_price_cny / f.ref_low_cny AS ratio_to_ref_low,
    f.line_total_cny / nullif(f.tender_total_cny, 0) AS line_value_share,
    f.tender_total_cny,
    CASE WHEN f.is_lump_sum THEN NULL
         WHEN f.basis_price_cny IS NOT NULL THEN f.basis_price_cny
         WHEN f.ref_basis IN ('kw', 'retrofit') THEN NULL
         ELSE f.unit_price_cny END AS peer_price_cny,
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
        END AS basis_price_cny
    FROM (
        SELECT {carry_inner}{rid} AS rid, c.tid, li.tender_id,
            li.unit_price_cny, c.category,
            -- prices in another currency than yuan: peers in that currency only, and no
            -- reference price (the book is in yuan)
            CASE WHEN coalesce(li.currency, 'CNY') = 'CNY' THEN c.peer_key
                 ELSE c.peer_key || ' ' || li.currency END AS peer_key,
            c.brand_tier, c.ref_basis, c.is_lump_sum, c.unit_norm,
            CASE WHEN coalesce(li.currency, 'CNY') = 'CNY' THEN c.ref_low_cny END
                AS ref_low_cny,
            CASE WHEN coalesce(li.currency, 'CNY') = 'CNY' THEN c.ref_high_cny END
                AS ref_high_cny,
            li.quantity * li.unit_price_cny AS line_total_cny,
            li.total_cny - li.quantity * li.unit_price_cny AS total_diff_cny,
            CASE WHEN c.cards_per_unit IS NOT NULL THEN li.quantity * c.cards_per_unit
            END AS card_count,
            CASE WHEN li.capacity_kw > 0 THEN
                CASE WHEN c.is_lump_sum OR c.capacity_total_wording THEN 'line' ELSE 'unit' END
            END AS capacity_scope,
            CASE WHEN c.category = 'liquid_cooling' AND li.capacity_kw > 0 THEN
                CASE WHEN c.is_lump_sum OR c.capacity_total_wording
                     THEN li.quantity * li.unit_price_cny / li.capacity_kw
                     ELSE li.unit_price_cny / li.capacity_kw END
            END AS price_per_kw,
            CASE WHEN c.category = 'cooling_retrofit' THEN
                CASE WHEN NOT c.is_lump_sum THEN li.quantity ELSE c.servers_in_text END
            END AS retrofit_servers,
            coalesce(li.date, td.first_date) AS purchase_date,
            td.total_cny AS tender_total_cny
        FROM {rows} li
        -- each row's text by its six columns (NULLs alike), then the text's recognition
        JOIN _text_keys t ON li.item_name IS NOT DISTINCT FROM t.item_name
            AND li.model IS NOT DISTINCT FROM t.model AND li.spec IS NOT DISTINCT FROM t.spec
            AND li.unit IS NOT DISTINCT FROM t.unit
            AND li.condition IS NOT DISTINCT FROM t.condition
            AND li.brand IS NOT DISTINCT FROM t.brand
        JOIN _text_class c ON c.tid = t.tid
        LEFT JOIN _td td ON td.tender_id IS NOT DISTINCT FROM li.tender_id
    ) p
) f
)
