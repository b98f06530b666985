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
    coalesce(@worn(x.condition_norm, $used_condition, $used_condition_not),
             @worn(x.text, $used_text, $used_text_not),
             CASE WHEN @says(x.condition_norm, $new_condition, $new_condition_not) THEN 'new' END,
             CASE WHEN @says(x.text, $new_text, $new_text_not) THEN 'new' END,
             'unknown') AS condition_class,
    coalesce(@says(x.condition_norm, $new_condition, $new_condition_not)
             AND @worn(x.condition_norm, $used_condition, $used_condition_not) IS NULL
             AND @worn(x.text, $used_text, $used_text_not) IS NOT NULL,
             false) AS condition_conflict,
    CASE
        WHEN base_category NOT IN ('liquid_cooling', 'cooling_retrofit') THEN NULL
        WHEN @says(x.text, $cold_plate, $cold_plate_not) THEN 'cold_plate'
        WHEN @says(x.text, $immersion, $immersion_not) THEN 'immersion'
        ELSE 'other' END AS cooling_type,
    @says(x.text, $shell, $shell_not) AS shell_wording,
    (base_category = 'gpu_server'
        AND @says(x.text, $assembled, $assembled_not)) AS spec_says_assembled,
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
        SELECT r.* EXCLUDE (raw_category, lexicon_category),
            CASE WHEN r.raw_category = 'gpu_server' AND r.accel_model IS NULL
                      AND NOT @says(r.text, $gpu_evidence, $gpu_evidence_not)
                 THEN 'other' ELSE r.raw_category END AS base_category
        FROM (
        -- the lexicon's category, else the learned fallback's guess (_text_model, filled
        -- by the sandbox for the texts the lexicon leaves NULL), else other
        SELECT l.*,
            coalesce(l.lexicon_category, m.model_category, 'other') AS raw_category,
            CASE WHEN l.lexicon_category IS NOT NULL THEN 'lexicon'
                 WHEN m.model_category IS NOT NULL THEN 'model'
                 ELSE 'none' END AS recognised_by,
            m.model_confidence
        FROM (
        -- coalesce evaluates lazily: later recognisers run only on lines still unrecognised
        SELECT *,
            coalesce(
                @category(name_core, name_full),
                @category(name_full, name_full),
                CASE WHEN accel_model IS NOT NULL OR @says(name_core, $domestic, $domestic_not)
                     THEN CASE WHEN coalesce(unit_norm IN ($card_units), false) THEN 'gpu_card'
                               ELSE 'gpu_server' END END,
                CASE
                    WHEN @says(rest_text, $retrofit, $retrofit_not) THEN 'cooling_retrofit'
                    @category_goods(rest_text, rest_text)
                    ELSE NULL END) AS lexicon_category
        FROM _items_accel
        ) l
        LEFT JOIN _text_model m ON m.tid = l.tid
        ) r
    ) b
) x
