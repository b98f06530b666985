-- @worn(col, used)
-- refurbished or used by the wording of ``col`` (``used``: the pattern of used wording that
-- column may hold), else NULL.
CASE
    WHEN regexp_matches({col}, $refurbished) THEN 'refurbished'
    WHEN regexp_matches({col}, {used}) THEN 'used'
    ELSE NULL END
