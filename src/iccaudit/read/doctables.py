"""Tables of documents (Word, PDF, HTML) as :class:`RawTable` s: the pieces of one table joined,
each row with the place a person finds it.

A document's table is often cut in pieces: a Word 分项报价表 split in two with its header
repeated, a PDF table running over a page break. :func:`joined_tables` makes one table of
pieces that continue each other (same number of columns, and a repeated header or a piece
that the reader knows continues the last one); the repeated header rows stay in the table and
are recognised later as header rows (non-items), so every row read is accounted for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from iccaudit.read.base import RawTable
from iccaudit.read.cells import split_columns, text_array

#: Rows of a piece's start compared with the first rows of the table it may continue.
_HEADER_ROWS = 3


@dataclass
class DocTable:
    """One table as the document holds it.

    ``cells`` are the rows as a person sees them (a merged cell's text once, in its first
    cell), ``filled`` the same with a merged cell's text in every cell it covers (None when
    nothing is merged). ``where`` names the piece for its rows ("table 2", "p.3 table 1",
    an HTML element path); ``rows`` are their 1-based numbers within the piece.
    ``continues`` says the reader knows this piece continues the table before it (a PDF
    table at the top of a page after one at the bottom of the last).
    """

    cells: list[list[str | None]]
    where: str
    filled: list[list[str | None]] | None = None
    rows: list[int] = field(default_factory=list)
    continues: bool = False

    @property
    def width(self) -> int:
        return max((len(r) for r in self.cells), default=0)


def _key(row: list[str | None]) -> tuple[str, ...]:
    return tuple("".join((c or "").split()) for c in row)


def _continues(piece: DocTable, group: list[DocTable]) -> bool:
    first = group[0]
    if piece.width != group[-1].width or not piece.cells:
        return False
    if piece.continues:
        return True
    start = _key(piece.cells[0])
    return any(start == _key(r) and any(start) for r in first.cells[:_HEADER_ROWS])


def joined_tables(pieces: list[DocTable], title: str, name: str) -> list[RawTable]:
    """The pieces (in document order) as raw tables, continuing pieces joined into one.

    ``title`` is the document's prose (its labelled fields: 项目编号, 供应商, 日期 …), given
    to every table; ``name`` how the tables are called in messages ("table" …).
    """
    groups: list[list[DocTable]] = []
    for piece in pieces:
        if not piece.cells:
            continue
        if groups and _continues(piece, groups[-1]):
            groups[-1].append(piece)
        else:
            groups.append([piece])
    out = []
    for i, group in enumerate(groups, start=1):
        width = max(p.width for p in group)
        cells = [r + [None] * (width - len(r)) for p in group for r in p.cells]
        merged = any(p.filled is not None for p in group)
        filled = [r + [None] * (width - len(r)) for p in group
                  for r in (p.filled if p.filled is not None else p.cells)] if merged else None
        rows = np.concatenate([np.asarray(p.rows or range(1, len(p.cells) + 1), dtype="int64")
                               for p in group])
        where = np.concatenate([np.full(len(p.cells), p.where, dtype=object) for p in group])
        label = group[0].where if len(group) == 1 else f"{group[0].where} (+{len(group) - 1})"
        out.append(RawTable(label if len(groups) > 1 else (label or f"{name} {i}"),
                            _columns(cells, width), rows,
                            filled=None if filled is None else _columns(filled, width),
                            title=title, locations=where))
    return out


def _columns(grid: list[list[str | None]], width: int) -> list[pa.Array]:
    """Rows of cell text as one Arrow text column each (blank cells null)."""
    n = len(grid)
    flat = np.empty(n * width, dtype=object)
    if n and width:
        flat[:] = np.asarray(grid, dtype=object).ravel(order="F")
    return split_columns(text_array(flat), n, width)


_CJK = "\u3000-\u9fff\uff00-\uffef"
_WRAP_CJK = re.compile(rf"(?<=[{_CJK}])[ \t]*\n\s*|[ \t]*\n\s*(?=[{_CJK}])")


def clean(text: str | None) -> str | None:
    """A cell's text as one line: a line break next to a Chinese character is dropped (a cell
    wraps "液冷" / "设备"), other whitespace runs become one space."""
    if text is None:
        return None
    out = " ".join(_WRAP_CJK.sub("", text).split())
    return out or None
