-- @dated(side, on)
-- The reference ``side`` (low or high) of the price segment ``rp`` (a row of
-- ref_price_points) at the date ``on``: linear by day between the segment's two points, the
-- point itself on a segment with one (before the first point, after the last, undated).
(rp.from_{side} + CASE WHEN rp.to_date IS NULL THEN 0.0
    ELSE date_diff('day', rp.from_date, {on}) / date_diff('day', rp.from_date, rp.to_date)
    END * (rp.to_{side} - rp.from_{side}))
