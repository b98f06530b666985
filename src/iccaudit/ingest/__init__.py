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
- A file larger than 512 MB (``readers.MAX_FILE_BYTES``) is a file error, not read.
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

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from iccaudit.ingest.headers import MappingError, load_mapping
from iccaudit.ingest.readers import (
    LARGE_TEXT_BYTES,
    MAX_FILE_BYTES,
    MAX_TEXT_BYTES,
    READERS,
    FileReadError,
    read_large_text,
    scan_text,
)
from iccaudit.ingest.table import (
    NON_ITEM_COLUMNS,
    REJECT_COLUMNS,
    TablePlan,
    TableResult,
    empty_frame,
    normalise_plans,
    plan_table,
)

#: Text suffixes the large-file reader takes, and their fixed delimiter (None: sniffed).
TEXT_SUFFIXES = {".csv": None, ".tsv": "\t"}
#: Data rows normalised together: enough to amortise the per-kernel cost over thousands of
#: small files, small enough that one batch's temporary arrays stay a few hundred MB.
BATCH_ROWS = 200_000

__all__ = ["READERS", "IngestBatch", "IngestError", "ingest"]

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

    def fail(message: str, line: str | None = None) -> _FileRead:
        out.record["error"] = message
        out.errors = [line or f"{source}: {message}"]
        out.failed = True
        out.plans, out.others = [], []
        return out

    suffix = path.suffix.lower()
    result = None
    try:
        size = path.stat().st_size
        if suffix in TEXT_SUFFIXES and size >= LARGE_TEXT_BYTES:
            if size > MAX_TEXT_BYTES:
                return fail(f"refused: {size / 2**30:.0f} GB is above the "
                            f"{MAX_TEXT_BYTES / 2**30:.0f} GB limit")
            scan = scan_text(path)
            out.record["content_sha256"] = scan.sha256
            result = read_large_text(path, scan, TEXT_SUFFIXES[suffix], suffix[1:])
            if result is None and size > MAX_FILE_BYTES:
                return fail(f"refused: {size / 2**20:.0f} MB is above the "
                            f"{MAX_FILE_BYTES / 2**20:.0f} MB limit of the general reader, "
                            "and the file is not one the large-file reader takes (UTF-8, "
                            "no blank lines, no old Mac line ends)")
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


def _internal(exc: BaseException) -> str:
    return (f"internal error while normalising ({type(exc).__name__}: {exc}); "
            "please report it")


def _normalise_batch(reads: list[_FileRead]) -> tuple[list, list, list]:
    """Normalise the tables of several files at once; counts go back to each file.

    If the batch fails (our bug), its files are retried one at a time so that only the file
    that triggers it becomes a file error and the others are still read.
    """
    plans = [p for r in reads for p in r.plans]
    owner = np.repeat(np.arange(len(reads)), [len(r.plans) for r in reads])
    try:
        out = normalise_plans(plans)
    # Our bug, not the user's: isolate the file, name it internal, keep reading the batch.
    except Exception as exc:  # noqa: BLE001
        if len(reads) == 1:
            r = reads[0]
            r.failed, r.plans, r.others = True, [], []
            r.record.update(status="error", sheets=0, rows_read=0, error=_internal(exc))
            r.errors = [f"{r.record['source_file']}: {_internal(exc)}"]
            return [], [], []
        parts = [_normalise_batch([r]) for r in reads]
        items = [x for part in parts for x in part[0]]
        rejects = [x for part in parts for x in part[1]]
        non_items = [x for part in parts for x in part[2]]
        return items, rejects, non_items
    for i, r in enumerate(reads):
        r.counts = r.counts + out.counts[owner == i].sum(axis=0)
        r.plans = []  # free the cells
    return [out.items], [out.rejects], [out.non_items]


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
    frame = items.to_pandas(date_as_object=True)
    frame["serial_numbers"] = frame["serial_numbers"].map(list)
    frame["source_row"] = frame["source_row"].astype("int64")
    for c in ("quantity", "unit_price_cny", "total_cny", "capacity_kw", "claimed_pflops"):
        frame[c] = frame[c].astype("float64")
    frame["price_includes_vat"] = frame["price_includes_vat"].astype("boolean")
    for c in frame.columns:
        if frame[c].dtype != object and pd.api.types.is_string_dtype(frame[c].dtype):
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame


def ingest(paths: list[Path], mapping: Path | None = None, progress: bool = False) -> IngestBatch:
    """Read tender files and folders into canonical line items.

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

    reads: list[_FileRead] = []
    items: list[pa.Table] = []
    rejects: list[pd.DataFrame] = []
    non_items: list[pd.DataFrame] = []
    pending: list[_FileRead] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows
        if pending:
            its, rejs, nons = _normalise_batch(pending)
            items.extend(its)
            rejects.extend(rejs)
            non_items.extend(nons)
        pending, pending_rows = [], 0

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
            reads.append(r)
            non_items.extend(t.non_items for t in r.others)  # sheets without a table
            if r.plans:
                pending.append(r)
                pending_rows += sum(len(p.rows) for p in r.plans)
                if pending_rows >= BATCH_ROWS:
                    flush()
            if bar is not None:
                bar.advance(task)
        flush()
    finally:
        if bar is not None:
            bar.stop()

    for r in reads:
        _account(r)
        errors.extend(r.errors)
    files_frame = pd.DataFrame([r.record for r in reads], columns=FILE_COLUMNS)
    if len(files_frame):
        for c in ("sheets", "rows_read", "line_items", "rejects", "non_items"):
            files_frame[c] = files_frame[c].astype("int64")
    return IngestBatch(
        items_arrow=pa.concat_tables(items) if items else normalise_plans([]).items,
        rejects=_concat(rejects, REJECT_COLUMNS),
        non_items=_in_file_order(_concat(non_items, NON_ITEM_COLUMNS), reads),
        files=files_frame,
        skipped=skipped,
        errors=errors,
    )


def _in_file_order(frame: pd.DataFrame, reads: list[_FileRead]) -> pd.DataFrame:
    """Non-items in file order (those of sheets without a table are collected first)."""
    if frame.empty:
        return frame
    order = {r.record["source_file"]: i for i, r in enumerate(reads)}
    key = frame["source_file"].map(order).to_numpy()
    return frame.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
