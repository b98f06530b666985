"""Readers: one function per file format, each turning bytes into tables of cell text.

:data:`READERS` is the explicit registry (file suffix -> reader). A reader returns a
:class:`ReadResult` holding one :class:`RawTable` per sheet; every cell is text (or NaN when
empty), whatever its type in the file, so that all parsing happens later, vectorised, in one
place. Readers raise :class:`FileReadError` with a one-line message for files they cannot read.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Files larger than this are refused before reading (a file error, not a crash).
MAX_FILE_BYTES = 512 * 1024 * 1024
#: An XLSX whose parts inflate beyond this is refused before parsing (zip bomb).
MAX_XLSX_UNCOMPRESSED = 1024 * 1024 * 1024
#: ... and so is one above this inflation ratio once it is past a few megabytes.
MAX_XLSX_RATIO = 100
_XLSX_RATIO_FLOOR = 16 * 1024 * 1024
#: Share of control characters above which "text" is binary garbage.
_MAX_CONTROL_SHARE = 0.01
_DELIMITERS = (",", "\t", ";")
#: Control bytes that never occur in text (tab, line feed, carriage return excepted).
_CONTROL_BYTES = bytes([*range(9), 11, 12, *range(14, 32), 127])


class FileReadError(Exception):
    """A file that cannot be read; the message is one line (without the file name)."""


@dataclass
class RawTable:
    """The cells of one sheet (or one CSV/JSON/Parquet file) as text.

    ``columns`` holds one Arrow ``large_string`` array per column, null for an empty cell,
    one entry per row of the source; ``rows`` holds the 1-based row a person sees for each.
    ``header`` is set by formats whose header is known (Parquet, JSON); otherwise the header
    row is detected in the cells. ``filled`` is ``columns`` with merged ranges filled from
    their top-left cell (Excel), or None when the sheet has no merged cells.
    """

    sheet: str | None
    columns: list[pa.Array]
    rows: np.ndarray
    header: list[str] | None = None
    filled: list[pa.Array] | None = None
    title: str = ""

    @property
    def cells(self) -> pd.DataFrame:
        """The cells as a pandas frame (for people and tests; the pipeline uses Arrow)."""
        return pd.DataFrame({j: pd.Series(c.to_numpy(zero_copy_only=False), dtype=object)
                             for j, c in enumerate(self.columns)},
                            index=pd.RangeIndex(len(self.rows)))


@dataclass
class ReadResult:
    """What a reader found in one file."""

    format: str
    encoding: str | None
    tables: list[RawTable]


# ---------------------------------------------------------------- cells to text


_MIDNIGHT = r"^(\d{4}-\d{2}-\d{2}) 00:00:00(?:\.0+)?$"


def _objects_to_text(values: np.ndarray) -> np.ndarray:
    """Python objects (float, int, date, bool, str, dict ...) to text, None when empty.

    Converted one *type* at a time through Arrow's cast, so the work is vectorised per type
    rather than a Python call per cell. Integral floats print without ".0" (Excel stores 3 as
    3.0) and midnight datetimes as plain dates.
    """
    out = np.full(len(values), None, dtype=object)
    if not len(values):
        return out
    kinds = np.array(list(map(type, values)), dtype=object)
    for kind in set(kinds.tolist()):
        mask = kinds == kind
        part = values[mask]
        if kind is type(None):
            continue
        if kind is str:
            out[mask] = part
        elif kind in (dict, list, tuple):
            out[mask] = [json.dumps(v, ensure_ascii=False, default=str) for v in part]
        elif kind is float and np.isnan(part.astype(float)).all():
            continue
        else:
            try:
                # from_pandas: a float NaN (pandas' and JSON's "missing") becomes an empty cell
                text = pc.cast(pa.array(part.tolist(), from_pandas=True), pa.string())
                text = pc.replace_substring_regex(text, _MIDNIGHT, r"\1")
                out[mask] = text.to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                out[mask] = [str(v) for v in part]
    return out


def _text_array(values: np.ndarray | pa.Array) -> pa.Array:
    """Cell text as one Arrow large_string array; whitespace-only cells become null."""
    arr = values if isinstance(values, pa.Array) else pa.array(values, type=pa.large_string(),
                                                                from_pandas=True)
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    return _null_where_blank(arr)


def _blank(arr: pa.Array) -> pa.Array:
    """Empty or whitespace-only cells (no trimmed copy of the text is made)."""
    return pc.or_(pc.equal(arr, ""), pc.utf8_is_space(arr))


def _null_where_blank(arr: pa.Array) -> pa.Array:
    blank = _blank(arr)
    if not pc.any(blank).as_py():
        return arr
    return pc.if_else(blank, pa.scalar(None, arr.type), arr)


def _holds_byte(c: pa.Array | pa.ChunkedArray, byte: int) -> bool:
    """Whether any cell's text (large_string) holds ``byte``: one numpy pass over the text
    bytes, three times Arrow's substring kernel. Bytes of a null cell count too, which can
    only send the caller to its exact, per-cell count."""
    for x in (c.chunks if isinstance(c, pa.ChunkedArray) else [c]):
        if not len(x):
            continue
        offsets = np.frombuffer(x.buffers()[1], dtype=np.int64, count=len(x) + 1,
                                offset=8 * x.offset)
        start, end = int(offsets[0]), int(offsets[-1])
        if end > start and (np.frombuffer(x.buffers()[2], dtype=np.uint8, count=end - start,
                                          offset=start) == byte).any():
            return True
    return False


def _split_columns(flat: pa.Array, n: int, w: int) -> list[pa.Array]:
    """Column-major cells (all of column 0, then column 1 ...) as one array per column."""
    return [flat.slice(j * n, n) for j in range(w)]


def _objects_to_columns(values: np.ndarray) -> list[pa.Array]:
    """A 2-D object array of cells to text columns (one conversion pass for the sheet)."""
    n, w = values.shape
    if not n or not w:
        return [pa.nulls(n, pa.large_string()) for _ in range(w)]
    flat = _text_array(_objects_to_text(values.ravel(order="F")))
    return _split_columns(flat, n, w)


def _to_2d(values: list, height: int, width: int) -> np.ndarray:
    """Rows of Python values (possibly ragged) in a height x width object array."""
    out = np.full((height, width), None, dtype=object)
    if not values or not width:
        return out
    try:
        grid = np.array(values, dtype=object)
    except ValueError:  # ragged rows: pandas pads them
        grid = pd.DataFrame(values, dtype=object).to_numpy(dtype=object)
    if grid.ndim != 2:
        grid = pd.DataFrame(values, dtype=object).to_numpy(dtype=object)
    out[: grid.shape[0], : grid.shape[1]] = grid
    return out


# ---------------------------------------------------------------- text files


def _line_of(data: bytes, offset: int) -> int:
    """The 1-based editor line of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


