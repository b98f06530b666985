-- duplicate_lines: lines with an identical twin in their tender (same name and model ignoring
-- case and outer spaces, quantity and unit price). Windows only over the lines whose key may
-- repeat, not over every line: a GROUP BY of a hash of the tender, quantity and unit price
-- (numbers and one text: no lower() or trim() of a million names) finds the candidates, and
-- NULLs hash alike, as the window partitions group them. The windows count by the full key,
-- so a hash collision or a candidate with another name adds nothing (1 M lines: 0.40 -> 0.10
-- CPU-s).
CREATE TABLE duplicate_lines AS
WITH repeated AS (
    SELECT hash(tender_id, quantity, unit_price_cny) AS key_hash
    FROM items GROUP BY key_hash HAVING count(*) > 1
), keyed AS (
    SELECT item_id, tender_id, item_name, model, quantity, unit_price_cny, line_total_cny,
        lower(trim(item_name)) AS name_key, lower(trim(coalesce(model, ''))) AS model_key
    FROM items
    SEMI JOIN repeated r ON r.key_hash = hash(items.tender_id, items.quantity,
                                              items.unit_price_cny)
), k AS (
    SELECT item_id, tender_id, item_name, model, quantity, unit_price_cny, line_total_cny,
        row_number() OVER w AS dup_ordinal,
        count(*) OVER (PARTITION BY tender_id, name_key, model_key, quantity, unit_price_cny)
            AS dup_count,
        first_value(item_id) OVER w AS first_item_id
    FROM keyed
    WINDOW w AS (PARTITION BY tender_id, name_key, model_key, quantity, unit_price_cny
                 ORDER BY item_id)
)
SELECT item_id, tender_id, item_name, model, quantity, unit_price_cny, line_total_cny,
    dup_ordinal, dup_count, first_item_id, dup_ordinal > 1 AS is_repeat
FROM k WHERE dup_count > 1
