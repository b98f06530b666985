"""The SQL views rules and models read, built from the vocabulary and the reference aliases.

All steps are set-at-a-time. Recognition (regular expressions, reference prices, brand,
peer key) runs once per distinct text of the six text columns (``_text_class``); the
per-line figures, peer statistics and windows run on narrow rows (``_lines``: numbers and
keys, no raw JSON, no texts); tenders and peers come in by GROUP BY + join. The one wide
copy of the lines is ``items``: the caller's rows with the same figures, computed by the same
SQL, and the peer statistics and windows (by row position). A million lines cost about three
seconds on two cores.

Internal steps start with ``_`` and are dropped at the end. The public views (described in
:mod:`iccaudit.enrich.dictionary`) ``items``, ``tender_assemblies``, ``serial_reuse``,
``duplicate_lines`` and ``tender_compute`` are materialised as tables (each rule and model
reads them; a view would be computed once per reader); ``line_items`` is a view of
``items``' first columns.

Choices worth knowing (also in docs/dictionary.md):

- ``capacity_kw`` is read as the capacity of **one unit** (a spec attribute, like 规格参数),
  so ``price_per_kw = unit_price / capacity_kw``; when the line is a lump sum (项/批) or its
  text says the capacity is a total (总制冷量, 合计 …) it is the capacity of the **line** and
  ``price_per_kw = quantity * unit_price / capacity_kw`` (``capacity_scope`` says which).
- Peer statistics include the line itself (``peer_count`` counts it): a lone line has
  ``peer_count = 1`` and ``robust_z`` NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

from iccaudit.enrich import vocab
from iccaudit.enrich.reference import Reference

#: a name ending in 机柜 ("服务器机柜") is a rack, even with 服务器 in it
_RACK_HEAD = r"机柜\s*$"
ACCEL_CATEGORIES = ("gpu_server", "gpu_card", "gpu_module", "domestic_accelerator")

#: Public views in creation order.
PUBLIC_VIEWS = ("items", "tender_assemblies", "serial_reuse", "duplicate_lines", "tender_compute")


def lit(value: str) -> str:
    """A SQL string literal (standard SQL: quotes doubled, backslashes literal)."""
    return "'" + value.replace("'", "''") + "'"


def _m(col: str, pattern: str) -> str:
    return f"regexp_matches({col}, {lit(pattern)})"


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(lit(v) for v in values)})"


def _category_case(core: str, full: str, *, with_service: bool = True) -> str:
    """Category from wording, first hit wins; NULL when nothing matches.

    ``core`` is the text with parenthesised asides removed (the head noun of an item name),
    ``full`` keeps them: 机头 anywhere in a name makes a machine head ("服务器（机头）").
    """
    service = f"WHEN {_m(core, vocab.SERVICE)} THEN 'service'" if with_service else ""
    return f"""CASE
        WHEN {_m(core, vocab.RETROFIT)} THEN 'cooling_retrofit'
        {service}
        WHEN {_m(full, vocab.HEAD)} THEN 'machine_head'
        WHEN {_m(core, vocab.MODULE)} AND NOT {_m(core, r'光模块|optical|transceiver')}
            THEN 'gpu_module'
        WHEN {_m(core, vocab.SERVER)} AND {_m(core, vocab.STORAGE)}
            AND NOT {_m(core, vocab.GPU_HINT)} THEN 'storage'
        -- "服务器机柜" is a rack for servers: the head noun (last word) decides
        WHEN {_m(core, _RACK_HEAD)} AND NOT {_m(core, vocab.GPU_HINT)}
            AND NOT {_m(core, vocab.LIQUID)} THEN 'rack_power'
        WHEN {_m(core, vocab.SERVER)} THEN 'gpu_server'
        WHEN {_m(core, vocab.NETWORK)} THEN 'network'
        WHEN {_m(core, vocab.CARD)} THEN 'gpu_card'
        WHEN {_m(core, vocab.LIQUID)} THEN 'liquid_cooling'
        WHEN {_m(core, vocab.STORAGE)} THEN 'storage'
        WHEN {_m(core, vocab.RACK)} THEN 'rack_power'
        ELSE NULL END"""


def _worn_case(col: str, used: str) -> str:
    return f"""CASE
        WHEN {_m(col, vocab.REFURBISHED)} THEN 'refurbished'
        WHEN {_m(col, used)} THEN 'used'
        ELSE NULL END"""


def _fold(expr: str) -> str:
    """Lower-case and fold full-width characters; 整机柜 is a rack, not a complete server.

    translate() is costly, so it runs only on the few strings that hold full-width characters.
    """
    low = f"lower({expr})"
    return (
        f"replace(CASE WHEN regexp_matches({low}, {lit('[' + vocab.FULLWIDTH + ']')})"
        f" THEN translate({low}, {lit(vocab.FULLWIDTH)}, {lit(vocab.ASCII)})"
        f" ELSE {low} END, '整机柜', '机柜')"
    )


#: Columns the figures' innermost SELECT (see ``figures`` in :func:`view_statements`)
#: makes, and its outer one: a carried column of the same name is the same value.
_INNER = frozenset((
    "rid", "tid", "tender_id", "unit_price_cny", "category", "peer_key", "brand_tier",
    "ref_basis", "is_lump_sum", "unit_norm", "ref_low_cny", "ref_high_cny", "line_total_cny",
    "total_diff_cny", "card_count", "capacity_scope", "price_per_kw", "retrofit_servers",
    "purchase_date", "tender_total_cny"))
_OUTER = frozenset((
    "rid", "tid", "tender_id", "category", "peer_key", "brand_tier", "line_total_cny",
    "total_diff_cny", "card_count", "capacity_scope", "price_per_kw", "retrofit_servers",
    "purchase_date", "basis_price_cny", "ratio_to_ref_high", "ratio_to_ref_low",
    "line_value_share", "tender_total_cny", "peer_price_cny", "peer_basis"))


def view_statements(ref: Reference, source: str,
                    line_item_columns: Sequence[str]) -> list[str]:
    """The statements that build the sandbox's tables and views, in dependency order.

    ``source`` is a FROM item (a table name or a parenthesised SELECT) giving the run's line
    items with the ``line_item_columns`` already typed, and ``__row``, each row's position
    (distinct integers); it is read twice: once for the few columns enrich computes on, once
    for the final ``items`` table.
    """
    aliases = [a for acc in ref.accelerators.accelerators for a in acc.aliases]
    accel_re = vocab.accel_regex(aliases)
    times_re = vocab.cards_times_regex(aliases)
    times_after_re = vocab.times_cards_regex(aliases)
    card_units = _in("unit_norm", vocab.CARD_UNITS)
    lump_units = _in("unit_norm", vocab.LUMP_UNITS)
    cn_cards = " ".join(
        f"WHEN contains(text, {lit(k)}) THEN {v}" for k, v in vocab.CARDS_CHINESE.items()
    )
    max_cards = vocab.MAX_CARDS_PER_UNIT
    accel_in = ", ".join(lit(c) for c in ACCEL_CATEGORIES)

    text_view = f"""
