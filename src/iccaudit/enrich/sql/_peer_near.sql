-- _peer_near: the same peers bought within $peer_window_days days (params.yaml) of each
-- priced line: prices drift more in a year than a brand premium. Only priced lines enter the
-- window (a WHERE, not a FILTER clause on the aggregate): a filtered median cannot use
-- DuckDB's sorted-tree window and costs four times as much. The columns keep the name of the
-- bundled window (90 days).
CREATE TABLE _peer_near AS
SELECT rid,
    median(peer_price_cny) OVER near AS peer_median_90d,
    count(peer_price_cny) OVER near AS peer_count_90d
FROM _lines
WHERE peer_price_cny > 0
WINDOW near AS (PARTITION BY category, peer_key, peer_basis ORDER BY purchase_date
                RANGE BETWEEN INTERVAL $peer_window_days DAYS PRECEDING
                          AND INTERVAL $peer_window_days DAYS FOLLOWING)
