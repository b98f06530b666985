-- @num(text, pattern, group)
-- The number a pattern's group captures in ``text``, as a DOUBLE; NULL when it does not match.
try_cast(nullif(regexp_extract({text}, {pattern}, {group}), '') AS DOUBLE)
