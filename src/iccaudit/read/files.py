"""Which files to read, and one file read into raw tables (or a stream of them).

:func:`collect` expands folders (recursively, in sorted order) into the files to read, the
files skipped with a reason, and the errors. :func:`read_file` reads one file with the reader
of its format (:data:`iccaudit.read.READERS`): small files whole, large CSV/TSV files by
DuckDB, the largest streamed. It never raises for a bad file: the outcome says why.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from iccaudit.read.base import (
    MAX_FILE_BYTES,
    FileReadError,
    FileSkipped,
    IngestError,
    ReadResult,
    first_line,
)
from iccaudit.read.excel import read_xlsx
from iccaudit.read.large_text import (
    LARGE_TEXT_BYTES,
    MAX_TEXT_BYTES,
    STREAM_TEXT_BYTES,
    TextStream,
    not_large_readable,
    read_large_text,
    scan_text,
    stream_large_text,
)
from iccaudit.read.notice import read_html
from iccaudit.read.pdf import read_pdf
from iccaudit.read.records import read_json, read_jsonl, read_parquet
from iccaudit.read.text import read_csv, read_tsv
from iccaudit.read.word import read_docx

Reader = Callable[[Path, bytes], ReadResult]

#: file suffix (lower case) -> reader. Explicit on purpose: no discovery by introspection.
READERS: dict[str, Reader] = {
    ".csv": read_csv,
    ".tsv": read_tsv,
    ".xlsx": read_xlsx,
    ".xlsm": read_xlsx,
    ".parquet": read_parquet,
    ".json": read_json,
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
    ".docx": read_docx,
    ".pdf": read_pdf,
    ".html": read_html,
    ".htm": read_html,
}

#: Text suffixes the large-file reader takes, and their fixed delimiter (None: sniffed).
TEXT_SUFFIXES = {".csv": None, ".tsv": "\t"}


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
class FileContent:
    """One file as read: its tables (``result``), or a stream of them, or why it could not be.

    ``sha256`` is the file's hash when it was read (empty when reading failed before, and for
    a stream until its last batch: :meth:`TextStream.sha256`).
    """

    sha256: str = ""
    result: ReadResult | None = None
    stream: TextStream | None = None
    error: str | None = None
    #: ``error`` is the reason the file was skipped (nothing to read), not a failure
    skipped: bool = False


def read_file(path: Path) -> FileContent:
    """Read one file with the reader of its suffix; never raises for a bad file."""
    suffix = path.suffix.lower()
    out = FileContent()
    result = None
    try:
        size = path.stat().st_size
        if suffix in TEXT_SUFFIXES and size >= LARGE_TEXT_BYTES:
            if size > MAX_TEXT_BYTES:
                out.error = (f"refused: {size / 2**30:.0f} GB is above the "
                             f"{MAX_TEXT_BYTES / 2**30:.0f} GB limit")
                return out
            if size > STREAM_TEXT_BYTES:
                # hashed and counted while it streams (the checks come after its last batch)
                scans = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iccaudit-scan")
                pending = scans.submit(scan_text, path)
                scans.shutdown(wait=False)
                stream = stream_large_text(path, pending, TEXT_SUFFIXES[suffix], suffix[1:])
                if stream is not None:
                    out.stream = stream
                    return out
                out.sha256 = pending.result().sha256
            else:
                with ThreadPoolExecutor(max_workers=1) as pool:  # hash while DuckDB parses
                    pending = pool.submit(scan_text, path)
                    result = read_large_text(path, pending, TEXT_SUFFIXES[suffix], suffix[1:])
                    scanned = pending.result()
                out.sha256 = scanned.sha256
            if result is None and size > MAX_FILE_BYTES:
                out.error = not_large_readable(size, MAX_FILE_BYTES)
                return out
        elif size > MAX_FILE_BYTES:
            out.error = (f"refused: {size / 2**20:.0f} MB is above the "
                         f"{MAX_FILE_BYTES / 2**20:.0f} MB limit")
            return out
        data = b"" if result is not None else path.read_bytes()
    except OSError as exc:
        out.error = f"cannot read: {exc.strerror or exc}"
        return out
    except FileReadError as exc:
        out.error = str(exc)
        return out
    if result is None:
        out.sha256 = hashlib.sha256(data).hexdigest()
    try:
        out.result = result or READERS[suffix](path, data)
    except FileSkipped as exc:
        out.error, out.skipped = str(exc), True
    except FileReadError as exc:
        out.error = str(exc)
    # A damaged file can make a library raise almost anything; the user sees one line, and
    # the other files of the batch are still read.
    except Exception as exc:  # noqa: BLE001
        out.error = f"cannot read: {first_line(exc)}"
    return out