def _check_nul(data: bytes) -> None:
    """NUL bytes: binary data when there are many, a damaged line when there are a few.

    A NUL never belongs in a text table, and the CSV parsers would cut cells at it silently,
    so a file holding one is refused either way; the message says which kind it is.
    """
    first = data.find(b"\x00")
    if first < 0:
        return
    sample = data[:65536]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if controls > _MAX_CONTROL_SHARE * len(sample):
        raise FileReadError("cannot read: binary data, not a text table")
    raise FileReadError(
        f"cannot read: NUL byte on line {_line_of(data, first)} (a damaged text file); "
        "remove it and read the file again"
    )


#: UTF-8 of one CJK ideograph (U+4E00..U+9FFF): a GB18030 file almost never holds one by chance.
_UTF8_CJK = re.compile(rb"[\xe4-\xe9][\x80-\xbf]{2}")


def _check_mixed_encoding(data: bytes, bad: int) -> None:
    """Refuse a file that is UTF-8 up to some line and another encoding after it.

    Decoding it all as GB18030 would turn the UTF-8 part into mojibake without a word; the
    Chinese text before the first non-UTF-8 byte shows the file was written as UTF-8.
    """
    if _UTF8_CJK.search(data, 0, bad) is None:
        return
    raise FileReadError(
        f"cannot read: mixed text encodings: UTF-8 up to line {_line_of(data, bad) - 1}, "
        f"line {_line_of(data, bad)} is not UTF-8 (GB18030/GBK?); save the whole file in "
        "one encoding"
    )


