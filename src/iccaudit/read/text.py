"""Delimited text files (CSV, TSV) read whole: encoding, delimiter, the pandas parser.

Files from :data:`~iccaudit.read.large_text.LARGE_TEXT_BYTES` on are parsed by DuckDB instead
(:mod:`iccaudit.read.large_text`); both give the same cells and row numbers.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from iccaudit.read.base import MAX_FILE_BYTES, FileReadError, RawTable, ReadResult
from iccaudit.read.cells import is_blank, split_columns

#: Share of control characters above which "text" is binary garbage.
_MAX_CONTROL_SHARE = 0.01
_DELIMITERS = (",", "\t", ";")
#: Control bytes that never occur in text (tab, line feed, carriage return excepted).
_CONTROL_BYTES = bytes([*range(9), 11, 12, *range(14, 32), 127])

# ---------------------------------------------------------------- text files


def _line_of(data: bytes, offset: int) -> int:
    """The 1-based editor line of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


def refuse_nul(data: bytes) -> None:
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
    refuse_nul(data)
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
        counted = Counter(len(r) for r in csv.reader(io.StringIO(sample), delimiter=delim))
        widths = {w: k for w, k in counted.items() if w > 1}
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
    frame.columns = pd.RangeIndex(frame.shape[1])
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
        from iccaudit.read.cells import arrow

        # Every cell at once, as one Arrow array of the columns end to end (no Python
        # objects): one string kernel per file instead of one per column.
        flat = pa.chunked_array([arrow(c) for _, c in frame.items()]).combine_chunks()
        # trailing columns with no text at all (a ragged last field) are not columns
        used = pc.not_equal(flat, "").fill_null(False).to_numpy(zero_copy_only=False)
        last = int(np.flatnonzero(used.reshape((w, n)).any(axis=1)).max(initial=-1))
        blank = is_blank(flat).fill_null(True)
        # A quoted cell with line breaks spans several editor lines; count them so source_row
        # stays the line a person sees (a whitespace-only cell counts as empty, breaks too).
        breaks = pc.count_substring(flat, "\n").fill_null(0).to_numpy(zero_copy_only=False)
        breaks = np.where(blank.to_numpy(zero_copy_only=False), 0, breaks)
        spans += breaks.astype("int64").reshape((w, n)).sum(axis=0)
        flat = pc.if_else(blank, pa.scalar(None, pa.large_string()), flat)
        columns = split_columns(flat, n, last + 1)
    rows = (np.cumsum(spans) - spans + 1).astype("int64")  # first line of each record
    return ReadResult(fmt, encoding, [RawTable(sheet=None, columns=columns, rows=rows)])


def read_csv(path: Path, data: bytes) -> ReadResult:
    """CSV with the delimiter sniffed (comma, tab, semicolon)."""
    return _read_delimited(data, None, "csv")


def read_tsv(path: Path, data: bytes) -> ReadResult:
    """Tab-separated text."""
    return _read_delimited(data, "\t", "tsv")
