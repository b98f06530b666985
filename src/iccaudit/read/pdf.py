"""PDF files with a text layer: the tables of every page (ruled tables by their lines, a page
without ruled tables by the alignment of its text), a table running over a page break joined
into one, and the text outside the tables as the title (项目编号, 供应商, 日期).

A PDF without any text (a scan) is refused with the reason "no text layer (scanned): OCR it
first"; an encrypted or damaged one with one line saying so.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iccaudit.read.base import FileReadError, ReadResult, first_line
from iccaudit.read.doctables import DocTable, clean, joined_tables

if TYPE_CHECKING:
    from pdfplumber.page import Page

#: The reason a PDF without text is refused (documented, and tested word for word).
NO_TEXT_LAYER = "no text layer (scanned): OCR it first"
LOCKED = "cannot read: the PDF is password-protected: save it without a password"
#: Ruled tables first; a page without any is read by text alignment.
_LINES = {"vertical_strategy": "lines", "horizontal_strategy": "lines"}
_TEXT = {"vertical_strategy": "text", "horizontal_strategy": "text"}
#: A table whose top is this close to the top of its page (points) may continue the last one.
_PAGE_TOP = 120.0


def read_pdf(path: Path, data: bytes) -> ReadResult:
    """The tables of a text PDF as raw tables, one per table of the document."""
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - pdfminer raises many types for a damaged file
        if _locked(exc, (PDFPasswordIncorrect, PDFEncryptionError)):
            raise FileReadError(LOCKED) from None
        raise FileReadError(f"cannot read: not a valid PDF ({_cause(exc)})") from None
    pieces: list[DocTable] = []
    prose: list[str] = []
    any_text = False
    number = 0
    try:
        for page in pdf.pages:
            any_text = any_text or bool(page.chars)
            if not page.chars:
                continue
            found = page.find_tables(_LINES) or _text_tables(page)
            found = sorted(found, key=lambda t: (t.bbox[1], t.bbox[0]))
            for k, table in enumerate(found):
                rows = [[clean(c) for c in r] for r in table.extract()]
                continues = bool(k == 0 and pieces and table.bbox[1] < _PAGE_TOP
                                 and pieces[-1].width == max(map(len, rows), default=0))
                number += 0 if continues else 1
                pieces.append(DocTable(rows, f"p.{page.page_number} table {number}",
                                       continues=continues))
            prose.append(_text_outside(page, [t.bbox for t in found]))
    except FileReadError:
        raise
    except Exception as exc:  # noqa: BLE001
        if _locked(exc, (PDFPasswordIncorrect, PDFEncryptionError)):
            raise FileReadError(LOCKED) from None
        raise FileReadError(f"cannot read: damaged PDF ({_cause(exc)})") from None
    finally:
        pdf.close()
    if not any_text:
        raise FileReadError(NO_TEXT_LAYER)
    if not any(p.cells for p in pieces):
        raise FileReadError("cannot read: no table in the PDF")
    title = "\n".join(t for t in prose if t)
    return ReadResult("pdf", None, joined_tables(pieces, title, "table"))


def _text_tables(page: Page) -> list[Any]:
    """Unruled tables, by the alignment of their text. pdfplumber puts a table's right edge
    at the right end of its right-aligned values, cutting a wider header ("Unit Pric" + "e"):
    the table is found again with its last edge moved past the text of its rows."""
    found = page.find_tables(_TEXT)
    out = []
    for table in found:
        xs = sorted({round(c[0], 2) for c in table.cells} | {round(c[2], 2) for c in table.cells})
        x0, top, x1, bottom = table.bbox
        right = max((c["x1"] for c in page.chars if top <= c["top"] and c["bottom"] <= bottom
                     and c["x0"] >= x0), default=x1)
        if right <= x1 + 0.5:
            out.append(table)
            continue
        settings = {**_TEXT, "vertical_strategy": "explicit",
                    "explicit_vertical_lines": [*xs[:-1], right + 0.5]}
        again = page.crop((x0, top, min(page.width, right + 1), bottom)).find_tables(settings)
        out.extend(again or [table])
    return out


def _locked(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` (pdfplumber wraps pdfminer's errors in its own) says the PDF is
    encrypted."""
    seen = [exc, *[a for a in exc.args if isinstance(a, BaseException)]]
    if exc.__cause__ is not None:
        seen.append(exc.__cause__)
    return any(isinstance(e, kinds) for e in seen)


def _cause(exc: BaseException) -> str:
    """The one line of the error pdfplumber wraps (its own name says nothing)."""
    inner = next((a for a in exc.args if isinstance(a, BaseException)), exc.__cause__)
    return first_line(inner) if inner is not None else first_line(exc)


def _text_outside(page: Page, boxes: list[tuple[float, float, float, float]]) -> str:
    """The page's text outside its tables (the prose: labelled fields, headings)."""
    def outside(obj: dict[str, Any]) -> bool:
        x = (obj.get("x0", 0.0) + obj.get("x1", 0.0)) / 2
        y = (obj.get("top", 0.0) + obj.get("bottom", 0.0)) / 2
        return not any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)

    text = page.filter(outside).extract_text() if boxes else page.extract_text()
    return str(text or "").strip()
