"""Normalise: raw tables -> one canonical table of line items, with every row accounted for.

:func:`ingest` reads files and folders (through :mod:`iccaudit.read`) and returns an
:class:`IngestBatch`: line items, rejects (with a reason), non-items (titles, headers, blanks,
totals, notes), one accounting row per file (``rows_read == line_items + rejects +
non_items``), the files skipped and the one-line errors.

The steps, each a module: :mod:`.plan` finds a table's header and title block;
:mod:`.rows` splits its rows three ways and parses the values (:mod:`.values`, headers in
:mod:`.headers`), set-at-a-time over batches of many tables; :mod:`.raw` keeps each line's
original cells; :mod:`.sinks` takes the items in input order (memory or Parquet);
:mod:`.files` plans and accounts one file; :mod:`.batches` drives the batches.
"""

from iccaudit.normalise.batches import IngestBatch, ingest
from iccaudit.normalise.sinks import ITEM_ORDER, ItemSink, ParquetSink, item_order
from iccaudit.read import READERS, IngestError

__all__ = [
    "ITEM_ORDER", "READERS", "IngestBatch", "IngestError", "ItemSink", "ParquetSink",
    "ingest", "item_order",
]
