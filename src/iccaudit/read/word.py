"""Word documents (.docx): every table of the document, in document order, merged cells as the
Excel reader has them, the pieces of a table split with a repeated header joined, and the
document's paragraphs as the title text (项目编号, 供应商, 日期 stated once for the table).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from iccaudit.read.base import FileReadError, ReadResult, first_line
from iccaudit.read.doctables import DocTable, clean, joined_tables
from iccaudit.read.excel import check_zip

if TYPE_CHECKING:
    from docx.table import Table

#: The first bytes of an OLE compound file: an encrypted .docx (or an old binary .doc).
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read_docx(path: Path, data: bytes) -> ReadResult:
    """Every table of a .docx as raw tables (joined where one continues another)."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    if data.startswith(OLE_MAGIC):
        raise FileReadError("cannot read: the document is password-protected (or an old .doc): "
                            "save it as .docx without a password")
    check_zip(data, "docx")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises KeyError, ValueError, lxml's
        raise FileReadError(f"cannot read: not a valid .docx file ({first_line(exc)})") from None
    prose: list[str] = []
    pieces: list[DocTable] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            if block.text.strip():
                prose.append(block.text.strip())
        elif isinstance(block, Table):
            pieces.append(_table(block, f"table {len(pieces) + 1}"))
    if not any(p.cells for p in pieces):
        raise FileReadError("cannot read: no table in the document")
    tables = joined_tables(pieces, "\n".join(prose), "table")
    return ReadResult("docx", None, tables)


def _table(table: Table, where: str) -> DocTable:
    """One Word table: a merged cell's text once as shown, in every grid cell it covers when
    filled (python-docx gives a merged cell as the same cell object in each place)."""
    shown: list[list[str | None]] = []
    filled: list[list[str | None]] = []
    above: list[object] = []
    merged = False
    for row in table.rows:
        cells = list(row.cells)
        ids = [c._tc for c in cells]
        texts = [clean(c.text) for c in cells]
        first = [j == 0 or ids[j] is not ids[j - 1] for j in range(len(ids))]
        first = [f and not (j < len(above) and ids[j] is above[j]) for j, f in enumerate(first)]
        merged = merged or not all(first)
        shown.append([t if f else None for t, f in zip(texts, first, strict=True)])
        filled.append(texts)
        above = ids
    return DocTable(shown, where, filled=filled if merged else None)
