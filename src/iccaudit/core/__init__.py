"""The contracts every stage shares: table schemas and vocabularies (:mod:`.schema`), where the
bundled rule pack lives (:mod:`.paths`), and DuckDB helpers (:mod:`.duck`). Imports no stage."""
