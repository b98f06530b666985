-- @fold(expr)
-- Lower case, full-width characters folded to ASCII (Ｈ１００ -> h100); 整机柜 is a rack,
-- not a complete server. translate() is costly, so it runs only on the few strings that hold
-- full-width characters.
replace(CASE WHEN regexp_matches(lower({expr}), $fullwidth_class)
    THEN translate(lower({expr}), $fullwidth, $ascii)
    ELSE lower({expr}) END, '整机柜', '机柜')
