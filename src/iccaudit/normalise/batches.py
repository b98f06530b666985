"""Ingest: tender files of every supported format -> one canonical table of line items.

``ingest(paths)`` reads files and folders (folders recursively, in sorted order) and returns an
:class:`IngestBatch`: line items, rejects (rows that cannot be a line item, with a reason from
``schema.REJECT_REASONS``), non-items (title, header, blank, total and note rows), one
accounting row per file, the files skipped and the one-line errors. Nothing is lost and nothing
is silent: for every file ``rows_read == line_items + rejects + non_items``, checked here.

Formats (:data:`iccaudit.read.READERS`): CSV/TSV (UTF-8, UTF-8 with BOM, GB18030/GBK,
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

import contextlib
import dataclasses
import itertools
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from iccaudit.normalise.files import (
    FILE_COLUMNS,
    FileRead,
    account,
    internal,
    read_and_plan,
    skipped_record,
)
from iccaudit.normalise.headers import MappingError, load_mapping
from iccaudit.normalise.plan import TablePlan, chunks, segments
from iccaudit.normalise.rates import Rates, load_rates, to_yuan
from iccaudit.normalise.raw import with_raw_text
from iccaudit.normalise.rows import BatchResult, normalise_plans
from iccaudit.normalise.sinks import ItemSink
from iccaudit.normalise.tables import NON_ITEM_COLUMNS, REJECT_COLUMNS, empty_frame
from iccaudit.read import FileReadError, IngestError, collect

#: Data rows normalised together: enough to amortise the per-kernel cost over thousands of
#: small files, small enough that one batch's temporary arrays stay a few hundred MB.
BATCH_ROWS = 200_000
#: Batches normalised at the same time (the machine this was tuned on has two cores).
WORKERS = 2


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

    items_arrow: pa.Table | None
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
        if self.items_arrow is None:
            raise ValueError("the line items were handed on (to a file sink or the store)")
        return _typed_items(self.items_arrow)


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


@dataclass
class _Job:
    """One batch of plans being normalised; ``owners[i]`` is the read of plan ``i``."""

    future: Future[BatchResult]
    owners: list[int]
    plans: list[TablePlan]
    chunk_of: list[int | None]  # per plan: id of the long table it is a chunk of, or None


def ingest(paths: list[Path], mapping: Path | None = None, progress: bool = False,
           sink: ItemSink | None = None, rates: Path | None = None) -> IngestBatch:
    """Read tender files and folders into canonical line items.

    Files are read one after another; their tables are normalised in batches of about
    ``BATCH_ROWS`` rows (a long table in chunks), two batches at a time (the Arrow kernels
    and DuckDB release the GIL). Items go to ``sink`` in input order.

    Raises :class:`IngestError` only for what stops everything: a path that does not exist or
    an invalid mapping file or rate table. Amounts in another currency are converted to
    yuan only with ``rates`` (:mod:`.rates`). A file that cannot be read is a ``files`` row with status
    ``error`` and a line in ``errors``.
    """
    header_map = _load_mapping(mapping)
    table = load_rates(rates) if rates is not None else None
    files, skipped, errors = collect([Path(p) for p in paths])
    work = _Batches(sink if sink is not None else ItemSink(), table)
    seen: set[tuple[str | None, ...]] = set()  # OCDS publications: one item, once
    try:
        with _progress(progress, len(files)) as advance:
            for path in files:
                work.add_file(read_and_plan(path, header_map, seen))
                advance()
            work.finish()
    finally:
        work.close()
    return work.result(skipped, errors)


def _load_mapping(mapping: Path | None) -> dict[str, str] | None:
    if mapping is None:
        return None
    try:
        return load_mapping(Path(mapping))
    except MappingError as exc:
        raise IngestError(str(exc)) from None


@contextlib.contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (when asked for); yields the call that advances it."""
    if not show:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    bar.start()
    task = bar.add_task("reading tender files", total=total)
    try:
        yield lambda: bar.advance(task)
    finally:
        bar.stop()


