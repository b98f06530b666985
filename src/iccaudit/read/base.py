"""What every reader returns (:class:`RawTable`, :class:`ReadResult`) and raises
(:class:`FileReadError`), the file size limit, and DuckDB's errors in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

#: Files larger than this are refused before reading (a file error, not a crash).
MAX_FILE_BYTES = 512 * 1024 * 1024


class IngestError(Exception):
    """A problem that stops the whole ingest (missing path, invalid mapping file)."""


class FileReadError(Exception):
    """A file that cannot be read; the message is one line (without the file name)."""


class FileSkipped(FileReadError):
    """A file of a known format that holds nothing to read (an OCDS planning release): it is
    accounted as skipped, with the message as the reason, not as an error."""


@dataclass
class RawTable:
    """The cells of one sheet (or one CSV/JSON/Parquet file) as text.

    ``columns`` holds one Arrow ``large_string`` array per column, null for an empty cell,
    one entry per row of the source; ``rows`` holds the 1-based row a person sees for each.
    ``header`` is set by formats whose header is known (Parquet, JSON); otherwise the header
    row is detected in the cells. ``filled`` is ``columns`` with merged ranges filled from
    their top-left cell (Excel), or None when the sheet has no merged cells.
    ``locations`` says where each row lies in a document whose tables are not sheets (a PDF
    page and table, a Word table, an HTML element path, an OCDS ocid/award/item): one text
    per row, stored as the row's ``source_sheet``; None: every row is in ``sheet``.
    ``kinds`` gives the non-item kind of rows the reader knows are not line items (an OCDS
    item published again: "repeat"), None elsewhere; ``keys`` what identifies each row's
    publication, so that a publication repeated in a later file of the batch is one item.
    """

    sheet: str | None
    columns: list[pa.Array]
    rows: np.ndarray
    header: list[str] | None = None
    filled: list[pa.Array] | None = None
    title: str = ""
    locations: np.ndarray | None = None
    kinds: np.ndarray | None = None
    keys: list[tuple[str | None, ...]] | None = None

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


def duckdb_error(exc: BaseException) -> str:
    """DuckDB's CSV error in one line: where, then what ("CSV Error on Line: 27: Expected
    Number of Columns: 9 Found: 29")."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    where = lines[0].split("Error: ", 1)[-1] if lines else type(exc).__name__
    what = next((ln for ln in lines[1:] if not ln.startswith(("Original Line", "Possible"))
                 and "=" not in ln), "")
    return f"cannot read: {where}" + (f": {what}" if what else "")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

