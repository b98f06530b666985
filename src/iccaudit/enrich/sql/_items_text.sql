-- _items_text: the texts as matched, normalised once per distinct text by the sandbox
-- (_text_norm: NFKC, case folded, simplified Chinese, the lexicon's rewrites; see
-- enrich/textnorm.py): ``text`` (name | model | spec, as evidence shows it), the name with
-- the lexicon's name rewrites (服务器 -> ``server``, so that 服务 can mean "service" without
-- matching every server) and its parenthesised asides removed (name_core) or kept
-- (name_full), the model and spec likewise (rest_text).
CREATE VIEW _items_text AS
SELECT li.*,
    concat_ws(' | ', n.name_n, nullif(concat_ws(' | ', n.model_n, n.spec_n), '')) AS text,
    n.name_w AS name_full,
    regexp_replace(n.name_w, '[(\[【][^)\]】]*[)\]】]', ' ', 'g') AS name_core,
    concat_ws(' | ', n.model_w, n.spec_w) AS rest_text,
    nullif(trim(n.unit_n), '') AS unit_norm,
    nullif(trim(n.condition_n), '') AS condition_norm,
    nullif(trim(n.brand_n), '') AS brand_norm
FROM _text_keys li
JOIN _text_norm n ON n.tid = li.tid
