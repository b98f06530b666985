-- @category(core, full)
-- Category from wording, first hit wins; NULL when nothing matches. ``core`` is the text with
-- parenthesised asides removed (the head noun of an item name), ``full`` keeps them: 机头
-- anywhere in a name makes a machine head ("服务器（机头）").
CASE
    WHEN @says({core}, $retrofit, $retrofit_not) THEN 'cooling_retrofit'
    WHEN @says({core}, $service, $service_not) THEN 'service'
    @category_goods({core}, {full})
    ELSE NULL END
