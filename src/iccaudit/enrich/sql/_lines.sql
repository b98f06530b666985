-- _lines: the per-line figures (@figures), on narrow rows (no raw JSON, no texts): the peer
-- statistics and windows sort and hash these, and wide rows made that most of enrich's time.
-- {carry_inner} and {carry_outer} are empty: nothing is carried.
CREATE TABLE _lines AS SELECT * FROM @figures(_li, li.rid, {carry_inner}, {carry_outer})
