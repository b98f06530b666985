-- _td: the per-tender figures, once, by GROUP BY (not a window): _lines and items both join
-- them, so both see the very same sums.
CREATE TABLE _td AS
SELECT tender_id, min(date) AS first_date, sum(quantity * unit_price_cny) AS total_cny
FROM _li GROUP BY tender_id
