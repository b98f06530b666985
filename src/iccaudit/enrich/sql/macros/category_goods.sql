-- @category_goods(core, full)
-- The WHEN branches of @category after retrofit and service: the goods, in the order they
-- are tried (the text of the spec and model columns tries these alone, without service).
WHEN regexp_matches({full}, $head) THEN 'machine_head'
    WHEN regexp_matches({core}, $module) AND NOT regexp_matches({core}, '光模块|optical|transceiver')
        THEN 'gpu_module'
    WHEN regexp_matches({core}, $server) AND regexp_matches({core}, $storage)
        AND NOT regexp_matches({core}, $gpu_hint) THEN 'storage'
    -- "服务器机柜" is a rack for servers: the head noun (last word) decides
    WHEN regexp_matches({core}, '机柜\s*$') AND NOT regexp_matches({core}, $gpu_hint)
        AND NOT regexp_matches({core}, $liquid) THEN 'rack_power'
    WHEN regexp_matches({core}, $server) THEN 'gpu_server'
    WHEN regexp_matches({core}, $network) THEN 'network'
    WHEN regexp_matches({core}, $card) THEN 'gpu_card'
    WHEN regexp_matches({core}, $liquid) THEN 'liquid_cooling'
    WHEN regexp_matches({core}, $storage) THEN 'storage'
    WHEN regexp_matches({core}, $rack) THEN 'rack_power'