def decode(data: bytes) -> tuple[str, str]:
    """Bytes to text: UTF-8 (with or without BOM) strictly first, then GB18030, then a guess."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    if not data.strip():
        raise FileReadError("cannot read: the file is empty" if not data
                            else "cannot read: the file holds only blank lines")
    _check_nul(data)
    try:
        text = data.decode("utf-8-sig")
        encoding = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
    except UnicodeDecodeError as exc:
        _check_mixed_encoding(data, exc.start)
        try:
            text, encoding = data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            from charset_normalizer import from_bytes

            best = from_bytes(data).best()
            if best is None:
                raise FileReadError("cannot read: unknown text encoding (not UTF-8 or GB18030)") from None
            text, encoding = str(best), best.encoding
    sample = text[:65536]
    controls = len(re.findall(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]", sample))
    if sample and controls > _MAX_CONTROL_SHARE * len(sample):
        raise FileReadError("cannot read: binary data, not a text table")
    return text, encoding


def sniff_delimiter(text: str) -> str:
    """Comma, tab or semicolon: the one that splits the most sample lines into equal widths."""
    from collections import Counter

    # the first 60 non-blank lines (a prefix is enough to find them)
    lines = [ln for ln in text[:262144].splitlines()[:60] if ln.strip()]
    sample = "\n".join(lines)
    # a sample line may hold a huge cell; it must become a value_too_long reject, not a crash
    csv.field_size_limit(MAX_FILE_BYTES)
    best, best_score = ",", (0, 0)
    for delim in _DELIMITERS:
        widths = Counter(len(r) for r in csv.reader(io.StringIO(sample), delimiter=delim))
        widths = {w: k for w, k in widths.items() if w > 1}
        if not widths:
            continue
        top = max(widths.values())
        mode = min(w for w, k in widths.items() if k == top)  # as pandas' mode: the smallest
        score = (top, mode)
        if score > best_score:
            best, best_score = delim, score
    return best


def _parse_delimited(text: str, delim: str) -> pd.DataFrame:
    """Delimited text to a frame of text cells, rows of any width, blank lines kept."""
    if not text.strip():
        return pd.DataFrame(index=pd.RangeIndex(0))
    # pandas' C parser is fast but needs a width: one more than the most delimiters on a
    # line is enough unless quoted cells span lines, and then the parser says so.
    data = text.encode("utf-8")
    width = _max_delimiters(data, delim) + 1
    try:
        # UTF-8 bytes, not a StringIO: pandas re-encodes a text buffer in small chunks
        # through Python (about 40 s for 1 M lines), while bytes go straight to the C parser.
        frame = pd.read_csv(
            io.BytesIO(data), sep=delim, header=None, names=range(width),
            dtype=str, na_filter=False, skip_blank_lines=False, engine="c",
            quotechar='"', doublequote=True, encoding="utf-8",
        )
    except (pd.errors.ParserError, ValueError) as exc:
        if "EOF inside string" in str(exc):
            raise FileReadError(_unclosed_quote(pd.Series(text.splitlines(), dtype="str"))
                                ) from None
        # The csv module has no width limit; rows are padded while transposing, in C.
        csv.field_size_limit(MAX_FILE_BYTES)  # long cells become value_too_long rejects
        try:
            records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim))
        except csv.Error as exc:
            raise FileReadError(f"cannot read: {exc}") from None
        columns = list(itertools.zip_longest(*records))
        frame = pd.DataFrame(
            {j: pd.Series(col, dtype=object) for j, col in enumerate(columns)},
            index=pd.RangeIndex(len(records)),
        )
    frame.columns = range(frame.shape[1])
    return frame


#: UTF-8 of the line boundaries of str.splitlines(): single bytes, and the last byte of
#: U+0085 (C2 85), U+2028 (E2 80 A8) and U+2029 (E2 80 A9).
_LINE_BYTES = np.array([0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E], dtype=np.uint8)


def _max_delimiters(data: bytes, delim: str) -> int:
    """The most ``delim`` characters on one line (lines as ``str.splitlines`` cuts them).

    Counted on the UTF-8 bytes with numpy: a Series of a million line strings cost seconds.
    """
    b = np.frombuffer(data, dtype=np.uint8)
    where = np.flatnonzero(b == ord(delim))
    if len(where) == 0:
        return 0
    brk = np.isin(b, _LINE_BYTES)
    if len(b) >= 2:
        brk[1:] |= (b[:-1] == 0xC2) & (b[1:] == 0x85)
    if len(b) >= 3:
        brk[2:] |= (b[:-2] == 0xE2) & (b[1:-1] == 0x80) & ((b[2:] == 0xA8) | (b[2:] == 0xA9))
    line = np.searchsorted(np.flatnonzero(brk), where)
    return int(np.bincount(line).max())


def _unclosed_quote(lines: pd.Series) -> str:
    """The message for a quoted cell that runs to the end of the file, naming its line.

    The line that opens it is where the running count of quotes last turns odd; a whole
    file swallowed into one cell would be a silent loss of every line after it.
    """
    odd = (lines.str.count('"').cumsum() % 2).to_numpy()
    opened = np.flatnonzero((odd == 1) & (np.concatenate([[0], odd[:-1]]) == 0))
    line = int(opened[-1]) + 1 if len(opened) else 1
    return (f"cannot read: line {line}: a quoted cell (\") is never closed, so the rest of "
            "the file would be read as one cell; fix the quote and read the file again")


def _read_delimited(data: bytes, delimiter: str | None, fmt: str) -> ReadResult:
    text, encoding = decode(data)
    delim = delimiter or sniff_delimiter(text)
    frame = _parse_delimited(text, delim)
    n, w = frame.shape
    spans = np.ones(n, dtype="int64")
    columns: list[pa.Array] = []
    if n and w:
        from iccaudit.ingest.values import arrow

        # Every cell at once, as one Arrow array of the columns end to end (no Python
        # objects): one string kernel per file instead of one per column.
        flat = pa.chunked_array([arrow(c) for _, c in frame.items()]).combine_chunks()
        # trailing columns with no text at all (a ragged last field) are not columns
        used = pc.not_equal(flat, "").fill_null(False).to_numpy(zero_copy_only=False)
        last = int(np.flatnonzero(used.reshape((w, n)).any(axis=1)).max(initial=-1))
        blank = _blank(flat).fill_null(True)
        # A quoted cell with line breaks spans several editor lines; count them so source_row
        # stays the line a person sees (a whitespace-only cell counts as empty, breaks too).
        breaks = pc.count_substring(flat, "\n").fill_null(0).to_numpy(zero_copy_only=False)
        breaks = np.where(blank.to_numpy(zero_copy_only=False), 0, breaks)
        spans += breaks.astype("int64").reshape((w, n)).sum(axis=0)
        flat = pc.if_else(blank, pa.scalar(None, pa.large_string()), flat)
        columns = _split_columns(flat, n, last + 1)
    rows = (np.cumsum(spans) - spans + 1).astype("int64")  # first line of each record
    return ReadResult(fmt, encoding, [RawTable(sheet=None, columns=columns, rows=rows)])


def read_csv(path: Path, data: bytes) -> ReadResult:
    """CSV with the delimiter sniffed (comma, tab, semicolon)."""
    return _read_delimited(data, None, "csv")


def read_tsv(path: Path, data: bytes) -> ReadResult:
    """Tab-separated text."""
    return _read_delimited(data, "\t", "tsv")


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


_local = threading.local()


def _new_duckdb(large_strings: bool) -> Any:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # no DuckDB bars on the CLI's stderr
    except duckdb.InvalidInputException:
        pass  # in Jupyter without ipywidgets DuckDB refuses to touch the setting at all
    if large_strings:
        # large_string buffers: the type the normaliser works in, so no cast and no copy
        con.execute("SET arrow_large_buffer_size = true")
    return con


def duckdb_connection(large_strings: bool = False) -> Any:
    """One in-memory DuckDB connection per thread (and per Arrow string width) for ingest.

    Opening a connection costs about 20 ms: once per sheet that was most of the time of a small
    tender file. It holds no data between calls.
    """
    key = "large" if large_strings else "plain"
    con = getattr(_local, key, None)
    if con is None:
        con = _new_duckdb(large_strings)
        setattr(_local, key, con)
    return con


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
    _check_nul(head)
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    delim = delimiter or sniff_delimiter(text)
    sample = list(csv.reader(io.StringIO(text, newline=""), delimiter=delim))
    return delim, max((len(r) for r in sample), default=1)


def _blank_to_null(cols: list[pa.Array | pa.ChunkedArray], line_breaks: bool = True
                   ) -> tuple[list[pa.Array | pa.ChunkedArray], np.ndarray]:
    """Each column with whitespace-only cells null (chunk by chunk: a chunked column stays
    chunked, no copy into one array), and each row's span in editor lines (a quoted cell's
    line breaks make its row span several; with ``line_breaks=False`` the caller knows no
    cell holds one, and every span is 1).

    Two columns at a time, in threads: the Arrow kernels release the GIL, and this runs
    before the file's rows can be normalised.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(c: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray | None]:
        if isinstance(c, pa.ChunkedArray):
            c = pa.chunked_array([_null_where_blank(x.cast(pa.large_string()))
                                  for x in c.chunks if len(x)], pa.large_string())
        else:
            c = _null_where_blank(c.cast(pa.large_string()))
        if not line_breaks or not _holds_byte(c, 0x0A):
            return c, None
        return c, pc.count_substring(c, "\n").fill_null(0).to_numpy(zero_copy_only=False)

    n = len(cols[0]) if cols else 0
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="iccaudit-cells") as pool:
        done = list(pool.map(one, cols))
    spans = np.ones(n, dtype="int64")
    for _, breaks in done:
        if breaks is not None:
            spans += breaks
    return [c for c, _ in done], spans