CREATE VIEW _items_text AS
SELECT f.* EXCLUDE (name_fold, rest_fold),
    concat_ws(' | ', f.name_fold, nullif(f.rest_fold, '')) AS text,
    replace(f.name_fold, '服务器', ' server ') AS name_full,
    regexp_replace(replace(f.name_fold, '服务器', ' server '),
                   '[(\\[【][^)\\]】]*[)\\]】]', ' ', 'g') AS name_core,
    replace(f.rest_fold, '服务器', ' server ') AS rest_text
FROM (
    SELECT li.*,
        {_fold("item_name")} AS name_fold,
        {_fold("concat_ws(' | ', model, spec)")} AS rest_fold,
        nullif(trim({_fold("unit")}), '') AS unit_norm,
        nullif(trim({_fold("condition")}), '') AS condition_norm,
        nullif(trim({_fold("brand")}), '') AS brand_norm
    FROM _text_keys li
) f"""

    accel_view = f"""
CREATE VIEW _items_accel AS
SELECT t.*,
    a.model_id AS accel_model,
    r.vendor AS accel_vendor,
    coalesce(r.is_domestic, {_m("t.text", vocab.DOMESTIC)}) AS is_domestic,
    coalesce(r.export_controlled, false) AS export_controlled,
    r.controlled_from AS export_control_date,
    r.fp16_dense_tflops,
    r.tdp_w,
    CASE
        WHEN {_m("t.name_full", vocab.CAPACITY_TOTAL)} OR {_m("t.text", vocab.CAPACITY_TOTAL)}
        THEN true ELSE false END AS capacity_total_wording,
FROM _items_text t
LEFT JOIN (SELECT DISTINCT alias_key, model_id FROM ref_accel_aliases) a
    ON a.alias_key = regexp_replace(regexp_extract(t.text, {lit(accel_re)}, 1),
                                    '[\\s\\-_]+', '', 'g')
LEFT JOIN ref_accelerators r ON r.model_id = a.model_id"""

    class_view = f"""
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
        THEN CASE WHEN cards_parsed BETWEEN 1 AND {max_cards} THEN cards_parsed ELSE 8 END
        WHEN base_category = 'gpu_card' THEN 1
        ELSE NULL END AS cards_per_unit,
    -- used wording anywhere wins over "new": a 全新 column beside a "95新" spec is the
    -- used-as-new scheme itself, not a new card
    coalesce({_worn_case("x.condition_norm", vocab.USED_CONDITION)},
             {_worn_case("x.text", vocab.USED_TEXT)},
             CASE WHEN {_m("x.condition_norm", vocab.NEW_CONDITION)} THEN 'new' END,
             CASE WHEN {_m("x.text", vocab.NEW_TEXT)} THEN 'new' END,
             'unknown') AS condition_class,
    coalesce({_m("x.condition_norm", vocab.NEW_CONDITION)}
             AND NOT {_m("x.condition_norm", vocab.USED_CONDITION + "|" + vocab.REFURBISHED)}
             AND {_m("x.text", vocab.USED_TEXT + "|" + vocab.REFURBISHED)},
             false) AS condition_conflict,
    CASE
        WHEN base_category NOT IN ('liquid_cooling', 'cooling_retrofit') THEN NULL
        WHEN {_m("x.text", vocab.COLD_PLATE)} THEN 'cold_plate'
        WHEN {_m("x.text", vocab.IMMERSION)} THEN 'immersion'
        ELSE 'other' END AS cooling_type,
    {_m("x.text", vocab.SHELL)} AS shell_wording,
    (base_category = 'gpu_server'
        AND ({_m("x.text", vocab.ASSEMBLED)}
             OR (contains(x.text, '机头') AND contains(x.text, '模组')))) AS spec_says_assembled,
    (base_category = 'service' OR coalesce({lump_units}, false)) AS is_lump_sum
