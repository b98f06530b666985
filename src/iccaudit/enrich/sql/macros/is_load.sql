-- @is_load(row, text)
-- The line ``row`` (its text's recognition ``text``) puts accelerator load on the tender's
-- cooling: an accelerator line, not a lump sum, of a model with a TDP, with cards and a
-- quantity.
({text}.category IN ($accel_categories) AND NOT {text}.is_lump_sum AND {text}.tdp_w > 0
 AND {text}.cards_per_unit > 0 AND {row}.quantity > 0)
