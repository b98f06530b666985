"""Ingest: tender files of every supported format -> one canonical table of line items.

``ingest(paths)`` reads files and folders (folders recursively, in sorted order) and returns an
:class:`IngestBatch`: line items, rejects (rows that cannot be a line item, with a reason from
``schema.REJECT_REASONS``), non-items (title, header, blank, total and note rows), one
accounting row per file, the files skipped and the one-line errors. Nothing is lost and nothing
is silent: for every file ``rows_read == line_items + rejects + non_items``, checked here.

Formats (:data:`iccaudit.ingest.readers.READERS`): CSV/TSV (UTF-8, UTF-8 with BOM, GB18030/GBK,
delimiter sniffed), XLSX/XLSM (every worksheet, hidden ones too; merged cells filled from their
top-left value), Parquet, JSON (a list of objects or ``{"items": [...]}`` with tender-level
keys) and JSONL.

Row numbers: ``source_row`` is the row a person sees - the Excel row, the editor line of a
CSV record (the header line is row 1 when it is the first line), the record number of a
Parquet/JSON file and the line of a JSONL file.

Limits
------
- A file larger than 512 MB (``readers.MAX_FILE_BYTES``) is a file error, not read, unless it
  is a UTF-8 CSV/TSV without blank lines: DuckDB streams those (up to
  ``readers.MAX_TEXT_BYTES``, 64 GB) batch by batch, never holding the file in memory.
- CSV/TSV files of 8 MB and more (``readers.LARGE_TEXT_BYTES``) are parsed by DuckDB's CSV
  reader; its row numbers are checked against the file's line count, and a file it cannot
  read exactly is read by the general (pandas) reader. Tests hold both to the same output.
- An XLSX that inflates beyond 1 GB, or more than 100x once past 16 MB, is refused before
  parsing as a possible zip bomb (``readers.MAX_XLSX_UNCOMPRESSED``, ``MAX_XLSX_RATIO``).
- A cell longer than 32 k characters (``table.MAX_CELL_CHARS``) makes its row a reject
  ``value_too_long``.
- The header row is searched in the first 30 rows of a sheet (``headers.HEADER_SCAN_ROWS``).
- A corrupt or truncated file is a file error ``cannot read: ...``; binary data named .csv is
  ``cannot read: binary data, not a text table``. No traceback reaches the user.
- A compute claim column (算力) whose value cannot be read is left NULL for that row (the title
  block's claim, if any, is used); it has no reject reason of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit.core import schema
from iccaudit.ingest.headers import MappingError, load_mapping
from iccaudit.ingest.readers import (
    LARGE_TEXT_BYTES,
    MAX_FILE_BYTES,
    MAX_TEXT_BYTES,
    READERS,
    STREAM_TEXT_BYTES,
    FileReadError,
    TextStream,
    not_large_readable,
    read_large_text,
    scan_text,
    stream_large_text,
)
from iccaudit.ingest.table import (
    ITEM_SCHEMA,
    NON_ITEM_COLUMNS,
    REJECT_COLUMNS,
    TablePlan,
    TableResult,
    chunks,
    empty_frame,
    normalise_plans,
    plan_table,
    raw_text,
    segments,
    with_raw_text,
)

#: Text suffixes the large-file reader takes, and their fixed delimiter (None: sniffed).
TEXT_SUFFIXES = {".csv": None, ".tsv": "\t"}
#: Data rows normalised together: enough to amortise the per-kernel cost over thousands of
#: small files, small enough that one batch's temporary arrays stay a few hundred MB.
BATCH_ROWS = 200_000
#: Batches normalised at the same time (the machine this was tuned on has two cores).
WORKERS = 2

__all__ = ["READERS", "IngestBatch", "IngestError", "ItemSink", "ParquetSink", "ingest"]

FILE_COLUMNS = [
    "source_file", "content_sha256", "format", "encoding", "sheets", "rows_read",
    "line_items", "rejects", "non_items", "status", "error",
]


class IngestError(Exception):
    """A problem that stops the whole ingest (missing path, invalid mapping file)."""


class AccountingError(Exception):
    """Internal: a file's rows do not add up. Reported as a file error, never swallowed."""