FROM (
    SELECT b.*,
        -- only servers and modules read a card count from the text (a card line is 1 card)
        CASE WHEN b.base_category IN ('gpu_server', 'gpu_module') THEN coalesce(
            try_cast(nullif(regexp_extract(b.text, {lit(times_re)}, 1), '') AS INTEGER),
            try_cast(nullif(regexp_extract(b.text, {lit(vocab.CARDS_PLAIN)}, 1), '') AS INTEGER),
            try_cast(nullif(regexp_extract(b.text, {lit(times_after_re)}, 1), '') AS INTEGER),
            CASE {cn_cards} ELSE NULL END) END AS cards_parsed
    FROM (
        -- a server with no accelerator evidence (管理节点, 通用计算 CPU servers) is not a GPU
        -- server: it would otherwise count 8 phantom cards in tender_compute
        SELECT r.* EXCLUDE (raw_category),
            CASE WHEN r.raw_category = 'gpu_server' AND r.accel_model IS NULL
                      AND NOT {_m("r.text", vocab.GPU_EVIDENCE)}
                 THEN 'other' ELSE r.raw_category END AS base_category
        FROM (
        -- coalesce evaluates lazily: later recognisers run only on lines still unrecognised
        SELECT *,
            coalesce(
                {_category_case("name_core", "name_full")},
                {_category_case("name_full", "name_full")},
                CASE WHEN accel_model IS NOT NULL OR {_m("name_core", vocab.DOMESTIC)}
                     THEN CASE WHEN coalesce({card_units}, false) THEN 'gpu_card'
                               ELSE 'gpu_server' END END,
                {_category_case("rest_text", "rest_text", with_service=False)},
                'other') AS raw_category
        FROM _items_accel
        ) r
    ) b
) x"""

    # Recognition (text, accelerator, category, condition, brand, reference price, peer key)
    # depends only on the six text columns, and tenders repeat the same catalogue lines: it
    # runs once per distinct text (about 22 k in 1 M generated lines) into _text_class, and
    # each line carries only the number of its text (tid).
    keys = ("item_name", "model", "spec", "unit", "condition", "brand")
    # rid is the row's position in ``source`` (its ``__row``): items joins the windows back
    # to the source's rows by it.
    narrow = ", ".join(("tender_id", *keys, "quantity", "unit_price_cny", "total_cny", "date",
                        "capacity_kw"))
    li = f"CREATE TABLE _li AS SELECT src.__row AS rid, {narrow} FROM {source} src"
    text_keys = (f"CREATE TABLE _text_keys AS SELECT row_number() OVER () AS tid, * "
                 f"FROM (SELECT DISTINCT {', '.join(keys)} FROM _li)")

    text_class = f"""
CREATE TABLE _text_class AS
SELECT c.tid, c.text, c.accel_model, c.accel_vendor, c.is_domestic, c.export_controlled,
    c.export_control_date, c.fp16_dense_tflops, c.tdp_w, c.category, c.ref_basis,
    c.cards_per_unit, c.condition_class, c.condition_conflict, c.cooling_type, c.shell_wording,
    c.spec_says_assembled, c.is_lump_sum, c.capacity_total_wording, c.unit_norm,
    CASE WHEN c.category = 'cooling_retrofit' AND c.is_lump_sum
         THEN try_cast(nullif(regexp_extract(c.text, {lit(vocab.SERVERS_COUNT)}, 1), '')
                       AS DOUBLE) END AS servers_in_text,
    b.brand_canonical,
    CASE WHEN c.brand_norm IS NULL THEN 'unknown'
         WHEN b.brand_canonical IS NOT NULL THEN 'mainstream'
         ELSE 'other' END AS brand_tier,
    CASE c.ref_basis
        WHEN 'server' THEN r.server_low * c.cards_per_unit / r.server_cards
        WHEN 'card' THEN r.card_low
        WHEN 'head' THEN r.head_low
        WHEN 'module' THEN r.module_low * c.cards_per_unit / 8
        WHEN 'kw' THEN k.low_per_kw
        WHEN 'retrofit' THEN rp.retrofit_low
    END AS ref_low_cny,
    CASE c.ref_basis
        WHEN 'server' THEN r.server_high * c.cards_per_unit / r.server_cards
        WHEN 'card' THEN r.card_high
        WHEN 'head' THEN r.head_high
        WHEN 'module' THEN r.module_high * c.cards_per_unit / 8
        WHEN 'kw' THEN k.high_per_kw
        WHEN 'retrofit' THEN rp.retrofit_high
    END AS ref_high_cny,
    CASE c.ref_basis
        WHEN 'server' THEN r.server_peak * c.cards_per_unit / r.server_cards
        WHEN 'card' THEN r.card_high
        WHEN 'head' THEN r.head_high
        WHEN 'module' THEN r.module_high * c.cards_per_unit / 8
        WHEN 'kw' THEN k.high_per_kw
        WHEN 'retrofit' THEN rp.retrofit_high
    END AS ref_peak_cny,
    CASE c.ref_basis
        WHEN 'server' THEN r.server_source WHEN 'card' THEN r.card_source
        WHEN 'head' THEN r.head_source WHEN 'module' THEN r.module_source
        WHEN 'kw' THEN k.source WHEN 'retrofit' THEN rp.retrofit_source
    END AS ref_source,
    -- like with like: the accelerator model, else the stated model, else the item name
    coalesce(c.accel_model,
             nullif(regexp_replace(lower(c.model), '[\\s\\-_/]+', '', 'g'), ''),
             regexp_replace(c.name_core, '[\\s\\-_/]+', '', 'g')) AS peer_key
