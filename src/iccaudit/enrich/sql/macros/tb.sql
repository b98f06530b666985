-- @tb(text, pattern, number, unit)
-- A storage capacity in decimal TB: the number of group ``number`` in the unit of group
-- ``unit`` (tb, tib, pb, pib) of ``pattern`` matched in ``text``.
(@num({text}, {pattern}, {number}) * CASE regexp_extract({text}, {pattern}, {unit})
    WHEN 'tb' THEN 1 WHEN 'tib' THEN $tib_in_tb WHEN 'pb' THEN $pb_in_tb
    WHEN 'pib' THEN $pib_in_tb END)
