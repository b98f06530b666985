-- @vat_factor(row, text)
-- What makes a price of ``row`` (a line) comparable with the reference book, which is
-- tax-inclusive: 1 + the VAT rate when the line's header (price_includes_vat) or its text
-- (``text``.vat_in_text) says the price excludes VAT (the stated rate, else
-- $vat_rate_equipment), else 1.
CASE WHEN NOT coalesce({row}.price_includes_vat, {text}.vat_in_text, true)
     THEN 1 + coalesce({text}.vat_rate_in_text, $vat_rate_equipment) ELSE 1 END
