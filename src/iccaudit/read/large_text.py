"""Large delimited text files: one scan (hash, line count, what DuckDB must know), then DuckDB's
CSV reader, whole or streamed in batches (:class:`TextStream`) beyond
:data:`~iccaudit.read.large_text.STREAM_TEXT_BYTES`.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit.core.duck import duckdb_connection, new_duckdb
from iccaudit.read.base import MAX_FILE_BYTES, FileReadError, RawTable, ReadResult, duckdb_error
from iccaudit.read.cells import blank_to_null
from iccaudit.read.text import refuse_nul, sniff_delimiter

# ---------------------------------------------------------------- large text files

#: CSV/TSV files at least this large are parsed by DuckDB's CSV reader (in parallel, cells
#: straight into Arrow, no Python object per cell); smaller ones by pandas, which costs less
#: per file. Both give the same cells and row numbers (a test holds them to that).
LARGE_TEXT_BYTES = 8 * 1024 * 1024
#: The largest text file read at all: the DuckDB path never holds the file's bytes.
MAX_TEXT_BYTES = 64 * 1024**3
_SCAN_CHUNK = 16 * 1024 * 1024
#: The start of a large text file that its encoding, delimiter and row width are read from.
_SAMPLE_BYTES = 65536


@dataclass
class TextScan:
    """One streaming pass over a text file: its hash and what the DuckDB path must know."""

    sha256: str
    size: int
    head: bytes
    newlines: int
    ends_with_newline: bool
    #: an empty line ("\n\n"), which DuckDB's reader skips (its row numbers would shift)
    blank_lines: bool
    #: a carriage return not followed by a line feed (old Mac line ends)
    lone_cr: bool
    #: the line of the first NUL byte, if any (a damaged file: refused, as the general
    #: reader refuses it, rather than a cell with a NUL in it)
    nul_line: int | None = None

    def check_nul(self) -> None:
        """Refuse a file holding a NUL byte, with the message the general reader gives."""
        if self.nul_line is not None:
            raise FileReadError(
                f"cannot read: NUL byte on line {self.nul_line} (a damaged text file); "
                "remove it and read the file again")


def scan_text(path: Path) -> TextScan:
    """Hash a file and count its lines in chunks (memory stays one chunk, whatever the size)."""
    import hashlib

    digest = hashlib.sha256()
    head = b""
    newlines = crs = crlfs = 0
    blank = False
    tail = b""
    size = 0
    nul_line = None
    with open(path, "rb") as f:
        while chunk := f.read(_SCAN_CHUNK):
            digest.update(chunk)  # (hashlib lets go of the GIL for a large buffer)
            if not head:
                head = chunk[:_SAMPLE_BYTES]
                blank = chunk.startswith((b"\n", b"\r\n"))
            size += len(chunk)
            # The line ends by one numpy pass (vectorised, four times bytes.count, and no
            # GIL held through the comparison: the scan runs beside the normalisers)
            breaks = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
            if nul_line is None and (at := chunk.find(b"\x00")) >= 0:
                nul_line = newlines + int(np.searchsorted(breaks, at)) + 1
            newlines += len(breaks)
            cr = chunk.find(b"\r") >= 0 or b"\r" in tail  # CR-free text (most of it) is simpler
            if cr:  # patterns across the chunk boundary: the last two bytes of the one before
                crs += chunk.count(b"\r")
                joined = tail + chunk
                crlfs += joined.count(b"\r\n") - tail.count(b"\r\n")
                blank = blank or b"\n\n" in joined or b"\n\r\n" in joined
            elif not blank:  # two line ends in a row: in the chunk, or across the seam
                blank = bool(len(breaks) > 1 and (np.diff(breaks) == 1).any()) or (
                    tail.endswith(b"\n") and chunk.startswith(b"\n"))
            tail = chunk[-2:]
    return TextScan(digest.hexdigest(), size, head, newlines, tail.endswith(b"\n"), blank,
                    crs != crlfs, nul_line)


def _read_csv_sql(width: int, parallel: bool, buffer_size: int | None = None) -> str:
    """DuckDB's exact reading of a delimited file (parameters: path, delimiter): every cell
    text, short rows padded, a row wider than ``width`` an error rather than a silent cut.
    ``buffer_size``: bytes DuckDB reads at a time (one Arrow chunk of rows per buffer)."""
    columns = "{" + ", ".join(f"'c{j}': 'VARCHAR'" for j in range(width)) + "}"
    buffer = f", buffer_size = {int(buffer_size)}" if buffer_size else ""
    return (f"SELECT * FROM read_csv(?, header = false, delim = ?, quote = '\"', escape = '\"', "
            f"columns = {columns}, null_padding = true, auto_detect = false, "
            f"strict_mode = true, parallel = {str(parallel).lower()}{buffer})")


#: A large CSV is read in this many buffers, one per reader thread, and comes back as as many
#: Arrow chunks, each contiguous: the normaliser cuts its pieces inside them, so the cells are
#: never copied into one array (with DuckDB's 8 MB buffers, 32 chunks for a 250 MB file, the
#: copy cost 0.5-0.9 CPU-seconds at 1 M lines).
READ_BUFFERS = 2
#: ... but not smaller than this (DuckDB needs a buffer to hold the longest line).
MIN_READ_BUFFER = 4 * 1024 * 1024


def _duckdb_cells(path: Path, delim: str, width: int) -> list | None:
    """The cells of a delimited file as Arrow string columns, or None if DuckDB cannot read it
    exactly (then the pandas reader does, or says why not)."""
    import duckdb

    con = duckdb_connection(large_strings=True)
    parallel = True
    buffer = max(-(-path.stat().st_size // READ_BUFFERS) + 1, MIN_READ_BUFFER)
    for _ in range(3):
        try:
            # a batch as large as a buffer's rows: one Arrow chunk per buffer
            table = con.sql(_read_csv_sql(width, parallel, buffer), params=[str(path), delim]
                            ).to_arrow_table(1 << 40)
        except duckdb.Error as exc:
            message = str(exc).lower()
            if parallel and "parallel" in message:
                parallel = False  # quoted line breaks need the serial reader
            elif "expected number of columns" in message and width < 4096:
                width = width * 4 + 8  # a row wider than the sample: strict mode said so
            else:
                return None
            continue
        return table.columns  # one contiguous chunk per buffer, kept as they are
    return None


def read_head(path: Path) -> bytes:
    """The first bytes of a file, that its encoding, delimiter and row width are read from."""
    with open(path, "rb") as f:
        return f.read(_SAMPLE_BYTES)


def _text_sample(head: bytes, delimiter: str | None) -> tuple[str, int] | None:
    """Delimiter and row width from the first 64 KB, or None if DuckDB should not read it."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    refuse_nul(head)
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    delim = delimiter or sniff_delimiter(text)
    sample = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim))
    return delim, max((len(r) for r in sample), default=1)


