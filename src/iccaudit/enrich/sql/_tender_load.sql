-- _tender_load: the IT load a tender's own accelerators put on its cooling, for cooling lines
-- that state no capacity (冷板式液冷系统，含CDU, one 套): Σ quantity × cards per unit × the
-- accelerator's TDP, times $server_kw_per_accelerator_kw (a server draws more than its
-- accelerators: CPUs, memory, NICs, fans), times $cooling_capacity_factor (the design margin
-- of a cooling plant over its load: the high end, so the implied price per kW errs low).
-- Lump sums and lines of a model without a TDP in the reference add nothing; load_lines names
-- the lines used (their line numbers, the first $load_lines_listed). cooling_unstated_cny:
-- what the tender's liquid-cooling lines without a stated capacity cost together (they cool
-- that load together).
CREATE TABLE _tender_load AS
SELECT tender_id,
    load_w / 1000 * $server_kw_per_accelerator_kw AS it_load_kw,
    load_w / 1000 * $server_kw_per_accelerator_kw * $cooling_capacity_factor AS cooling_kw,
    load_cards, load_lines, load_line_count, cooling_unstated_cny
FROM (
SELECT li.tender_id,
    sum(li.quantity * c.cards_per_unit * c.tdp_w) FILTER (WHERE @is_load(li, c)) AS load_w,
    sum(li.quantity * c.cards_per_unit) FILTER (WHERE @is_load(li, c)) AS load_cards,
    list_slice(list(coalesce(li.line_no, '#' || CAST(li.rid AS VARCHAR)) ORDER BY li.rid)
                   FILTER (WHERE @is_load(li, c)), 1, $load_lines_listed) AS load_lines,
    count(*) FILTER (WHERE @is_load(li, c)) AS load_line_count,
    sum(li.quantity * li.unit_price_cny) FILTER (
        WHERE c.category = 'liquid_cooling' AND coalesce(li.capacity_kw, 0) <= 0)
        AS cooling_unstated_cny
FROM _li li
@text_of(li)
WHERE c.category IN ($accel_categories) OR c.category = 'liquid_cooling'
GROUP BY li.tender_id
)
WHERE load_w > 0 AND cooling_unstated_cny > 0
