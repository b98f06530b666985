-- tender_assemblies: machine heads (机头) paired with GPU modules (GPU模组) of the same tender
-- and model, with the complete-server reference, the batch's complete servers of that model
-- bought within $peer_window_days days, and the expected assembly discount (assembly.yaml).
CREATE TABLE tender_assemblies AS
WITH modules AS (
    SELECT tender_id, accel_model, item_id, quantity, unit_price_cny, cards_per_unit,
        purchase_date,
        row_number() OVER (PARTITION BY tender_id, accel_model ORDER BY item_id) AS rn,
        count(*) OVER (PARTITION BY tender_id, accel_model) AS n
    FROM items WHERE category = 'gpu_module' AND NOT is_lump_sum
), module_models AS (
    SELECT tender_id, accel_model, count(*) OVER (PARTITION BY tender_id) AS models_in_tender
    FROM (SELECT DISTINCT tender_id, accel_model FROM modules)
), heads AS (
    -- a head that names no GPU belongs to the tender's module model, when there is only one
    SELECT h.tender_id, coalesce(h.accel_model, m.accel_model) AS accel_model, h.item_id,
        h.quantity, h.unit_price_cny
    FROM items h
    LEFT JOIN module_models m
        ON m.tender_id = h.tender_id AND h.accel_model IS NULL AND m.models_in_tender = 1
    WHERE h.category = 'machine_head' AND NOT h.is_lump_sum
), heads_ranked AS (
    SELECT *, row_number() OVER (PARTITION BY tender_id, accel_model ORDER BY item_id) AS rn,
        count(*) OVER (PARTITION BY tender_id, accel_model) AS n
    FROM heads
), pairs AS (
    -- pair in line order; a single line on one side pairs with every line of the other
    SELECT m.tender_id, m.accel_model,
        h.item_id AS head_item_id, m.item_id AS module_item_id,
        h.quantity AS head_qty, m.quantity AS module_qty,
        h.unit_price_cny AS head_unit_price_cny, m.unit_price_cny AS module_unit_price_cny,
        m.cards_per_unit, m.purchase_date
    FROM modules m
    JOIN heads_ranked h
        ON h.tender_id = m.tender_id AND h.accel_model IS NOT DISTINCT FROM m.accel_model
        AND (h.rn = m.rn OR h.n = 1 OR m.n = 1)
), complete_peers AS (
    -- what the batch pays for a branded complete server of the model near the pair's date:
    -- prices drift more within a year (H100 2.75 M -> 2.4 M in 2024) than the 5-8 % assembly
    -- discount, so a static reference cannot tell a discount from drift; the peer window can.
    -- A window over the servers, with each pair as a priceless row among them, not a join of
    -- every pair with every server within the window: that join grows with the square of the
    -- batch (10 M lines: tens of billions of rows). Same medians and counts.
    -- Each pair enters as two rows priced -inf and +inf, not as one priceless row: a median
    -- is the same with one value added below every price and one above, and a window whose
    -- frames hold NULLs leaves DuckDB's sorted-tree median for a slow path (10 M lines:
    -- 6.4 CPU-s for a quarter of a million rows). The count counts the servers.
    SELECT head_item_id, module_item_id,
        CASE WHEN complete_peer_count > 0 THEN median_price END AS complete_peer_median_cny,
        complete_peer_count
    FROM (
        SELECT is_pair, price, head_item_id, module_item_id,
            median(price) OVER near AS median_price,
            sum(CASE WHEN is_pair THEN 0 ELSE 1 END) OVER near::BIGINT AS complete_peer_count
        FROM (
            SELECT DISTINCT TRUE AS is_pair, head_item_id, module_item_id, accel_model,
                cards_per_unit, purchase_date, bound.price
            FROM pairs, (VALUES ('-infinity'::DOUBLE), ('infinity'::DOUBLE)) bound(price)
            UNION ALL
            SELECT FALSE, NULL, NULL, c.accel_model, c.cards_per_unit, c.purchase_date,
                c.unit_price_cny
            -- only the models (and card counts) some pair has: a window partition without
            -- a pair would be computed for nothing
            FROM items c SEMI JOIN (SELECT DISTINCT accel_model, cards_per_unit FROM pairs) k
                ON k.accel_model = c.accel_model AND k.cards_per_unit = c.cards_per_unit
            WHERE c.category = 'gpu_server' AND c.accel_model IS NOT NULL
                AND c.cards_per_unit IS NOT NULL AND c.purchase_date IS NOT NULL
                AND NOT c.is_lump_sum AND NOT c.spec_says_assembled
                AND c.brand_tier <> 'other'
                AND c.condition_class NOT IN ('used', 'refurbished') AND c.unit_price_cny > 0
        )
        WINDOW near AS (PARTITION BY accel_model, cards_per_unit ORDER BY purchase_date
                        RANGE BETWEEN INTERVAL $peer_window_days DAYS PRECEDING
                              AND INTERVAL $peer_window_days DAYS FOLLOWING)
    )
    WHERE is_pair AND price < 0  -- one of the pair's two rows (both have the same frame)
), params AS (
    SELECT max(num_value) FILTER (WHERE key = 'assembly_discount_low') AS disc_low,
           max(num_value) FILTER (WHERE key = 'assembly_discount_high') AS disc_high
    FROM ref_params
)
SELECT p.tender_id, p.accel_model, p.head_item_id, p.module_item_id,
    p.head_qty, p.module_qty,
    least(p.head_qty, p.module_qty) AS servers,
    p.head_unit_price_cny, p.module_unit_price_cny,
    p.head_unit_price_cny + p.module_unit_price_cny AS price_per_server_cny,
    r.ref_low AS complete_ref_low_cny,
    r.ref_high AS complete_ref_high_cny,
    r.ref_peak AS complete_ref_peak_cny,
    -- the complete server's price of the pair's month: the middle of the dated range where
    -- the book has a dated series (more than one point); without one the range holds at any
    -- date and only its peak is a safe yardstick
    CASE WHEN r.dated THEN r.ref_mid ELSE r.ref_peak END AS complete_ref_cny,
    CASE WHEN r.dated THEN 'reference as of ' || coalesce(strftime(r.on_date, '%Y-%m'),
                                                          'the latest point')
              || ' (' || r.point || ')'
         ELSE 'reference peak (' || r.point || ')' END AS complete_ref_basis,
    p.purchase_date,
    cp.complete_peer_median_cny,
    cp.complete_peer_count,
    1 - (p.head_unit_price_cny + p.module_unit_price_cny) / r.ref_low AS discount_vs_ref_low,
    1 - (p.head_unit_price_cny + p.module_unit_price_cny) / r.ref_high AS discount_vs_ref_high,
    params.disc_low AS expected_discount_low,
    params.disc_high AS expected_discount_high,
    r.ref_high * (1 - params.disc_low) AS expected_assembled_high_cny,
    least(p.head_qty, p.module_qty) * greatest(0.0,
        p.head_unit_price_cny + p.module_unit_price_cny - r.ref_high * (1 - params.disc_low))
        AS excess_cny
