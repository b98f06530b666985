-- _items_text: the texts as matched: folded (@fold), 服务器 rewritten to ``server`` (so that
-- 服务 can mean "service" without matching every server), the name with its parenthesised
-- asides removed (name_core) and kept (name_full), the model and spec (rest_text).
CREATE VIEW _items_text AS
SELECT f.* EXCLUDE (name_fold, rest_fold),
    concat_ws(' | ', f.name_fold, nullif(f.rest_fold, '')) AS text,
    replace(f.name_fold, '服务器', ' server ') AS name_full,
    regexp_replace(replace(f.name_fold, '服务器', ' server '),
                   '[(\[【][^)\]】]*[)\]】]', ' ', 'g') AS name_core,
    replace(f.rest_fold, '服务器', ' server ') AS rest_text
FROM (
    SELECT li.*,
        @fold(item_name) AS name_fold,
        @fold(concat_ws(' | ', model, spec)) AS rest_fold,
        nullif(trim(@fold(unit)), '') AS unit_norm,
        nullif(trim(@fold(condition)), '') AS condition_norm,
        nullif(trim(@fold(brand)), '') AS brand_norm
    FROM _text_keys li
) f
