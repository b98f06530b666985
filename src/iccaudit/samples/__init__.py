"""Deterministic labelled sample corpora of ICC tender files with injected schemes.

``write_corpus(out, seed, tenders)`` writes ``out/tenders/`` (one tender per file, every format
and shape the ingest handles: CSV UTF-8 / BOM / GB18030, TSV, XLSX with title blocks, merged
cells, two sheets and note sheets, Parquet, JSON, JSONL), ``out/labels.csv`` (file, sheet,
line_no, mechanism, novel, note) and ``out/lookalikes.csv`` (legitimate lines that resemble a
scheme and must not be flagged), and ``out/formats/`` (the first CSV tender again as Word, PDF,
HTML and OCDS). ``write_large_csv(out, rows, seed)`` writes one large CSV of
exactly ``rows`` line items with the same schemes at low rates.

One numpy Generator seeded once drives everything; the same seed gives byte-identical files.
"""

from iccaudit.samples.corpus import write_corpus, write_large_csv

__all__ = ["write_corpus", "write_large_csv"]