def _expected_lines(scan: TextScan) -> int:
    return scan.newlines + (0 if scan.ends_with_newline or scan.size == 0 else 1)


def _encoding(head: bytes) -> str:
    return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"


#: A scan, or a scan still running in a thread.
PendingScan = TextScan | Future[TextScan]


def _resolved(scan: PendingScan) -> TextScan:
    """A :class:`TextScan`, waiting for it when it is a future."""
    return scan.result() if isinstance(scan, Future) else scan


def not_large_readable(size: int, general_limit: int) -> str:
    """Why a text file beyond the general reader's limit is refused: the large-file reader
    cannot read it exactly either."""
    return (f"refused: {size / 2**20:.0f} MB is above the {general_limit / 2**20:.0f} MB "
            "limit of the general reader, and the file is not one the large-file reader "
            "takes (UTF-8, no blank lines, no old Mac line ends)")


def read_large_text(path: Path, scan: PendingScan, delimiter: str | None, fmt: str
                    ) -> ReadResult | None:
    """A large CSV/TSV read by DuckDB; None when only the general reader can read it exactly.

    UTF-8 only (GB18030 files and anything unusual take the general path: blank lines, lone
    carriage returns, quoted cells DuckDB rejects, rows wider than the sampled width ...). The
    row numbers are checked against the file's own line count before the result is used.
    ``scan`` is the file's :class:`TextScan`, or a future of it: hashing and counting the lines
    then run while DuckDB parses (both release the GIL).
    """
    sampled = _text_sample(read_head(path), delimiter)
    if sampled is None:
        return None
    delim, width = sampled
    cols = _duckdb_cells(path, delim, width)
    if cols is None:
        return None
    scan = _resolved(scan)
    scan.check_nul()
    if scan.blank_lines or scan.lone_cr:
        return None  # DuckDB skips empty lines: its row numbers would be off
    expected = _expected_lines(scan)
    # as many rows as the file has lines: no cell can hold a line break (each would add a
    # line and no row), so the per-cell search for them is skipped
    out, spans = blank_to_null(cols, line_breaks=not cols or len(cols[0]) != expected)
    if int(spans.sum()) != expected:
        return None  # DuckDB saw the lines differently: the general reader decides
    # trailing columns without text are dropped, as the general reader drops them (a cell of
    # spaces counts as text here, as there); found from the right, usually at the first try
    last = next((j for j in range(len(cols) - 1, -1, -1)
                 if pc.any(pc.not_equal(cols[j], "")).as_py()), -1)
    out = out[: last + 1]
    rows = (np.cumsum(spans) - spans + 1).astype("int64")
    return ReadResult(fmt, _encoding(scan.head),
                      [RawTable(sheet=None, columns=out, rows=rows)])


