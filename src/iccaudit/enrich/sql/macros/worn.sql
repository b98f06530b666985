-- @worn(col, used, used_not)
-- refurbished or used by the wording of ``col`` (``used``, ``used_not``: the used wording
-- that column may hold, a concept of the lexicon), else NULL.
CASE
    WHEN @says({col}, $refurbished, $refurbished_not) THEN 'refurbished'
    WHEN @says({col}, {used}, {used_not}) THEN 'used'
    ELSE NULL END
