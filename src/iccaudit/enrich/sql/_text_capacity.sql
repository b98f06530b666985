-- _text_capacity: the capacities a rule author prices per unit of (¥/TB, ¥/port, ¥/kW), read
-- from each distinct text of its category (rules/lexicon/capacity.yaml): storage in decimal TB (usable
-- when a usable figure is stated, else raw, else a product of drives, else any capacity),
-- network ports and their speed, rack and power lines' kW and kVA.
CREATE TABLE _text_capacity AS
SELECT tid,
    CASE WHEN category = 'storage' THEN coalesce(
        @tb(text, $storage_usable, 1, 2), @tb(text, $storage_raw, 1, 2),
        @num(text, $storage_product, 1) * @tb(text, $storage_product, 2, 3),
        @tb(text, $storage_any, 1, 2)) END AS storage_tb,
    CASE WHEN category <> 'storage' THEN NULL
         WHEN regexp_matches(text, $storage_usable) THEN 'usable'
         WHEN regexp_matches(text, $storage_raw) THEN 'raw'
         WHEN regexp_matches(text, $storage_product) OR regexp_matches(text, $storage_any)
         THEN 'unstated' END AS storage_capacity_basis,
    CASE WHEN category = 'network' THEN coalesce(
        @num(text, $speed_x_ports, 2), @num(text, $speed_ports, 2),
        @num(text, $ports_x_speed, 1), @num(text, $ports_speed, 1),
        @num(text, $ports_of_speed, 1), @num(text, $ports_only, 1)) END AS port_count,
    CASE WHEN category = 'network' THEN coalesce(
        @num(text, $speed_x_ports, 1), @num(text, $speed_ports, 1),
        @num(text, $ports_x_speed, 2), @num(text, $ports_speed, 2),
        @num(text, $ports_of_speed, 2)) END AS port_speed_gbps,
    CASE WHEN category = 'rack_power' THEN coalesce(
        @num(text, $power_kw, 1), @num(text, $power_mw, 1) * $kw_in_mw) END AS power_kw,
    CASE WHEN category = 'rack_power' THEN @num(text, $power_kva, 1) END AS power_kva
FROM _text_class