@dataclass
class IngestBatch:
    """Everything read from a set of tender files.

    Attributes
    ----------
    items_arrow : pyarrow.Table
        Line items, the columns of ``schema.LineItem`` except ``run_id`` and ``item_id``.
    items : DataFrame
        The same as pandas (serial numbers as lists, dates as ``datetime.date``).
    rejects : DataFrame
        Rows that could not be line items (``schema.Reject`` columns except ``run_id``).
    non_items : DataFrame
        Title, header, blank, total and note rows (``schema.NonItem`` except ``run_id``).
    files : DataFrame
        One row per file read or failed (``schema.FileRecord`` except ``run_id``).
    skipped : list of (path, reason)
        Files found in folders that are not tender files (other types, hidden, lock files).
    errors : list of str
        One-line errors: ``file: cannot read ...`` or ``file [sheet S]: ...``.
    """

    items_arrow: pa.Table
    rejects: pd.DataFrame
    non_items: pd.DataFrame
    files: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: number of line items (also when a sink other than memory holds them)
    n_items: int = 0

    @cached_property
    def items(self) -> pd.DataFrame:
        """The line items as pandas (built on first use; the pipeline uses ``items_arrow``)."""
        return _typed_items(self.items_arrow)


def _skip_reason(name: str) -> str | None:
    if name.startswith("~$"):
        return "Excel lock file"
    if name.startswith("."):
        return "hidden file"
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in READERS:
        return f"unsupported file type {suffix or '(none)'} (supported: {', '.join(READERS)})"
    return None


def collect(paths: list[Path]) -> tuple[list[Path], list[tuple[str, str]], list[str]]:
    """Expand folders (recursive, sorted); return (files to read, skipped, errors)."""
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    errors: list[str] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)

    for path in paths:
        path = Path(path)
        if not path.exists():
            raise IngestError(f"{path}: no such file or folder")
        if path.is_file():
            reason = _skip_reason(path.name)
            if reason and reason.startswith("unsupported"):
                skipped.append((str(path), reason))
                errors.append(f"{path}: {reason}")
            else:
                add(path)  # named explicitly: read even if hidden
            continue
        for root, dirs, names in os.walk(path):
            hidden = sorted(d for d in dirs if d.startswith("."))
            skipped.extend((str(Path(root) / d), "hidden folder") for d in hidden)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                p = Path(root) / name
                reason = _skip_reason(name)
                if reason:
                    skipped.append((str(p), reason))
                else:
                    add(p)
    return files, skipped, errors


@dataclass
class _FileRead:
    """One file after reading and header detection, before its rows are normalised."""

    record: dict
    plans: list[TablePlan] = field(default_factory=list)
    others: list[TableResult] = field(default_factory=list)  # sheets without a table
    errors: list[str] = field(default_factory=list)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(3, "int64"))
    failed: bool = False
    stream: TextStream | None = None  # a streamed file: its batches after the first plan

    def fail(self, message: str, line: str | None = None) -> _FileRead:
        """The file is an error: none of its rows count, ``line`` (default ``file: message``)
        is what the user reads."""
        self.record.update(status="error", sheets=0, rows_read=0, line_items=0, rejects=0,
                           non_items=0, error=message)
        self.errors = [line or f"{self.record['source_file']}: {message}"]
        self.failed, self.plans, self.others, self.stream = True, [], [], None
        return self


def _new_record(path: Path) -> dict:
    record = dict.fromkeys(FILE_COLUMNS)
    record.update(source_file=str(path), content_sha256="", format=path.suffix.lower().lstrip("."),
                  sheets=0, rows_read=0, line_items=0, rejects=0, non_items=0, status="error")
    return record