def _expected_lines(scan: TextScan) -> int:
    return scan.newlines + (0 if scan.ends_with_newline or scan.size == 0 else 1)


def _encoding(head: bytes) -> str:
    return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"


def _resolved(scan: Any) -> TextScan:
    """A :class:`TextScan`, waiting for it when it is a future."""
    return scan.result() if hasattr(scan, "result") else scan


def not_large_readable(size: int, general_limit: int) -> str:
    """Why a text file beyond the general reader's limit is refused: the large-file reader
    cannot read it exactly either."""
    return (f"refused: {size / 2**20:.0f} MB is above the {general_limit / 2**20:.0f} MB "
            "limit of the general reader, and the file is not one the large-file reader "
            "takes (UTF-8, no blank lines, no old Mac line ends)")


def read_large_text(path: Path, scan: Any, delimiter: str | None, fmt: str
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
    out, spans = _blank_to_null(cols, line_breaks=not cols or len(cols[0]) != expected)
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
    tables: Any  # Iterator[RawTable]
    #: the file's :class:`TextScan`, or a future of it (hashed and counted while it streams)
    scan: Any
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


def stream_large_text(path: Path, scan: Any, delimiter: str | None, fmt: str
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
    con = _new_duckdb(large_strings=True)  # its own: the stream outlives this call

    def open_reader(parallel: bool):
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
        raise FileReadError(_duckdb_error(exc)) from None
    stream = TextStream(fmt, _encoding(head), None, scan)

    def tables():
        batch = first
        try:
            while batch is not None:
                cols, spans = _blank_to_null([c for c in batch.columns])
                rows = (stream.lines_seen + np.cumsum(spans) - spans + 1).astype("int64")
                stream.lines_seen += int(spans.sum())
                yield RawTable(sheet=None, columns=cols, rows=rows)
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    batch = None
        except (duckdb.Error, pa.ArrowException) as exc:
            raise FileReadError(_duckdb_error(exc)) from None
        finally:
            con.close()

    stream.tables = tables()
    return stream


# ---------------------------------------------------------------- Excel


def check_zip(data: bytes) -> None:
    """Refuse an XLSX that is not a zip, or whose content would inflate absurdly."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise FileReadError(f"cannot read: not a valid xlsx file ({exc})") from None
    unpacked = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if unpacked > MAX_XLSX_UNCOMPRESSED or (
        unpacked > _XLSX_RATIO_FLOOR and unpacked / packed > MAX_XLSX_RATIO
    ):
        raise FileReadError(
            f"refused: the xlsx inflates to {unpacked / 2**20:.0f} MB from "
            f"{packed / 2**20:.1f} MB (limit {MAX_XLSX_UNCOMPRESSED / 2**20:.0f} MB, "
            f"ratio {MAX_XLSX_RATIO}); possible zip bomb"
        )


def read_xlsx(path: Path, data: bytes) -> ReadResult:
    """Every worksheet (hidden ones too), cells as text, merged ranges kept for filling."""
    import python_calamine as calamine

    # calamine's own error types, plus what a damaged zip member raises on the way
    errors = (calamine.CalamineError, calamine.PasswordError, calamine.XmlError,
              calamine.ZipError, ValueError, OSError, zipfile.BadZipFile)
    check_zip(data)
    try:
        book = calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except errors as exc:
        raise FileReadError(f"cannot read: {_first_line(exc)}") from None
    tables = []
    for meta in book.sheets_metadata:
        if "WorkSheet" not in str(meta.typ):
            continue  # chart sheets hold no cells
        try:
            sheet = book.get_sheet_by_name(meta.name)
            values = sheet.to_python(skip_empty_area=False)
            merged = sheet.merged_cell_ranges or []
        except errors as exc:
            raise FileReadError(f"cannot read sheet {meta.name!r}: {_first_line(exc)}") from None
        merges = [(r0, c0, r1, c1) for (r0, c0), (r1, c1) in merged]
        height = max([len(values)] + [m[2] + 1 for m in merges])
        width = max([max(map(len, values), default=0)] + [m[3] + 1 for m in merges])
        grid = _to_2d(values, height, width)
        text = _text_array(_objects_to_text(grid.ravel(order="F")))
        columns = _split_columns(text, height, width)
        filled = None
        if merges:  # every cell of a merged range takes the range's top-left value
            cells = text.to_numpy(zero_copy_only=False).reshape((width, height)).T.copy()
            for r0, c0, r1, c1 in merges:
                cells[r0 : r1 + 1, c0 : c1 + 1] = cells[r0, c0]
            filled = _split_columns(pa.array(cells.ravel(order="F"), type=pa.large_string()),
                                    height, width)
        tables.append(RawTable(meta.name, columns, np.arange(1, height + 1, dtype="int64"),
                               filled=filled))
    return ReadResult("xlsx", None, tables)


# ---------------------------------------------------------------- Parquet and JSON


def _records_table(records: list, rows: np.ndarray, title: str) -> RawTable:
    """A list of JSON-like records to a table with a known header (the union of keys)."""
    records = [r if isinstance(r, dict) else {"(value)": r} for r in records]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    header = [str(c) for c in frame.columns]
    columns = _objects_to_columns(frame.to_numpy(dtype=object))
    return RawTable(None, columns, rows, header=header, title=title)


def read_parquet(path: Path, data: bytes) -> ReadResult:
    """A Parquet file: column names are the header, one table."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise FileReadError(f"cannot read: {_first_line(exc)}") from None
    columns = []
    for col in table.columns:
        if pa.types.is_floating(col.type):  # NaN is how pandas writes "missing"
            col = pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
        try:
            text = pc.replace_substring_regex(pc.cast(col, pa.string()), _MIDNIGHT, r"\1")
            columns.append(_text_array(text.combine_chunks()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            values = np.array(col.to_pylist() + [None], dtype=object)[:-1]  # keep it 1-D
            columns.append(_text_array(_objects_to_text(values)))
    rows = np.arange(1, table.num_rows + 1, dtype="int64")
    raw = RawTable(None, columns, rows, header=[str(n) for n in table.column_names])
    return ReadResult("parquet", None, [raw])


#: Keys of a JSON object that hold the line items.
_ITEM_KEYS = ("items", "line_items", "lines", "records", "data", "明细", "清单")


def read_json(path: Path, data: bytes) -> ReadResult:
    """A JSON list of objects, or an object with the list under "items" plus tender keys."""
    text, encoding = decode(data)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileReadError(f"cannot read: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    title = ""
    if isinstance(doc, dict):
        key = next((k for k in _ITEM_KEYS if isinstance(doc.get(k), list)), None)
        if key is None:
            raise FileReadError(
                "cannot read: a JSON object needs a list of line items under "
                + " / ".join(f'"{k}"' for k in _ITEM_KEYS[:3])
            )
        title = "\n".join(
            f"{k}：{v}" for k, v in doc.items() if k != key and isinstance(v, str | int | float)
        )
        doc = doc[key]
    if not isinstance(doc, list):
        raise FileReadError("cannot read: JSON must be a list of objects or {\"items\": [...]}")
    rows = np.arange(1, len(doc) + 1, dtype="int64")
    return ReadResult("json", encoding, [_records_table(doc, rows, title)])


def read_jsonl(path: Path, data: bytes) -> ReadResult:
    """One JSON object per line; blank lines are kept as blank rows; line numbers are rows."""
    text, encoding = decode(data)
    records: list = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            records.append({})
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise FileReadError(f"cannot read: line {n}: invalid JSON: {exc.msg}") from None
    rows = np.arange(1, len(records) + 1, dtype="int64")
    return ReadResult("jsonl", encoding, [_records_table(records, rows, "")])


def _duckdb_error(exc: BaseException) -> str:
    """DuckDB's CSV error in one line: where, then what ("CSV Error on Line: 27: Expected
    Number of Columns: 9 Found: 29")."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    where = lines[0].split("Error: ", 1)[-1] if lines else type(exc).__name__
    what = next((ln for ln in lines[1:] if not ln.startswith(("Original Line", "Possible"))
                 and "=" not in ln), "")
    return f"cannot read: {where}" + (f": {what}" if what else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
}