FROM _items_class c
LEFT JOIN (
    SELECT d.brand_norm, min(rb.brand) AS brand_canonical
    FROM (SELECT DISTINCT brand_norm FROM _items_text WHERE brand_norm IS NOT NULL) d
    JOIN ref_brands rb ON contains(d.brand_norm, rb.alias)
    GROUP BY d.brand_norm
) b ON b.brand_norm = c.brand_norm
LEFT JOIN ref_accelerators r ON r.model_id = c.accel_model
LEFT JOIN ref_cooling k ON c.ref_basis = 'kw' AND k.cooling_type = c.cooling_type
CROSS JOIN (
    SELECT max(num_value) FILTER (WHERE key = 'retrofit_per_server_low') AS retrofit_low,
           max(num_value) FILTER (WHERE key = 'retrofit_per_server_high') AS retrofit_high,
           max(source) FILTER (WHERE key = 'retrofit_per_server_low') AS retrofit_source
    FROM ref_params
) rp"""

    # The per-tender figures, once, by GROUP BY (not a window): _lines and items both join
    # them, so both see the very same sums.
    tenders = """
CREATE TABLE _td AS
SELECT tender_id, min(date) AS first_date, sum(quantity * unit_price_cny) AS total_cny
FROM _li GROUP BY tender_id"""

    on = " AND ".join(f"li.{k} IS NOT DISTINCT FROM t.{k}" for k in keys)

    def figures(rows: str, rid: str, carry: Sequence[tuple[str, str]] = ()) -> str:
        """A subquery of each row's figures (``rows`` aliased li, its position ``rid``), with
        the ``carry`` columns ((li or c, name): of the row, of its text's recognition) beside
        them. The one definition of the figures: _lines and items compute them alike."""
        inner = [f'{t}."{n}"' for t, n in carry if n not in _INNER]
        outer = [f'f."{n}"' for _, n in carry if n not in _OUTER]
        return f"""(
SELECT {"".join(c + ", " for c in outer)}f.rid, f.tid, f.tender_id, f.category, f.peer_key,
    f.brand_tier, f.line_total_cny, f.total_diff_cny, f.card_count, f.capacity_scope,
    f.price_per_kw, f.retrofit_servers, f.purchase_date, f.basis_price_cny,
    f.basis_price_cny / f.ref_high_cny AS ratio_to_ref_high,
    f.basis_price_cny / f.ref_low_cny AS ratio_to_ref_low,
    f.line_total_cny / nullif(f.tender_total_cny, 0) AS line_value_share,
    f.tender_total_cny,
    CASE WHEN f.is_lump_sum THEN NULL
         WHEN f.basis_price_cny IS NOT NULL THEN f.basis_price_cny
         WHEN f.ref_basis IN ('kw', 'retrofit') THEN NULL
         ELSE f.unit_price_cny END AS peer_price_cny,
    CASE WHEN f.is_lump_sum THEN NULL
         WHEN f.basis_price_cny IS NOT NULL THEN f.ref_basis
         WHEN f.ref_basis IN ('kw', 'retrofit') THEN NULL
         ELSE 'unit:' || coalesce(f.unit_norm, '') END AS peer_basis
FROM (
    SELECT p.*,
        CASE p.ref_basis
            WHEN 'kw' THEN p.price_per_kw
            WHEN 'retrofit' THEN CASE WHEN p.retrofit_servers > 0
                                      THEN p.line_total_cny / p.retrofit_servers END
            WHEN 'server' THEN CASE WHEN NOT p.is_lump_sum THEN p.unit_price_cny END
            WHEN 'card' THEN CASE WHEN NOT p.is_lump_sum THEN p.unit_price_cny END
            WHEN 'head' THEN CASE WHEN NOT p.is_lump_sum THEN p.unit_price_cny END
            WHEN 'module' THEN CASE WHEN NOT p.is_lump_sum THEN p.unit_price_cny END
        END AS basis_price_cny
    FROM (
        SELECT {"".join(c + ", " for c in inner)}{rid} AS rid, c.tid, li.tender_id,
            li.unit_price_cny, c.category, c.peer_key, c.brand_tier, c.ref_basis,
            c.is_lump_sum, c.unit_norm, c.ref_low_cny, c.ref_high_cny,
            li.quantity * li.unit_price_cny AS line_total_cny,
            li.total_cny - li.quantity * li.unit_price_cny AS total_diff_cny,
            CASE WHEN c.cards_per_unit IS NOT NULL THEN li.quantity * c.cards_per_unit
            END AS card_count,
            CASE WHEN li.capacity_kw > 0 THEN
                CASE WHEN c.is_lump_sum OR c.capacity_total_wording THEN 'line' ELSE 'unit' END
            END AS capacity_scope,
            CASE WHEN c.category = 'liquid_cooling' AND li.capacity_kw > 0 THEN
                CASE WHEN c.is_lump_sum OR c.capacity_total_wording
                     THEN li.quantity * li.unit_price_cny / li.capacity_kw
                     ELSE li.unit_price_cny / li.capacity_kw END
            END AS price_per_kw,
            CASE WHEN c.category = 'cooling_retrofit' THEN
                CASE WHEN NOT c.is_lump_sum THEN li.quantity ELSE c.servers_in_text END
            END AS retrofit_servers,
            coalesce(li.date, td.first_date) AS purchase_date,
            td.total_cny AS tender_total_cny
        FROM {rows} li
        JOIN _text_keys t ON {on}
        JOIN _text_class c ON c.tid = t.tid
        LEFT JOIN _td td ON td.tender_id IS NOT DISTINCT FROM li.tender_id
    ) p
) f
)"""

    # The per-line figures, on narrow rows (no raw JSON, no texts): the peer statistics and
    # windows below sort and hash these, and wide rows made that most of enrich's time.
    lines = f"CREATE TABLE _lines AS SELECT * FROM {figures('_li', 'li.rid')}"

    peer_stats = """
CREATE TABLE _peer_stats AS
WITH g AS (
    SELECT category, peer_key, peer_basis,
        count(*) AS peer_count,
        median(peer_price_cny) AS peer_median,
        -- what tier-1 makers charge for the same thing: the yardstick for off-brand lines
        median(peer_price_cny) FILTER (WHERE brand_tier = 'mainstream') AS mainstream_median,
        count(*) FILTER (WHERE brand_tier = 'mainstream') AS mainstream_count,
        median(ln(peer_price_cny)) AS med_log
    FROM _lines
    WHERE peer_price_cny > 0
    GROUP BY ALL
), d AS (
    SELECT k.category, k.peer_key, k.peer_basis,
        median(abs(ln(k.peer_price_cny) - g.med_log)) AS mad_log,
        avg(abs(ln(k.peer_price_cny) - g.med_log)) AS meanad_log
    FROM _lines k
    JOIN g ON g.category = k.category AND g.peer_basis = k.peer_basis
        AND g.peer_key = k.peer_key
    WHERE k.peer_price_cny > 0
    GROUP BY ALL
), t AS (
    -- the tenders of each group by two GROUP BYs: count(DISTINCT) kept a set per group and
    -- was half of this statement's time
    SELECT category, peer_key, peer_basis, count(*) AS peer_tender_count
    FROM (SELECT DISTINCT category, peer_key, peer_basis, tender_id
          FROM _lines WHERE peer_price_cny > 0 AND tender_id IS NOT NULL)
    GROUP BY ALL
)
SELECT g.category, g.peer_key, g.peer_basis, g.peer_count,
    coalesce(t.peer_tender_count, 0) AS peer_tender_count, g.peer_median, g.mainstream_median,
    g.mainstream_count, g.med_log, d.mad_log, d.meanad_log
FROM g JOIN d ON g.category = d.category AND g.peer_basis = d.peer_basis
    AND g.peer_key = d.peer_key
LEFT JOIN t ON t.category IS NOT DISTINCT FROM g.category
    AND t.peer_basis IS NOT DISTINCT FROM g.peer_basis
    AND t.peer_key IS NOT DISTINCT FROM g.peer_key"""

    # The same peers bought within 90 days: prices drift more in a year than a brand premium.
    # Only priced lines enter the window (a WHERE, not a FILTER clause on the aggregate): a
    # filtered median cannot use DuckDB's sorted-tree window and costs four times as much.
    near = """
CREATE TABLE _peer_near AS
SELECT rid,
    median(peer_price_cny) OVER near AS peer_median_90d,
    count(peer_price_cny) OVER near AS peer_count_90d
FROM _lines
WHERE peer_price_cny > 0
WINDOW near AS (PARTITION BY category, peer_key, peer_basis ORDER BY purchase_date
                RANGE BETWEEN INTERVAL 90 DAYS PRECEDING AND INTERVAL 90 DAYS FOLLOWING)"""

    # What the same buyer paid tier-1 makers for the same thing in the same tender: the most
    # direct yardstick for an off-brand line (same date, same buyer, no drift). A GROUP BY
    # over the priced mainstream lines only (a group of every priced line was nearly one per
    # line); every priced line of a group gets it, count 0 when the group has none.
    tender_mainstream = """
CREATE TABLE _tender_mainstream AS
SELECT tender_id, category, peer_key, peer_basis,
    median(peer_price_cny) AS tender_mainstream_median,
    count(*) AS tender_mainstream_count
FROM _lines
WHERE peer_price_cny > 0 AND brand_tier = 'mainstream'
GROUP BY ALL"""

    # The one wide copy of the lines: the caller's rows, their figures, the recognition of
    # their text (by tid), the peer statistics and windows (by row position, rid = __row).
    # One statement, its joins in the order written (DuckDB's join-order optimiser is off for
    # it): the caller's rows probe, the recognition of their texts and the peer statistics
    # and windows are the build sides. The figures are computed again here, by the same
    # SQL as _lines' (``figures``), rather than joined from _lines by row position: _lines
    # and its hash table (10 M lines: 2.6 GB) are gone before items is built, which is the
    # memory peak of enrich, and items spills that much less. The rows come out in no
    # particular order; nothing reads items by position.
    # robust z: (log p - median) / (1.4826 MAD); when MAD is 0 (more than half the peers at
    # one price) fall back to 1.2533 x mean absolute deviation (Iglewicz & Hoaglin's
    # modified z); when both are 0 every peer has the same price and z is 0.
    recognised = ("text", "accel_model", "accel_vendor", "is_domestic", "export_controlled",
                  "export_control_date", "fp16_dense_tflops", "tdp_w", "category", "ref_basis",
                  "cards_per_unit", "condition_class", "condition_conflict", "cooling_type",
                  "shell_wording", "spec_says_assembled", "is_lump_sum", "brand_canonical",
                  "brand_tier", "ref_low_cny", "ref_high_cny", "ref_peak_cny", "ref_source",
                  "peer_key")
    carry = [("li", c) for c in line_item_columns] + [("c", c) for c in recognised]
    line_cols = ",\n    ".join(f'l."{c}"' for c in line_item_columns)
    items_table = f"""
CREATE TABLE items AS
SELECT {line_cols},
    l.text, l.accel_model, l.accel_vendor, l.is_domestic, l.export_controlled,
    l.export_control_date, l.fp16_dense_tflops, l.tdp_w, l.category, l.ref_basis,
    l.cards_per_unit, l.condition_class, l.condition_conflict, l.cooling_type, l.shell_wording,
    l.spec_says_assembled, l.is_lump_sum, l.line_total_cny, l.total_diff_cny, l.card_count,
    l.capacity_scope, l.price_per_kw, l.retrofit_servers, l.purchase_date, l.brand_canonical,
    l.brand_tier, l.basis_price_cny, l.ref_low_cny, l.ref_high_cny, l.ref_peak_cny,
    l.ref_source, l.ratio_to_ref_high, l.ratio_to_ref_low, l.line_value_share,
    l.tender_total_cny, l.peer_price_cny, l.peer_basis, l.peer_key,
    CASE WHEN l.export_control_date IS NOT NULL AND l.purchase_date IS NOT NULL
         THEN l.purchase_date >= l.export_control_date END AS after_export_control,
    date_diff('day', l.manufacture_date, l.purchase_date) AS manufacture_age_days,
    s.peer_count,
    s.peer_tender_count,
    s.peer_median,
    l.peer_price_cny / s.peer_median AS ratio_to_peer_median,
    coalesce(s.mainstream_count, 0) AS mainstream_peer_count,
    s.mainstream_median AS mainstream_peer_median,
    l.peer_price_cny / s.mainstream_median AS ratio_to_mainstream_median,
    CASE WHEN s.peer_count IS NULL OR s.peer_count < 2 THEN NULL
         WHEN s.mad_log > 0 THEN (ln(l.peer_price_cny) - s.med_log) / (1.4826 * s.mad_log)
         WHEN s.meanad_log > 0 THEN (ln(l.peer_price_cny) - s.med_log) / (1.2533 * s.meanad_log)
         ELSE 0.0 END AS robust_z,
    w.peer_median_90d,
    w.peer_count_90d,
    tm.tender_mainstream_median,
    CASE WHEN l.peer_price_cny > 0 THEN coalesce(tm.tender_mainstream_count, 0) END
        AS tender_mainstream_count
FROM {figures(source, "li.__row", carry)} l
LEFT JOIN _peer_stats s
    ON l.peer_price_cny > 0 AND s.category = l.category AND s.peer_basis = l.peer_basis
    AND s.peer_key = l.peer_key
LEFT JOIN _peer_near w ON w.rid = l.rid
LEFT JOIN _tender_mainstream tm
    ON l.peer_price_cny > 0 AND tm.tender_id IS NOT DISTINCT FROM l.tender_id
    AND tm.category IS NOT DISTINCT FROM l.category
    AND tm.peer_key IS NOT DISTINCT FROM l.peer_key
    AND tm.peer_basis IS NOT DISTINCT FROM l.peer_basis"""

    assemblies = """
CREATE TABLE tender_assemblies AS
WITH modules AS (
    SELECT tender_id, accel_model, item_id, quantity, unit_price_cny, cards_per_unit,
        purchase_date,
        row_number() OVER (PARTITION BY tender_id, accel_model ORDER BY item_id) AS rn,
        count(*) OVER (PARTITION BY tender_id, accel_model) AS n
    FROM items WHERE category = 'gpu_module' AND NOT is_lump_sum
), module_models AS (
    SELECT tender_id, accel_model, count(*) OVER (PARTITION BY tender_id) AS models_in_tender
    FROM (SELECT DISTINCT tender_id, accel_model FROM modules)
), heads AS (
    -- a head that names no GPU belongs to the tender's module model, when there is only one
    SELECT h.tender_id, coalesce(h.accel_model, m.accel_model) AS accel_model, h.item_id,
        h.quantity, h.unit_price_cny
    FROM items h
    LEFT JOIN module_models m
        ON m.tender_id = h.tender_id AND h.accel_model IS NULL AND m.models_in_tender = 1
    WHERE h.category = 'machine_head' AND NOT h.is_lump_sum
), heads_ranked AS (
    SELECT *, row_number() OVER (PARTITION BY tender_id, accel_model ORDER BY item_id) AS rn,
        count(*) OVER (PARTITION BY tender_id, accel_model) AS n
    FROM heads
), pairs AS (
    -- pair in line order; a single line on one side pairs with every line of the other
    SELECT m.tender_id, m.accel_model,
        h.item_id AS head_item_id, m.item_id AS module_item_id,
        h.quantity AS head_qty, m.quantity AS module_qty,
        h.unit_price_cny AS head_unit_price_cny, m.unit_price_cny AS module_unit_price_cny,
        m.cards_per_unit, m.purchase_date
    FROM modules m
    JOIN heads_ranked h
        ON h.tender_id = m.tender_id AND h.accel_model IS NOT DISTINCT FROM m.accel_model
        AND (h.rn = m.rn OR h.n = 1 OR m.n = 1)
), complete_peers AS (
    -- what the batch pays for a branded complete server of the model near the pair's date:
    -- prices drift more within a year (H100 2.75 M -> 2.4 M in 2024) than the 5-8 % assembly
    -- discount, so a static reference cannot tell a discount from drift; +-90 days can.
    -- A window over the servers, with each pair as a priceless row among them, not a join of
    -- every pair with every server within 90 days: that join grows with the square of the
    -- batch (10 M lines: tens of billions of rows). Same medians and counts.
    -- Each pair enters as two rows priced -inf and +inf, not as one priceless row: a median
    -- is the same with one value added below every price and one above, and a window whose
    -- frames hold NULLs leaves DuckDB's sorted-tree median for a slow path (10 M lines:
    -- 6.4 CPU-s for a quarter of a million rows). The count counts the servers.
    SELECT head_item_id, module_item_id,
        CASE WHEN complete_peer_count > 0 THEN median_price END AS complete_peer_median_cny,
        complete_peer_count
    FROM (
        SELECT is_pair, price, head_item_id, module_item_id,
            median(price) OVER near AS median_price,
            sum(CASE WHEN is_pair THEN 0 ELSE 1 END) OVER near::BIGINT AS complete_peer_count
        FROM (
            SELECT DISTINCT TRUE AS is_pair, head_item_id, module_item_id, accel_model,
                cards_per_unit, purchase_date, bound.price
            FROM pairs, (VALUES ('-infinity'::DOUBLE), ('infinity'::DOUBLE)) bound(price)
            UNION ALL
            SELECT FALSE, NULL, NULL, c.accel_model, c.cards_per_unit, c.purchase_date,
                c.unit_price_cny
            -- only the models (and card counts) some pair has: a window partition without
            -- a pair would be computed for nothing
            FROM items c SEMI JOIN (SELECT DISTINCT accel_model, cards_per_unit FROM pairs) k
                ON k.accel_model = c.accel_model AND k.cards_per_unit = c.cards_per_unit
            WHERE c.category = 'gpu_server' AND c.accel_model IS NOT NULL
                AND c.cards_per_unit IS NOT NULL AND c.purchase_date IS NOT NULL
                AND NOT c.is_lump_sum AND NOT c.spec_says_assembled
                AND c.brand_tier <> 'other'
                AND c.condition_class NOT IN ('used', 'refurbished') AND c.unit_price_cny > 0
        )
        WINDOW near AS (PARTITION BY accel_model, cards_per_unit ORDER BY purchase_date
                        RANGE BETWEEN INTERVAL 90 DAYS PRECEDING
                              AND INTERVAL 90 DAYS FOLLOWING)
    )
    WHERE is_pair AND price < 0  -- one of the pair's two rows (both have the same frame)
), params AS (
    SELECT max(num_value) FILTER (WHERE key = 'assembly_discount_low') AS disc_low,
           max(num_value) FILTER (WHERE key = 'assembly_discount_high') AS disc_high
    FROM ref_params
)
SELECT p.tender_id, p.accel_model, p.head_item_id, p.module_item_id,
    p.head_qty, p.module_qty,
    least(p.head_qty, p.module_qty) AS servers,
    p.head_unit_price_cny, p.module_unit_price_cny,
    p.head_unit_price_cny + p.module_unit_price_cny AS price_per_server_cny,
    r.server_low * p.cards_per_unit / r.server_cards AS complete_ref_low_cny,
    r.server_high * p.cards_per_unit / r.server_cards AS complete_ref_high_cny,
    r.server_peak * p.cards_per_unit / r.server_cards AS complete_ref_peak_cny,
    p.purchase_date,
    cp.complete_peer_median_cny,
    cp.complete_peer_count,
    1 - (p.head_unit_price_cny + p.module_unit_price_cny)
        / (r.server_low * p.cards_per_unit / r.server_cards) AS discount_vs_ref_low,
    1 - (p.head_unit_price_cny + p.module_unit_price_cny)
        / (r.server_high * p.cards_per_unit / r.server_cards) AS discount_vs_ref_high,
    params.disc_low AS expected_discount_low,
    params.disc_high AS expected_discount_high,
    r.server_high * p.cards_per_unit / r.server_cards * (1 - params.disc_low)
        AS expected_assembled_high_cny,
    least(p.head_qty, p.module_qty) * greatest(0.0,
        p.head_unit_price_cny + p.module_unit_price_cny
        - r.server_high * p.cards_per_unit / r.server_cards * (1 - params.disc_low))
        AS excess_cny
