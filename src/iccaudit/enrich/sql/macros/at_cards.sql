-- @at_cards(value, cards)
-- A reference ``value`` of the price segment ``rp`` for a line of ``cards`` accelerator cards:
-- server and module references are priced for rp.cards cards and scale with the line's;
-- card and head references (rp.cards NULL) do not scale.
CASE WHEN rp.cards IS NULL THEN {value} ELSE {value} * {cards} / rp.cards END
