"""Excel workbooks (XLSX, XLSM): every worksheet, hidden ones too, merged cells filled; zip
bombs refused before parsing.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa

from iccaudit.read.base import FileReadError, RawTable, ReadResult, first_line
from iccaudit.read.cells import objects_to_text, split_columns, text_array, to_2d

#: An XLSX whose parts inflate beyond this is refused before parsing (zip bomb).
MAX_XLSX_UNCOMPRESSED = 1024 * 1024 * 1024
#: ... and so is one above this inflation ratio once it is past a few megabytes.
MAX_XLSX_RATIO = 100
_XLSX_RATIO_FLOOR = 16 * 1024 * 1024
# ---------------------------------------------------------------- Excel


def check_zip(data: bytes, kind: str = "xlsx") -> None:
    """Refuse an XLSX (or another zipped ``kind``: docx) that is not a zip, or whose content
    would inflate absurdly."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise FileReadError(f"cannot read: not a valid {kind} file ({exc})") from None
    unpacked = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if unpacked > MAX_XLSX_UNCOMPRESSED or (
        unpacked > _XLSX_RATIO_FLOOR and unpacked / packed > MAX_XLSX_RATIO
    ):
        raise FileReadError(
            f"refused: the {kind} inflates to {unpacked / 2**20:.0f} MB from "
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
        raise FileReadError(f"cannot read: {first_line(exc)}") from None
    tables = []
    for meta in book.sheets_metadata:
        if "WorkSheet" not in str(meta.typ):
            continue  # chart sheets hold no cells
        try:
            sheet = book.get_sheet_by_name(meta.name)
            values = sheet.to_python(skip_empty_area=False)
            merged = sheet.merged_cell_ranges or []
        except errors as exc:
            raise FileReadError(f"cannot read sheet {meta.name!r}: {first_line(exc)}") from None
        merges = [(r0, c0, r1, c1) for (r0, c0), (r1, c1) in merged]
        height = max([len(values)] + [m[2] + 1 for m in merges])
        width = max([max(map(len, values), default=0)] + [m[3] + 1 for m in merges])
        grid = to_2d(values, height, width)
        text = text_array(objects_to_text(grid.ravel(order="F")))
        columns = split_columns(text, height, width)
        filled = None
        if merges:  # every cell of a merged range takes the range's top-left value
            cells = text.to_numpy(zero_copy_only=False).reshape((width, height)).T.copy()
            for r0, c0, r1, c1 in merges:
                cells[r0 : r1 + 1, c0 : c1 + 1] = cells[r0, c0]
            filled = split_columns(pa.array(cells.ravel(order="F"), type=pa.large_string()),
                                    height, width)
        tables.append(RawTable(meta.name, columns, np.arange(1, height + 1, dtype="int64"),
                               filled=filled))
    return ReadResult("xlsx", None, tables)