class _Batches:
    """The files read so far, the batches of their tables in flight, and what came back.

    Pieces of tables queue until about ``BATCH_ROWS`` rows (a long table's chunks are batches
    of their own); at most ``WORKERS`` batches run at once, and their results are collected
    in input order, so items reach the sink in the order of the files.
    """

    def __init__(self, sink: ItemSink, rates: Rates | None = None) -> None:
        self.sink = sink
        self.rates = rates
        self.reads: list[FileRead] = []
        self.rejects: list[pd.DataFrame] = []
        self.non_items: list[pd.DataFrame] = []
        self.tails: list[pd.DataFrame] = []
        self.chunk_valued: dict[int, list[bool]] = {}  # long table -> per chunk: valued row?
        self.chunk_owner: dict[int, int] = {}  # long table -> its read
        self._jobs: deque[_Job] = deque()
        self._pending: list[tuple[int, TablePlan, int | None]] = []
        self._pending_rows = 0
        self._pool = ThreadPoolExecutor(max_workers=WORKERS,
                                        thread_name_prefix="iccaudit-normalise")

    def add_file(self, r: FileRead) -> None:
        """Queue every piece of one file's tables (a streamed file is pulled to its end)."""
        ri = len(self.reads)
        self.reads.append(r)
        self.non_items.extend(t.non_items for t in r.others)  # sheets without a table
        tables: dict[int, int] = {}  # long table of this file -> its id
        try:
            for part, k in _pieces(r, BATCH_ROWS):
                if k is not None and k not in tables:
                    self._submit()  # a long table's chunks are batches of their own
                    tables[k] = len(self.chunk_valued)
                    self.chunk_valued[tables[k]] = []
                    self.chunk_owner[tables[k]] = ri
                self._pending.append((ri, part, None if k is None else tables[k]))
                self._pending_rows += len(part.rows)
                if self._pending_rows >= BATCH_ROWS or k is not None:
                    self._submit()
                    self._drain(keep=WORKERS)
            problem = r.stream.check() if r.stream is not None else None
        except FileReadError as exc:
            problem = str(exc)
        if r.stream is not None:  # hashed while it streamed
            r.record["content_sha256"] = r.stream.sha256()
        if problem:  # a streamed file that could not be read to the end: none of it
            r.fail(problem)
        r.plans, r.stream = [], None  # the pieces hold the cells now

    def finish(self) -> None:
        """Submit what is queued and collect every batch."""
        self._submit()
        self._drain(keep=0)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self) -> None:
        if self._pending:
            plans = [p for _, p, _ in self._pending]
            self._jobs.append(_Job(self._pool.submit(normalise_plans, plans),
                                   [o for o, _, _ in self._pending], plans,
                                   [c for _, _, c in self._pending]))
        self._pending, self._pending_rows = [], 0

    def _drain(self, keep: int) -> None:
        """Collect finished batches in order, leaving at most ``keep`` in flight."""
        while self._jobs and (len(self._jobs) > keep or self._jobs[0].future.done()):
            self._collect(self._jobs.popleft())

    def _collect(self, job: _Job) -> None:
        try:
            out = job.future.result()
        # Our bug, not the user's: find the file(s), name it internal, keep reading the batch.
        except Exception:  # noqa: BLE001
            retried = self._without_failing_files(job)
            if retried is None:
                return
            job = retried
            out = normalise_plans(job.plans)
        owners = np.asarray(job.owners)
        for owner in set(job.owners):
            r = self.reads[owner]
            r.counts = r.counts + out.counts[owners == owner].sum(axis=0)
        for i, table_id in enumerate(job.chunk_of):
            if table_id is not None:
                self.chunk_valued[table_id].append(bool(out.valued[i]))
        self.sink.add(to_yuan(out.items, self.rates))
        self.rejects.append(out.rejects)
        self.non_items.append(out.non_items)
        if out.tail is not None and len(out.tail):
            tail = out.tail.copy()
            tail["table"] = [job.chunk_of[i] for i in tail["plan"]]
            tail["chunk"] = [len(self.chunk_valued[t]) - 1 for t in tail["table"]]
            tail["source_file"] = [job.plans[i].source_file for i in tail["plan"]]
            self.tails.append(tail)

    def _without_failing_files(self, job: _Job) -> _Job | None:
        """A batch that raised: each file's plans again alone; a file that still raises is an
        internal error. The job of the files left (None: none)."""
        for owner in sorted(set(job.owners)):
            mine = [p for o, p in zip(job.owners, job.plans, strict=True) if o == owner]
            try:
                normalise_plans(mine)
            except Exception as exc:  # noqa: BLE001
                self.reads[owner].fail(internal(exc))
        good = [i for i, o in enumerate(job.owners) if not self.reads[o].failed]
        if not good:
            return None
        return _Job(job.future, [job.owners[i] for i in good], [job.plans[i] for i in good],
                    [job.chunk_of[i] for i in good])

    def result(self, skipped: list[tuple[str, str]], errors: list[str]) -> IngestBatch:
        """Everything collected, every file accounted (a file whose rows do not add up is
        failed, and none of its rows kept)."""
        reads = self.reads
        rejects = _concat(self.rejects, REJECT_COLUMNS)
        non_items = _concat(self.non_items, NON_ITEM_COLUMNS)
        if self.tails:
            rejects, non_items = _trailing_notes(
                pd.concat(self.tails, ignore_index=True), self.chunk_valued, self.chunk_owner,
                reads, rejects, non_items)
        for r in reads:
            account(r)
        failed = {r.record["source_file"] for r in reads if r.failed}
        if failed:
            self.sink.discard(failed)
            rejects = rejects[~rejects["source_file"].isin(failed)]
            non_items = non_items[~non_items["source_file"].isin(failed)]
        for r in reads:
            errors.extend(r.errors)
        # every file found is accounted: those skipped by their type or name too (a hidden
        # folder is not a file: it is only listed)
        records = [r.record for r in reads] + [skipped_record(p, why) for p, why in skipped
                                               if why != "hidden folder"]
        skipped = skipped + [(r.record["source_file"], r.record["error"]) for r in reads
                             if r.record["status"] == "skipped"]
        files = pd.DataFrame(records, columns=FILE_COLUMNS)
        if len(files):
            for c in ("sheets", "rows_read", "line_items", "rejects", "non_items"):
                files[c] = files[c].astype("int64")
        return IngestBatch(
            items_arrow=self.sink.result(),
            rejects=rejects.reset_index(drop=True),
            non_items=_in_file_order(non_items, reads),
            files=files,
            skipped=skipped,
            errors=errors,
            n_items=self.sink.rows,
        )


