"""Auditor outputs, read from the run's stored tables only: the HTML report (:mod:`.html`),
the Excel/CSV/Parquet export (:mod:`.export`), the score summary (:mod:`.summary`) and recall /
precision against labels (:mod:`.evaluate`)."""
