-- @says(text, pattern, exclusion)
-- Whether ``text`` says a concept of the lexicon: its ``exclusion`` (look-alike phrases,
-- rules/lexicon/) removed first, then its ``pattern`` matched. Pass $concept, $concept_not.
regexp_matches(regexp_replace({text}, {exclusion}, ' ', 'g'), {pattern})