def _trailing_notes(tail: pd.DataFrame, chunk_valued: dict[int, list[bool]],
                    chunk_owner: dict[int, int], reads: list[FileRead],
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
    merged_hit = rejects[key].merge(turn[key].assign(_hit=True), how="left", on=key)["_hit"]
    hit = merged_hit.fillna(False).to_numpy(dtype=bool)
    rejects = rejects[~hit]
    notes = turn.assign(kind="note")[NON_ITEM_COLUMNS]
    notes["text"] = notes["text"].where(notes["text"] != "", None)
    for table_id, n in turn["table"].value_counts().items():
        r = reads[chunk_owner[int(table_id)]]
        r.counts = r.counts + np.array([0, -n, n])
    merged = pd.concat([non_items, notes], ignore_index=True)
    return rejects, merged.sort_values(key, kind="stable", na_position="first")


def _in_file_order(frame: pd.DataFrame, reads: list[FileRead]) -> pd.DataFrame:
    """Non-items in file order (those of sheets without a table are collected first)."""
    if frame.empty:
        return frame
    order = {r.record["source_file"]: i for i, r in enumerate(reads)}
    key = frame["source_file"].map(order).to_numpy()
    return frame.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)


def _pieces(r: FileRead, size: int) -> Iterator[tuple[TablePlan, int | None]]:
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

        def rest(template: TablePlan = template) -> Iterator[TablePlan]:
            assert r.stream is not None
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


