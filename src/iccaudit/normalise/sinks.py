"""Where normalised line items go, batch by batch, in input order: memory (:class:`ItemSink`) or
a Parquet file for a run larger than memory (:class:`ParquetSink`); and the order they are
numbered in (:func:`item_order`)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit.core import schema
from iccaudit.normalise.raw import raw_text, with_raw_text
from iccaudit.normalise.tables import ITEM_SCHEMA

if TYPE_CHECKING:
    import pyarrow.parquet as pq


class ItemSink:
    """Where normalised line items go, batch by batch, in input order.

    The default keeps them in memory (:attr:`IngestBatch.items_arrow`); the pipeline passes a
    sink writing to a Parquet file (:class:`ParquetSink`) when a run is larger than memory.
    """

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.rows = 0

    def add(self, items: pa.Table) -> None:
        """Take one batch of line items (columns of ``table.ITEM_SCHEMA``)."""
        self.tables.append(items)
        self.rows += items.num_rows

    def discard(self, source_files: set[str]) -> None:
        """Drop the items of files that failed after some of their batches were added."""
        keep = pa.array(sorted(source_files), pa.large_string())
        self.tables = [t.filter(pc.invert(pc.is_in(t["source_file"], keep)))
                       for t in self.tables]
        self.rows = sum(t.num_rows for t in self.tables)

    def result(self) -> pa.Table | None:
        """All items in one table (None for a sink that keeps them elsewhere).

        ``raw`` stays the cells themselves (a struct column, see :func:`table.raw_text`)
        when every batch has the same header layout, as the pieces of one large file do;
        batches of different kinds have it as JSON text.
        """
        if not self.tables:
            return ITEM_SCHEMA.empty_table()
        if len({t.schema.field("raw").type for t in self.tables}) > 1:
            self.tables = [with_raw_text(t) for t in self.tables]
        return pa.concat_tables(self.tables)


class ParquetSink(ItemSink):
    """Line items written to a Parquet file batch by batch (a run larger than memory).

    Each row gets ``seq``, its place in input order; :attr:`in_order` says whether input
    order is already (source_file, source_sheet, source_row) order, so numbering the items
    needs no sort.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.failed: set[str] = set()
        self.in_order = True
        self._writer: pq.ParquetWriter | None = None
        #: the struct type ``raw`` is staged as (None: staged as JSON text). The cells of the
        #: first batch's header layout (a large file's batches all have it): their JSON text
        #: is made once, by the store, and the file is a third smaller to write and to read
        #: (10 M lines: -6 CPU-seconds)
        self._cells: pa.DataType | None = None
        self._last: tuple | None = None
        # Batches are encoded and written in a thread of their own (Parquet's encoder works
        # outside the GIL), one at a time and in order, while the caller reads and hands out
        # the next batch: written in the caller's thread, they held up the normalisers'
        # supply (10 M lines: 12 s of the ingest).
        self._writing: Future | None = None
        self._pool: ThreadPoolExecutor | None = None

    def add(self, items: pa.Table) -> None:
        import pyarrow.parquet as pq

        n = items.num_rows
        if not n:
            return
        if self.in_order:
            first = tuple(items[c][0].as_py() for c in ITEM_ORDER)
            self.in_order = item_order(items) is None and (
                self._last is None or _key(self._last) <= _key(first))
            self._last = tuple(items[c][n - 1].as_py() for c in ITEM_ORDER)
        if self._writer is None and schema.raw_is_cells(items.schema):
            self._cells = items.schema.field("raw").type
        seq = pa.array(np.arange(self.rows, self.rows + n, dtype="int64"))
        table = self._staged(items).append_column("seq", seq)  # one schema for the file
        if self._writer is None:
            # written once, read three times (enrich twice, the store once): text in
            # dictionaries (Parquet falls back to plain where one grows too large) reads a
            # third faster, as DuckDB keeps them; no statistics, nothing filters on them
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="snappy",
                                            use_dictionary=_text_paths(table.schema),
                                            write_statistics=False)
            self._pool = ThreadPoolExecutor(max_workers=1,
                                            thread_name_prefix="iccaudit-parquet")
        self._wait()  # one batch in flight: memory stays a batch or two
        self._writing = self._pool.submit(self._writer.write_table, table)
        self.rows += n

    def _staged(self, items: pa.Table) -> pa.Table:
        """``items`` in the file's schema: ``raw`` as JSON text, or as the cells of the first
        batch's layout with :data:`schema.RAW_JSON_BESIDE_CELLS` holding the JSON text of a
        batch of another layout (the cells then null)."""
        if self._cells is None:
            return with_raw_text(items)
        i = items.schema.get_field_index("raw")
        raw: pa.Array | pa.ChunkedArray = items.column(i)
        text: pa.Array | pa.ChunkedArray
        if raw.type == self._cells:
            text = pa.nulls(len(raw), pa.large_string())
        else:
            text = raw_text(raw).cast(pa.large_string())
            raw = pa.nulls(len(raw), self._cells)
        return (items.set_column(i, pa.field("raw", self._cells), raw)
                .append_column(pa.field(schema.RAW_JSON_BESIDE_CELLS, pa.large_string()), text))

    def _wait(self) -> None:
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()  # a write error is raised here, in the caller's thread

    def discard(self, source_files: set[str]) -> None:
        self.failed |= set(source_files)  # left out when the items are numbered

    def result(self) -> None:
        try:
            self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._writer is not None:
                self._writer.close()
                self._writer = None


def _text_paths(arrow_schema: pa.Schema) -> list[str]:
    """The Parquet paths of the text columns, a struct's text fields included (``raw.单价``)."""
    def text(t: pa.DataType) -> bool:
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    paths = []
    for f in arrow_schema:
        if text(f.type):
            paths.append(f.name)
        elif pa.types.is_struct(f.type):
            paths += [f"{f.name}.{c.name}" for c in f.type if text(c.type)]
    return paths


#: The order line items are numbered in (item_id): file, sheet (none first), row.
ITEM_ORDER = ("source_file", "source_sheet", "source_row")


def item_order(items: pa.Table) -> pa.Array | None:
    """The indices that put ``items`` in :data:`ITEM_ORDER`, or None when they are in it."""
    if items.num_rows > 1 and _one_sheet_in_row_order(items):
        return None  # one large file, as read: a look at the row numbers, no sort
    # null placement per key (pyarrow >= 25); the stubs know only (name, order) pairs
    keys: list[Any] = [(c, "ascending", "at_start") for c in ITEM_ORDER]
    order = pc.sort_indices(items, sort_keys=keys)
    return None if (order.to_numpy() == np.arange(items.num_rows)).all() else order


def _one_sheet_in_row_order(items: pa.Table) -> bool:
    """Whether every row is of one file and one sheet (or none), rows numbered upwards."""
    file, sheet = items.column("source_file"), items.column("source_sheet")
    if file.null_count or pc.count_distinct(file).as_py() != 1:
        return False
    if sheet.null_count not in (0, len(sheet)) or pc.count_distinct(sheet).as_py() > 1:
        return False
    rows = items.column("source_row")
    return not rows.null_count and bool((np.diff(rows.to_numpy()) > 0).all())


def _key(k: tuple) -> tuple:
    """A (file, sheet, row) key comparable with None sheets first."""
    return (k[0], k[1] is not None, k[1] or "", k[2])