FROM pairs p
CROSS JOIN params
LEFT JOIN complete_peers cp
    ON cp.head_item_id = p.head_item_id AND cp.module_item_id = p.module_item_id
LEFT JOIN ref_accelerators r ON r.model_id = p.accel_model"""

    # Windows only over the serials seen in more than one tender (a GROUP BY finds them):
    # the other serials cannot be reused, and windows over all of them cost most of the time.
    serials = """
CREATE TABLE serial_reuse AS
WITH s AS (
    SELECT DISTINCT i.item_id, i.tender_id, i.purchase_date,
        -- compared on letters and digits only: "SN-0002" and "sn 0002" are one serial
        regexp_replace(upper(sn.serial), '[^A-Z0-9]', '', 'g') AS serial
    FROM (SELECT item_id, tender_id, purchase_date, serial_numbers FROM items
          WHERE len(serial_numbers) > 0) i, unnest(i.serial_numbers) AS sn(serial)
), valid AS (
    -- placeholders (N/A, 无, -, 待定) are not serial numbers: at least 4 letters/digits
    SELECT * FROM s WHERE length(serial) >= 4
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
GROUP BY ALL"""

    # Windows only over the lines whose key may repeat, not over every line: a GROUP BY of a
    # hash of the tender, quantity and unit price (numbers and one text: no lower() or trim()
    # of a million names) finds the candidates, and NULLs hash alike, as the window
    # partitions group them. The windows count by the full key, so a hash collision or a
    # candidate with another name adds nothing (1 M lines: 0.40 -> 0.10 CPU-s).
    duplicates = """
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
FROM k WHERE dup_count > 1"""

    compute = f"""
CREATE TABLE tender_compute AS
SELECT tender_id,
    max(claimed_pflops) AS claimed_pflops,
    sum(card_count * fp16_dense_tflops) FILTER (WHERE category IN ({accel_in})) / 1000.0
        AS actual_pflops,
    max(claimed_pflops)
        / nullif(sum(card_count * fp16_dense_tflops)
                 FILTER (WHERE category IN ({accel_in})) / 1000.0, 0) AS claim_ratio,
    count(*) FILTER (WHERE category IN ({accel_in})) AS accel_lines,
    coalesce(sum(card_count) FILTER (WHERE category IN ({accel_in})), 0) AS cards,
    count(*) FILTER (WHERE category IN ({accel_in}) AND fp16_dense_tflops IS NULL)
        AS unknown_tflops_lines,
    min(item_id) FILTER (WHERE category IN ({accel_in})) AS first_accel_item_id,
    -- lines that name an accelerator: a CPU server (管理节点服务器) is not compute
    list(item_id ORDER BY item_id) FILTER (
        WHERE category IN ({accel_in}) AND (accel_model IS NOT NULL OR is_domestic))
        AS accel_item_ids
FROM items
GROUP BY tender_id"""

    # The public views are tables: every rule and model reads them, so each is computed
    # once here rather than once per reader. The internal steps are dropped, and line_items
    # becomes a view of items' first columns: one wide copy of the lines, not two. What items
    # does not read goes before it is built (_lines too: items computes the figures itself;
    # its build sides and the new table at once are the memory peak of enrich), the rest
    # after.
    early_drops = ["DROP VIEW _items_class", "DROP VIEW _items_accel", "DROP VIEW _items_text",
                   "DROP TABLE _li", "DROP TABLE _lines"]
    late_drops = [f"DROP TABLE {t}" for t in ("_tender_mainstream", "_peer_near", "_peer_stats",
                                              "_td", "_text_class", "_text_keys")]
    line_items_view = ("CREATE VIEW line_items AS SELECT "
                       + ", ".join(f'"{c}"' for c in line_item_columns) + " FROM items")
    return [li, text_keys, text_view, accel_view, class_view, text_class, tenders, lines,
            peer_stats, near, tender_mainstream, *early_drops,
            "SET disabled_optimizers = 'join_order,build_side_probe_side'", items_table,
            "RESET disabled_optimizers", *late_drops, line_items_view, assemblies, serials,
            duplicates, compute]
