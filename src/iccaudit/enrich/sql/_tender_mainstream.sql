-- _tender_mainstream: what the same buyer paid tier-1 makers for the same thing in the same
-- tender: the most direct yardstick for an off-brand line (same date, same buyer, no drift).
-- A GROUP BY over the priced mainstream lines only (a group of every priced line was nearly
-- one per line); items gives it to every priced line of a group, count 0 when it has none.
CREATE TABLE _tender_mainstream AS
SELECT tender_id, category, peer_key, peer_basis,
    median(peer_price_cny) AS tender_mainstream_median,
    count(*) AS tender_mainstream_count
FROM _lines
WHERE peer_price_cny > 0 AND brand_tier = 'mainstream'
GROUP BY ALL