def _read_one(path: Path, mapping: dict[str, str] | None) -> _FileRead:
    """Read one file and find the header of each of its tables."""
    source = str(path)
    out = _FileRead(_new_record(path))
    reader = READERS[path.suffix.lower()]
    fail = out.fail

    suffix = path.suffix.lower()
    result = None
    try:
        size = path.stat().st_size
        if suffix in TEXT_SUFFIXES and size >= LARGE_TEXT_BYTES:
            if size > MAX_TEXT_BYTES:
                return fail(f"refused: {size / 2**30:.0f} GB is above the "
                            f"{MAX_TEXT_BYTES / 2**30:.0f} GB limit")
            if size > STREAM_TEXT_BYTES:
                # hashed and counted while it streams (the checks come after its last batch)
                scans = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iccaudit-scan")
                scan = scans.submit(scan_text, path)
                scans.shutdown(wait=False)
                stream = stream_large_text(path, scan, TEXT_SUFFIXES[suffix], suffix[1:])
                if stream is not None:
                    out = _open_stream(out, stream, source, path.stem, mapping)
                    if out.failed:  # its first rows hold no table: the file is not read on
                        out.record["content_sha256"] = stream.sha256()
                    return out
                scan = scan.result()
                out.record["content_sha256"] = scan.sha256
            else:
                with ThreadPoolExecutor(max_workers=1) as pool:  # hash while DuckDB parses
                    scan = pool.submit(scan_text, path)
                    result = read_large_text(path, scan, TEXT_SUFFIXES[suffix], suffix[1:])
                    scan = scan.result()
                out.record["content_sha256"] = scan.sha256
            if result is None and size > MAX_FILE_BYTES:
                return fail(not_large_readable(size, MAX_FILE_BYTES))
        elif size > MAX_FILE_BYTES:
            return fail(f"refused: {size / 2**20:.0f} MB is above the "
                        f"{MAX_FILE_BYTES / 2**20:.0f} MB limit")
        data = b"" if result is not None else path.read_bytes()
    except OSError as exc:
        return fail(f"cannot read: {exc.strerror or exc}")
    except FileReadError as exc:
        return fail(str(exc))
    if result is None:
        out.record["content_sha256"] = hashlib.sha256(data).hexdigest()
    try:
        result = result or reader(path, data)
    except FileReadError as exc:
        return fail(str(exc))
    # A damaged file can make a library raise almost anything; the user sees one line, and
    # the other files of the batch are still read.
    except Exception as exc:  # noqa: BLE001
        text = str(exc).strip().splitlines()
        return fail(f"cannot read: {text[0] if text else type(exc).__name__}")
    del data
    out.record["format"] = result.format
    out.record["encoding"] = result.encoding
    try:
        planned = [plan_table(t, source, path.stem, mapping) for t in result.tables]
    # Our bug, not the user's: say so in one line, name it internal, keep reading the batch.
    except Exception as exc:  # noqa: BLE001
        return fail(_internal(exc))
    out.plans = [t for t in planned if isinstance(t, TablePlan)]
    out.others = [t for t in planned if isinstance(t, TableResult)]
    if not out.plans:
        problems = [t.problem for t in out.others if t.problem]
        header_problems = [t.problem for t in out.others if t.header_found and t.problem]
        message = (header_problems or problems or [f"{source}: no sheets with data"])[0]
        return fail(message, line=message)
    out.errors = [f"{t.problem} (sheet not read as line items)"
                  for t in out.others if t.header_found]
    out.record.update(rows_read=sum(p.rows_read for p in out.plans)
                      + sum(t.rows_read for t in out.others),
                      sheets=len(out.plans), status="ok")
    return out


def _open_stream(out: _FileRead, stream: TextStream, source: str, stem: str,
                 mapping: dict[str, str] | None) -> _FileRead:
    """Plan a streamed file from its first batch; the driver pulls the others."""
    out.record["format"] = stream.format
    out.record["encoding"] = stream.encoding
    try:
        first = next(stream.tables)
        plan = plan_table(first, source, stem, mapping)
    except StopIteration:
        plan = None
    except FileReadError as exc:
        return out.fail(str(exc))
    if not isinstance(plan, TablePlan):
        stream.tables.close()
        message = (plan.problem if plan is not None and plan.problem
                   else f"{source}: no line-item table in the first rows")
        return out.fail(message, line=message)
    out.plans, out.stream = [plan], stream
    out.record.update(rows_read=plan.rows_read, sheets=1, status="ok")
    return out


