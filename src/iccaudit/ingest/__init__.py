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
from pathlib import Path

import pandas as pd

from iccaudit.ingest.headers import MappingError, load_mapping
from iccaudit.ingest.readers import MAX_FILE_BYTES, READERS, FileReadError
from iccaudit.ingest.table import (
    ITEM_COLUMNS,
    NON_ITEM_COLUMNS,
    REJECT_COLUMNS,
    empty_frame,
    normalise,
)

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
    items : DataFrame
        Line items, the columns of ``schema.LineItem`` except ``run_id`` and ``item_id``.
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

    items: pd.DataFrame
    rejects: pd.DataFrame
    non_items: pd.DataFrame
    files: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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


def _read_one(path: Path, mapping: dict[str, str] | None):
    """Read one file: (file record, items, rejects, non-items, errors)."""
    source = str(path)
    record = {c: None for c in FILE_COLUMNS}
    record.update(source_file=source, content_sha256="", format=path.suffix.lower().lstrip("."),
                  sheets=0, rows_read=0, line_items=0, rejects=0, non_items=0, status="error")
    reader = READERS[path.suffix.lower()]

    def fail(message: str):
        record["error"] = message
        return record, [], [], [], [f"{source}: {message}"]

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return fail(f"refused: {size / 2**20:.0f} MB is above the "
                        f"{MAX_FILE_BYTES / 2**20:.0f} MB limit")
        data = path.read_bytes()
    except OSError as exc:
        return fail(f"cannot read: {exc.strerror or exc}")
    record["content_sha256"] = hashlib.sha256(data).hexdigest()
    try:
        result = reader(path, data)
    except FileReadError as exc:
        return fail(str(exc))
    # A damaged file can make a library raise almost anything; the user sees one line, and
    # the other files of the batch are still read.
    except Exception as exc:  # noqa: BLE001
        text = str(exc).strip().splitlines()
        return fail(f"cannot read: {text[0] if text else type(exc).__name__}")
    record["format"] = result.format
    record["encoding"] = result.encoding
    try:
        tables = [normalise(t, source, path.stem, mapping) for t in result.tables]
    # Our bug, not the user's: say so in one line, name it internal, keep reading the batch.
    except Exception as exc:  # noqa: BLE001
        return fail(f"internal error while normalising ({type(exc).__name__}: {exc}); "
                    "please report it")
    good = [t for t in tables if t.is_table]
    if not good:
        problems = [t.problem for t in tables if t.problem]
        header_problems = [t.problem for t in tables if t.header_found and t.problem]
        message = (header_problems or problems or [f"{source}: no sheets with data"])[0]
        record["error"] = message
        return record, [], [], [], [message]
    errors = [
        f"{t.problem} (sheet not read as line items)" for t in tables if t.header_found
    ]
    items = [t.items for t in tables]
    rejects = [t.rejects for t in tables]
    non_items = [t.non_items for t in tables]
    counts = {
        "rows_read": sum(t.rows_read for t in tables),
        "line_items": sum(len(x) for x in items),
        "rejects": sum(len(x) for x in rejects),
        "non_items": sum(len(x) for x in non_items),
    }
    if counts["rows_read"] != counts["line_items"] + counts["rejects"] + counts["non_items"]:
        raise AccountingError(f"{source}: rows do not add up: {counts}")
    record.update(counts, sheets=len(good), status="ok")
    return record, items, rejects, non_items, errors


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_frame(columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _typed_items(items: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes whatever mix of files produced the frame."""
    items = items.copy()
    items["source_row"] = items["source_row"].astype("int64")
    for c in ("quantity", "unit_price_cny", "total_cny", "capacity_kw", "claimed_pflops"):
        items[c] = items[c].astype("float64")
    items["price_includes_vat"] = items["price_includes_vat"].astype("boolean")
    return items


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

    records, items, rejects, non_items = [], [], [], []
    bar = None
    if progress:
        from rich.console import Console
        from rich.progress import Progress

        bar = Progress(console=Console(stderr=True), transient=True)
        bar.start()
        task = bar.add_task("reading tender files", total=len(files))
    try:
        for path in files:
            try:
                rec, its, rejs, nons, errs = _read_one(path, header_map)
            except AccountingError as exc:
                rec = {c: None for c in FILE_COLUMNS}
                rec.update(source_file=str(path), content_sha256="", format=path.suffix[1:].lower(),
                           sheets=0, rows_read=0, line_items=0, rejects=0, non_items=0,
                           status="error", error=f"internal error: {exc}")
                its, rejs, nons, errs = [], [], [], [f"{path}: internal error: {exc}"]
            records.append(rec)
            items.extend(its)
            rejects.extend(rejs)
            non_items.extend(nons)
            errors.extend(errs)
            if bar is not None:
                bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()

    files_frame = pd.DataFrame(records, columns=FILE_COLUMNS)
    if len(files_frame):
        for c in ("sheets", "rows_read", "line_items", "rejects", "non_items"):
            files_frame[c] = files_frame[c].astype("int64")
    return IngestBatch(
        items=_typed_items(_concat(items, ITEM_COLUMNS)),
        rejects=_concat(rejects, REJECT_COLUMNS),
        non_items=_concat(non_items, NON_ITEM_COLUMNS),
        files=files_frame,
        skipped=skipped,
        errors=errors,
    )
