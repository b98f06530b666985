-- @text_of(row)
-- Joins the recognition of ``row``'s text: its six text columns matched with _text_keys
-- (NULLs alike) as t, then that text's _text_class row as c.
JOIN _text_keys t ON {row}.item_name IS NOT DISTINCT FROM t.item_name
    AND {row}.model IS NOT DISTINCT FROM t.model AND {row}.spec IS NOT DISTINCT FROM t.spec
    AND {row}.unit IS NOT DISTINCT FROM t.unit
    AND {row}.condition IS NOT DISTINCT FROM t.condition
    AND {row}.brand IS NOT DISTINCT FROM t.brand
JOIN _text_class c ON c.tid = t.tid
