"""Auditor outputs: the HTML report (:mod:`.html`) and the Excel/CSV/Parquet export (:mod:`.export`)."""