def _pieces(r: _FileRead, size: int):
    """(plan, k) pieces of a file's tables: chunks of long ones, each streamed batch of a
    streamed file; ``k`` numbers the long table a piece belongs to (None: a short table).
    Every piece of a long table but its last is marked ``valued_later``.
    """
    for k, plan in enumerate(r.plans):
        # a chunked table (a large CSV, one chunk per reader thread) is cut chunk by chunk
        per = (size if len(segments(plan.cols, len(plan.rows))) > 1
               else _even_chunks(len(plan.rows), size))
        parts = chunks(plan, per)
        if r.stream is None:
            for part in parts:
                yield part, k if len(parts) > 1 else None
            continue
        template = dataclasses.replace(plan, pre=None, shown=None, rows_read=0)

        def rest(template=template):
            for raw in r.stream.tables:
                r.record["rows_read"] += len(raw.rows)
                yield from chunks(dataclasses.replace(template, rows=raw.rows, cols=raw.columns),
                                  size)

        # one piece of look-ahead: only the very last one may hold the table's trailing text
        held = None
        for part in itertools.chain(parts, rest()):
            if held is not None:
                yield dataclasses.replace(held, valued_later=True), k
            held = part
        if held is not None:
            yield dataclasses.replace(held, valued_later=False), k


