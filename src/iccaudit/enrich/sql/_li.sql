-- _li: the run's lines, narrow (the columns enrich computes on: no raw JSON). rid is the
-- row's position in the source (its __row): items joins the windows back to the source's
-- rows by it. {source} is a FROM item of the run's typed line items.
CREATE TABLE _li AS
SELECT src.__row AS rid, tender_id, line_no, item_name, model, spec, unit, condition, brand,
    quantity, unit_price_cny, total_cny, currency, date, capacity_kw, price_includes_vat
FROM {source} src
