-- @category_goods(core, full)
-- The WHEN branches of @category after retrofit and service: the goods, in the order they
-- are tried (the text of the spec and model columns tries these alone, without service).
WHEN @says({full}, $head, $head_not) THEN 'machine_head'
    WHEN @says({core}, $module, $module_not) THEN 'gpu_module'
    WHEN @says({core}, $server, $server_not) AND @says({core}, $storage, $storage_not)
        AND NOT @says({core}, $gpu_hint, $gpu_hint_not) THEN 'storage'
    -- "服务器机柜" is a rack for servers: the head noun (last word) decides
    WHEN @says({core}, $rack_noun, $rack_noun_not) AND NOT @says({core}, $gpu_hint, $gpu_hint_not)
        AND NOT @says({core}, $liquid, $liquid_not) THEN 'rack_power'
    WHEN @says({core}, $server, $server_not) THEN 'gpu_server'
    WHEN @says({core}, $network, $network_not) THEN 'network'
    WHEN @says({core}, $card, $card_not) THEN 'gpu_card'
    WHEN @says({core}, $liquid, $liquid_not) THEN 'liquid_cooling'
    WHEN @says({core}, $storage, $storage_not) THEN 'storage'
    WHEN @says({core}, $rack, $rack_not) THEN 'rack_power'
    WHEN @says({core}, $other_goods, $other_goods_not) THEN 'other'
