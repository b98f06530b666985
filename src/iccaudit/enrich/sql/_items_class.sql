-- _items_class: each text's category, reference basis, cards per unit, condition, cooling
-- type and wording flags. Servers and modules whose text states no card count hold
-- $default_cards_per_unit cards (params.yaml); a count above $max_cards_per_unit is not one.
CREATE VIEW _items_class AS
SELECT x.*,
    CASE
        WHEN base_category IN ('gpu_server', 'gpu_card') AND x.is_domestic
        THEN 'domestic_accelerator' ELSE base_category END AS category,
    CASE base_category
        WHEN 'gpu_server' THEN 'server' WHEN 'gpu_card' THEN 'card'
        WHEN 'machine_head' THEN 'head' WHEN 'gpu_module' THEN 'module'
        WHEN 'liquid_cooling' THEN 'kw' WHEN 'cooling_retrofit' THEN 'retrofit'
        ELSE NULL END AS ref_basis,
    CASE
        WHEN base_category IN ('gpu_server', 'gpu_module')
        THEN CASE WHEN cards_parsed BETWEEN 1 AND $max_cards_per_unit THEN cards_parsed
                  ELSE $default_cards_per_unit END
        WHEN base_category = 'gpu_card' THEN 1
        ELSE NULL END AS cards_per_unit,
    -- used wording anywhere wins over "new": a 全新 column beside a "95新" spec is the
    -- used-as-new scheme itself, not a new card
    coalesce(@worn(x.condition_norm, $used_condition),
             @worn(x.text, $used_text),
             CASE WHEN regexp_matches(x.condition_norm, $new_condition) THEN 'new' END,
             CASE WHEN regexp_matches(x.text, $new_text) THEN 'new' END,
             'unknown') AS condition_class,
    coalesce(regexp_matches(x.condition_norm, $new_condition)
             AND NOT regexp_matches(x.condition_norm, $used_condition_or_refurbished)
             AND regexp_matches(x.text, $used_text_or_refurbished),
             false) AS condition_conflict,
    CASE
        WHEN base_category NOT IN ('liquid_cooling', 'cooling_retrofit') THEN NULL
        WHEN regexp_matches(x.text, $cold_plate) THEN 'cold_plate'
        WHEN regexp_matches(x.text, $immersion) THEN 'immersion'
        ELSE 'other' END AS cooling_type,
    regexp_matches(x.text, $shell) AS shell_wording,
    (base_category = 'gpu_server'
        AND (regexp_matches(x.text, $assembled)
             OR (contains(x.text, '机头') AND contains(x.text, '模组')))) AS spec_says_assembled,
    (base_category = 'service' OR coalesce(unit_norm IN ($lump_units), false)) AS is_lump_sum
FROM (
    SELECT b.*,
        -- only servers and modules read a card count from the text (a card line is 1 card)
        CASE WHEN b.base_category IN ('gpu_server', 'gpu_module') THEN coalesce(
            try_cast(nullif(regexp_extract(b.text, $cards_times, 1), '') AS INTEGER),
            try_cast(nullif(regexp_extract(b.text, $cards_plain, 1), '') AS INTEGER),
            try_cast(nullif(regexp_extract(b.text, $times_cards, 1), '') AS INTEGER),
            CASE {cards_chinese} ELSE NULL END) END AS cards_parsed
    FROM (
        -- a server with no accelerator evidence (管理节点, 通用计算 CPU servers) is not a GPU
        -- server: it would otherwise count phantom cards in tender_compute
        SELECT r.* EXCLUDE (raw_category),
            CASE WHEN r.raw_category = 'gpu_server' AND r.accel_model IS NULL
                      AND NOT regexp_matches(r.text, $gpu_evidence)
                 THEN 'other' ELSE r.raw_category END AS base_category
        FROM (
        -- coalesce evaluates lazily: later recognisers run only on lines still unrecognised
        SELECT *,
            coalesce(
                @category(name_core, name_full),
                @category(name_full, name_full),
                CASE WHEN accel_model IS NOT NULL OR regexp_matches(name_core, $domestic)
                     THEN CASE WHEN coalesce(unit_norm IN ($card_units), false) THEN 'gpu_card'
                               ELSE 'gpu_server' END END,
                CASE
                    WHEN regexp_matches(rest_text, $retrofit) THEN 'cooling_retrofit'
                    @category_goods(rest_text, rest_text)
                    ELSE NULL END,
                'other') AS raw_category
        FROM _items_accel
        ) r
    ) b
) x
