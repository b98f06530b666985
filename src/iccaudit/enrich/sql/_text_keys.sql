-- _text_keys: each distinct text of the six text columns, numbered (tid). Recognition (text,
-- accelerator, category, condition, brand, reference price, peer key) depends only on these,
-- and tenders repeat the same catalogue lines: it runs once per distinct text (about 22 k in
-- 1 M generated lines) into _text_class, and each line carries only the number of its text.
CREATE TABLE _text_keys AS
SELECT row_number() OVER () AS tid, *
FROM (SELECT DISTINCT item_name, model, spec, unit, condition, brand FROM _li)