#: Text files larger than this are streamed: read in batches, never whole in memory.
STREAM_TEXT_BYTES = MAX_FILE_BYTES
#: Rows per streamed batch.
STREAM_BATCH_ROWS = 250_000


@dataclass
class TextStream:
    """A large text file read by DuckDB batch by batch (its cells never all in memory).

    ``tables`` yields one :class:`RawTable` per batch, rows numbered on from the previous
    one. After the last, :meth:`check` says whether DuckDB saw every line of the file (the
    general reader cannot stand in at this size, so a mismatch is a file error). Every
    column of the sampled width is kept (a later row may fill one that the first rows leave
    empty), so the raw JSON of such a file can hold "colN": null entries the general reader
    would have trimmed.
    """

    format: str
    encoding: str
    tables: Iterator[RawTable]
    #: the file's :class:`TextScan`, or a future of it (hashed and counted while it streams)
    scan: PendingScan
    lines_seen: int = 0

    def _scanned(self) -> TextScan:
        self.scan = _resolved(self.scan)
        return self.scan

    def sha256(self) -> str:
        """The file's SHA-256 (waits for the scan)."""
        return self._scanned().sha256

    def check(self) -> str | None:
        """None when every line was read as it should be, else the one-line reason why not
        (a file error: at this size no other reader can stand in, and none of its rows
        count). Waits for the scan of the file."""
        scan = self._scanned()
        try:
            scan.check_nul()
        except FileReadError as exc:
            return str(exc)
        if scan.blank_lines or scan.lone_cr:
            return not_large_readable(scan.size, MAX_FILE_BYTES)
        expected = _expected_lines(scan)
        if self.lines_seen == expected:
            return None
        return (f"cannot read: the large-file reader counted {self.lines_seen:,} lines where "
                f"the file has {expected:,} (a cell with only spaces and line "
                "breaks?); split the file below "
                f"{STREAM_TEXT_BYTES / 2**20:.0f} MB or save it without such cells")


def stream_large_text(path: Path, scan: PendingScan, delimiter: str | None, fmt: str
                      ) -> TextStream | None:
    """A very large CSV/TSV as a :class:`TextStream`, or None when DuckDB cannot read it.

    ``scan`` is the file's :class:`TextScan` or a future of it: hashing and counting the
    lines (seconds for gigabytes) then run while the file streams, and what they find (a NUL
    byte, blank lines, lone carriage returns, a line count DuckDB did not see) fails the file
    at :meth:`TextStream.check`, after its last batch.
    """
    import duckdb

    head = read_head(path)
    sampled = _text_sample(head, delimiter)
    if sampled is None:
        return None
    delim, width = sampled
    # quoted line breaks need DuckDB's serial reader (the parallel one says so at once)
    con = new_duckdb(large_strings=True)  # its own: the stream outlives this call

    def open_reader(parallel: bool) -> tuple[pa.RecordBatchReader, pa.RecordBatch]:
        reader = con.sql(_read_csv_sql(width, parallel), params=[str(path), delim]
                         ).to_arrow_reader(STREAM_BATCH_ROWS)
        return reader, reader.read_next_batch()

    try:
        try:
            reader, first = open_reader(True)
        except duckdb.Error as exc:
            if "parallel" not in str(exc).lower():
                raise
            reader, first = open_reader(False)
    except StopIteration:
        con.close()
        return None
    except duckdb.Error as exc:
        con.close()
        raise FileReadError(duckdb_error(exc)) from None
    stream = TextStream(fmt, _encoding(head), iter(()), scan)

    def tables() -> Iterator[RawTable]:
        batch: pa.RecordBatch | None = first
        try:
            while batch is not None:
                cols, spans = blank_to_null([c for c in batch.columns])
                rows = (stream.lines_seen + np.cumsum(spans) - spans + 1).astype("int64")
                stream.lines_seen += int(spans.sum())
                yield RawTable(sheet=None, columns=cols, rows=rows)
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    batch = None
        except (duckdb.Error, pa.ArrowException) as exc:
            raise FileReadError(duckdb_error(exc)) from None
        finally:
            con.close()

    stream.tables = tables()
    return stream