def _even_chunks(n: int, size: int) -> int:
    """Rows per chunk of a table of ``n`` rows: at most ``size``, in a number of chunks the
    workers share evenly (1 M rows: six of 167 k, not five of 200 k, the last one alone)."""
    if n <= size:
        return size
    count = -(-n // size)
    count += -count % WORKERS
    return -(-n // count)


def _internal(exc: BaseException) -> str:
    return (f"internal error while normalising ({type(exc).__name__}: {exc}); "
            "please report it")


def _account(r: _FileRead) -> None:
    """Per-file counts; a file whose rows do not add up is an internal error, never silent."""
    if r.failed:
        return
    other_non = sum(len(t.non_items) for t in r.others)
    counts = {"line_items": int(r.counts[0]), "rejects": int(r.counts[1]),
              "non_items": int(r.counts[2]) + other_non}
    if r.record["rows_read"] != sum(counts.values()):
        message = (f"internal error: rows do not add up: {counts}, "
                   f"rows_read {r.record['rows_read']}")
        r.record.update(status="error", error=message, sheets=0, rows_read=0, line_items=0,
                        rejects=0, non_items=0)
        r.errors.append(f"{r.record['source_file']}: {message}")
        r.failed = True
        return
    r.record.update(counts)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_frame(columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _typed_items(items: pa.Table) -> pd.DataFrame:
    """Line items as pandas with stable dtypes whatever mix of files produced them."""
    frame = with_raw_text(items).to_pandas(date_as_object=True)
    frame["serial_numbers"] = frame["serial_numbers"].map(list)
    frame["source_row"] = frame["source_row"].astype("int64")
    for c in ("quantity", "unit_price_cny", "total_cny", "capacity_kw", "claimed_pflops"):
        frame[c] = frame[c].astype("float64")
    frame["price_includes_vat"] = frame["price_includes_vat"].astype("boolean")
    for c in frame.columns:
        if frame[c].dtype != object and pd.api.types.is_string_dtype(frame[c].dtype):
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame


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
        self._writer = None
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
        raw = items.column(i)
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
    order = pc.sort_indices(items, sort_keys=[(c, "ascending", "at_start") for c in ITEM_ORDER])
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


@dataclass
class _Job:
    """One batch of plans being normalised; ``owners[i]`` is the read of plan ``i``."""

    future: Future
    owners: list[int]
    plans: list[TablePlan]
    chunk_of: list[int | None]  # per plan: id of the long table it is a chunk of, or None


def ingest(paths: list[Path], mapping: Path | None = None, progress: bool = False,
           sink: ItemSink | None = None) -> IngestBatch:
    """Read tender files and folders into canonical line items.

    Files are read one after another; their tables are normalised in batches of about
    ``BATCH_ROWS`` rows (a long table in chunks), two batches at a time (the Arrow kernels
    and DuckDB release the GIL). Items go to ``sink`` in input order.

    Raises :class:`IngestError` only for what stops everything: a path that does not exist or
    an invalid mapping file. A file that cannot be read is a ``files`` row with status
    ``error`` and a line in ``errors``.
    """
    header_map = None
    if mapping is not None:
        try:
            header_map = load_mapping(Path(mapping))
        except MappingError as exc:
            raise IngestError(str(exc)) from None
    files, skipped, errors = collect([Path(p) for p in paths])
    sink = sink if sink is not None else ItemSink()

    reads: list[_FileRead] = []
    rejects: list[pd.DataFrame] = []
    non_items: list[pd.DataFrame] = []
    tails: list[pd.DataFrame] = []
    chunk_valued: dict[int, list[bool]] = {}  # long table -> per chunk: holds a valued row
    chunk_owner: dict[int, int] = {}
    jobs: deque[_Job] = deque()
    pending: list[tuple[int, TablePlan, int | None]] = []
    pending_rows = 0
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="iccaudit-normalise")

    def submit() -> None:
        nonlocal pending, pending_rows
        if pending:
            plans = [p for _, p, _ in pending]
            jobs.append(_Job(pool.submit(normalise_plans, plans), [o for o, _, _ in pending],
                             plans, [c for _, _, c in pending]))
        pending, pending_rows = [], 0

    def collect_job(job: _Job) -> None:
        try:
            out = job.future.result()
        # Our bug, not the user's: find the file(s), name it internal, keep reading the batch.
        except Exception:  # noqa: BLE001
            for owner in sorted(set(job.owners)):
                mine = [p for o, p in zip(job.owners, job.plans, strict=True) if o == owner]
                try:
                    normalise_plans(mine)
                except Exception as exc:  # noqa: BLE001
                    reads[owner].fail(_internal(exc))
            good = [i for i, o in enumerate(job.owners) if not reads[o].failed]
            if not good:
                return
            job = _Job(job.future, [job.owners[i] for i in good], [job.plans[i] for i in good],
                       [job.chunk_of[i] for i in good])
            out = normalise_plans(job.plans)
        owners = np.asarray(job.owners)
        for owner in set(job.owners):
            reads[owner].counts = reads[owner].counts + out.counts[owners == owner].sum(axis=0)
        for i, table_id in enumerate(job.chunk_of):
            if table_id is not None:
                chunk_valued[table_id].append(bool(out.valued[i]))
        sink.add(out.items)
        rejects.append(out.rejects)
        non_items.append(out.non_items)
        if out.tail is not None and len(out.tail):
            tail = out.tail.copy()
            tail["table"] = [job.chunk_of[i] for i in tail["plan"]]
            tail["chunk"] = [len(chunk_valued[t]) - 1 for t in tail["table"]]
            tail["source_file"] = [job.plans[i].source_file for i in tail["plan"]]
            tail["source_sheet"] = [job.plans[i].sheet for i in tail["plan"]]
            tails.append(tail)

    def drain(keep: int) -> None:
        """Collect finished batches in order, leaving at most ``keep`` in flight."""
        while jobs and (len(jobs) > keep or jobs[0].future.done()):
            collect_job(jobs.popleft())

    bar = None
    if progress:
        from rich.console import Console
        from rich.progress import Progress

        bar = Progress(console=Console(stderr=True), transient=True)
        bar.start()
        task = bar.add_task("reading tender files", total=len(files))
    try:
        for path in files:
            r = _read_one(path, header_map)
            ri = len(reads)
            reads.append(r)
            non_items.extend(t.non_items for t in r.others)  # sheets without a table
            tables: dict[int, int] = {}  # long table of this file -> its id
            try:
                for part, k in _pieces(r, BATCH_ROWS):
                    if k is not None and k not in tables:
                        submit()  # a long table's chunks are batches of their own
                        tables[k] = len(chunk_valued)
                        chunk_valued[tables[k]] = []
                        chunk_owner[tables[k]] = ri
                    pending.append((ri, part, None if k is None else tables[k]))
                    pending_rows += len(part.rows)
                    if pending_rows >= BATCH_ROWS or k is not None:
                        submit()
                        drain(keep=WORKERS)
                problem = r.stream.check() if r.stream is not None else None
            except FileReadError as exc:
                problem = str(exc)
            if r.stream is not None:  # hashed while it streamed
                r.record["content_sha256"] = r.stream.sha256()
            if problem:  # a streamed file that could not be read to the end: none of it
                r.fail(problem)
            r.plans, r.stream = [], None  # the pieces hold the cells now
            if bar is not None:
                bar.advance(task)
        submit()
        drain(keep=0)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.stop()

    rejects_frame = _concat(rejects, REJECT_COLUMNS)
    non_items_frame = _concat(non_items, NON_ITEM_COLUMNS)
    if tails:
        rejects_frame, non_items_frame = _trailing_notes(
            pd.concat(tails, ignore_index=True), chunk_valued, chunk_owner, reads,
            rejects_frame, non_items_frame)
    for r in reads:
        _account(r)  # first: a file whose rows do not add up is failed, none of its rows kept
    failed = {r.record["source_file"] for r in reads if r.failed}
    if failed:
        sink.discard(failed)
        rejects_frame = rejects_frame[~rejects_frame["source_file"].isin(failed)]
        non_items_frame = non_items_frame[~non_items_frame["source_file"].isin(failed)]
    for r in reads:
        errors.extend(r.errors)
    files_frame = pd.DataFrame([r.record for r in reads], columns=FILE_COLUMNS)
    if len(files_frame):
        for c in ("sheets", "rows_read", "line_items", "rejects", "non_items"):
            files_frame[c] = files_frame[c].astype("int64")
    return IngestBatch(
        items_arrow=sink.result(),
        rejects=rejects_frame.reset_index(drop=True),
        non_items=_in_file_order(non_items_frame, reads),
        files=files_frame,
        skipped=skipped,
        errors=errors,
        n_items=sink.rows,
    )


def _trailing_notes(tail: pd.DataFrame, chunk_valued: dict[int, list[bool]],
                    chunk_owner: dict[int, int], reads: list[_FileRead],
                    rejects: pd.DataFrame, non_items: pd.DataFrame
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Free text after a long table's last valued row is a note, whichever chunk it is in.

    Chunks are normalised assuming a later chunk holds values; where none does, the
    rejects of their tail rows become notes (they never hold items: no price, no quantity).
    """
    # a chunk's tail is trailing text when no later chunk of its table holds a valued row
    last = {t: max((i for i, v in enumerate(vals) if v), default=-1)
            for t, vals in chunk_valued.items()}
    turn = tail[[c >= last[t] for t, c in zip(tail["table"], tail["chunk"], strict=True)]]
    if turn.empty:
        return rejects, non_items
    key = ["source_file", "source_sheet", "source_row"]
    hit = rejects[key].merge(turn[key].assign(_hit=True), how="left", on=key)["_hit"]
    hit = hit.fillna(False).to_numpy(dtype=bool)
    rejects = rejects[~hit]
    notes = turn.assign(kind="note")[NON_ITEM_COLUMNS]
    notes["text"] = notes["text"].where(notes["text"] != "", None)
    for table_id, n in turn["table"].value_counts().items():
        r = reads[chunk_owner[table_id]]
        r.counts = r.counts + np.array([0, -n, n])
    merged = pd.concat([non_items, notes], ignore_index=True)
    return rejects, merged.sort_values(key, kind="stable", na_position="first")


def _in_file_order(frame: pd.DataFrame, reads: list[_FileRead]) -> pd.DataFrame:
    """Non-items in file order (those of sheets without a table are collected first)."""
    if frame.empty:
        return frame
    order = {r.record["source_file"]: i for i, r in enumerate(reads)}
    key = frame["source_file"].map(order).to_numpy()
    return frame.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