FROM pairs p
CROSS JOIN params
LEFT JOIN complete_peers cp
    ON cp.head_item_id = p.head_item_id AND cp.module_item_id = p.module_item_id
-- the complete-server reference as of the pair's date (ref_price_points, @dated), scaled from
-- the priced configuration's cards to the module's
LEFT JOIN (
    SELECT p2.head_item_id, p2.module_item_id, rp.point,
        p2.purchase_date AS on_date,
        rp.dated,
        @dated(low, coalesce(p2.purchase_date, $default_price_date))
            * p2.cards_per_unit / rp.cards AS ref_low,
        @dated(high, coalesce(p2.purchase_date, $default_price_date))
            * p2.cards_per_unit / rp.cards AS ref_high,
        @dated(mid, coalesce(p2.purchase_date, $default_price_date))
            * p2.cards_per_unit / rp.cards AS ref_mid,
        rp.series_peak * p2.cards_per_unit / rp.cards AS ref_peak
    FROM pairs p2
    JOIN ref_price_points rp ON rp.model_id = p2.accel_model AND rp.basis = 'server'
        AND coalesce(p2.purchase_date, $default_price_date) >= rp.seg_from
        AND coalesce(p2.purchase_date, $default_price_date) < rp.seg_to
) r ON r.head_item_id = p.head_item_id AND r.module_item_id = p.module_item_id
