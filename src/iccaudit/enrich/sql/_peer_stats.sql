-- _peer_stats: per peer group (category, peer_key, peer_basis) of the priced lines: count,
-- tenders, median, the mainstream brands' median, and the median and deviations of the log
-- price that robust_z reads.
CREATE TABLE _peer_stats AS
WITH g AS (
    SELECT category, peer_key, peer_basis,
        count(*) AS peer_count,
        median(peer_price_cny) AS peer_median,
        -- what tier-1 makers charge for the same thing: the yardstick for off-brand lines
        median(peer_price_cny) FILTER (WHERE brand_tier = 'mainstream') AS mainstream_median,
        count(*) FILTER (WHERE brand_tier = 'mainstream') AS mainstream_count,
        median(ln(peer_price_cny)) AS med_log
    FROM _lines
    WHERE peer_price_cny > 0
    GROUP BY ALL
), d AS (
    SELECT k.category, k.peer_key, k.peer_basis,
        median(abs(ln(k.peer_price_cny) - g.med_log)) AS mad_log,
        avg(abs(ln(k.peer_price_cny) - g.med_log)) AS meanad_log
    FROM _lines k
    JOIN g ON g.category = k.category AND g.peer_basis = k.peer_basis
        AND g.peer_key = k.peer_key
    WHERE k.peer_price_cny > 0
    GROUP BY ALL
), t AS (
    -- the tenders of each group by two GROUP BYs: count(DISTINCT) kept a set per group and
    -- was half of this statement's time
    SELECT category, peer_key, peer_basis, count(*) AS peer_tender_count
    FROM (SELECT DISTINCT category, peer_key, peer_basis, tender_id
          FROM _lines WHERE peer_price_cny > 0 AND tender_id IS NOT NULL)
    GROUP BY ALL
)
SELECT g.category, g.peer_key, g.peer_basis, g.peer_count,
    coalesce(t.peer_tender_count, 0) AS peer_tender_count, g.peer_median, g.mainstream_median,
    g.mainstream_count, g.med_log, d.mad_log, d.meanad_log
FROM g JOIN d ON g.category = d.category AND g.peer_basis = d.peer_basis
    AND g.peer_key = d.peer_key
LEFT JOIN t ON t.category IS NOT DISTINCT FROM g.category
    AND t.peer_basis IS NOT DISTINCT FROM g.peer_basis
    AND t.peer_key IS NOT DISTINCT FROM g.peer_key
