-- serial_reuse: a serial number seen in an earlier tender, one row per later line. Windows
-- only over the serials seen in more than one tender (a GROUP BY finds them): the other
-- serials cannot be reused, and windows over all of them cost most of the time.
CREATE TABLE serial_reuse AS
WITH s AS (
    SELECT DISTINCT i.item_id, i.tender_id, i.purchase_date,
        -- compared on letters and digits only: "SN-0002" and "sn 0002" are one serial
        regexp_replace(upper(sn.serial), '[^A-Z0-9]', '', 'g') AS serial
    FROM (SELECT item_id, tender_id, purchase_date, serial_numbers FROM items
          WHERE len(serial_numbers) > 0) i, unnest(i.serial_numbers) AS sn(serial)
), valid AS (
    -- placeholders (N/A, 无, -, 待定) are not serial numbers: at least $serial_min_chars
    -- letters/digits (params.yaml)
    SELECT * FROM s WHERE length(serial) >= $serial_min_chars
), shared AS (
    SELECT serial FROM valid GROUP BY serial HAVING count(DISTINCT tender_id) > 1
), ranked AS (
    SELECT v.*,
        first_value(item_id) OVER w AS first_item_id,
        first_value(tender_id) OVER w AS first_tender_id,
        first_value(purchase_date) OVER w AS first_date
    FROM valid v SEMI JOIN shared h ON h.serial = v.serial
    WINDOW w AS (PARTITION BY serial ORDER BY purchase_date NULLS LAST, tender_id, item_id)
)
SELECT r.item_id, r.tender_id AS later_tender_id, r.purchase_date AS later_date,
    r.first_item_id AS earlier_item_id, r.first_tender_id AS earlier_tender_id,
    r.first_date AS earlier_date,
    date_diff('day', r.first_date, r.purchase_date) AS days_between,
    coalesce(r.first_date < r.purchase_date, false) AS date_order_known,
    count(*) AS shared_serials,
    min(r.serial) AS serial,
    string_agg(r.serial, ',' ORDER BY r.serial) AS serials
FROM ranked r
WHERE r.tender_id <> r.first_tender_id
GROUP BY ALL
