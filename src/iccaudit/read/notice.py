"""HTML pages (.html, .htm), such as award notices (中标公告, 成交结果公告): every table of the
page, each row with its element path, rowspan/colspan filled as merged cells are; the page's
labelled fields (项目编号, 中标供应商, 采购人, 日期) as the title text.

The page's charset is honoured: a byte-order mark, else the charset its ``<meta>`` declares
(GBK and GB2312 are read as GB18030, their superset), else the text's own detection.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from iccaudit.read.base import FileReadError, ReadResult, first_line
from iccaudit.read.doctables import DocTable, clean, joined_tables
from iccaudit.read.text import decode

if TYPE_CHECKING:
    from lxml.html import HtmlElement

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.IGNORECASE)
#: Chinese charsets a page declares, read as the encoding that covers them all.
_CHINESE = {"gbk", "gb2312", "gb_2312-80", "x-gbk", "gb18030", "cp936", "euc-cn"}
#: Elements that end a line of the page's text.
_BLOCKS = ("p", "div", "li", "br", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section",
           "article", "header", "footer", "dd", "dt", "caption")


def page_text(data: bytes) -> tuple[str, str]:
    """The page's text and its encoding (BOM, ``<meta charset>``, else detected)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    m = _META_CHARSET.search(data[:4096])
    if m and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        declared = m.group(1).decode("ascii").lower()
        encoding = "gb18030" if declared in _CHINESE else declared
        try:
            return data.decode(encoding), encoding
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration: the text is detected instead
    return decode(data)


def read_html(path: Path, data: bytes) -> ReadResult:
    """Every table of an HTML page as raw tables; the page's other text as their title."""
    import lxml.etree
    import lxml.html

    text, encoding = page_text(data)
    try:
        root = lxml.html.document_fromstring(text)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise FileReadError(f"cannot read: not an HTML page ({first_line(exc)})") from None
    tree = root.getroottree()
    # innermost tables only: a layout table around the item table is not read twice
    tables = [t for t in root.iter("table") if not t.xpath(".//table")]
    pieces = [_table(t, tree.getpath(t)) for t in tables]
    if not any(p.cells for p in pieces):
        raise FileReadError("cannot read: no table in the page (an award notice lists its "
                            "items in a table: 主要标的信息)")
    return ReadResult("html", encoding, joined_tables(pieces, _labelled_text(root, tables),
                                                      "table"))


def _cell_text(cell: HtmlElement) -> str | None:
    for br in cell.iter("br"):
        br.tail = "\n" + (br.tail or "")
    return clean(cell.text_content())


def _table(table: HtmlElement, where: str) -> DocTable:
    """One table's rows (its own, not a nested table's) with row- and colspans filled."""
    shown: list[list[str | None]] = []
    filled: list[list[str | None]] = []
    pending: dict[int, tuple[int, str | None]] = {}  # column -> (rows left, text) of a rowspan
    merged = False
    for tr in table.xpath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr"):
        row_shown: list[str | None] = []
        row_filled: list[str | None] = []

        def carry(row_shown: list[str | None], row_filled: list[str | None]) -> None:
            while len(row_filled) in pending:
                j = len(row_filled)
                left, value = pending[j]
                row_shown.append(None)
                row_filled.append(value)
                if left <= 1:
                    del pending[j]
                else:
                    pending[j] = (left - 1, value)

        for cell in tr.xpath("./td | ./th"):
            carry(row_shown, row_filled)
            value = _cell_text(cell)
            span = _span(cell.get("colspan"))
            down = _span(cell.get("rowspan"))
            merged = merged or span > 1 or down > 1
            for k in range(span):
                row_shown.append(value if k == 0 else None)
                row_filled.append(value)
                if down > 1:
                    pending[len(row_filled) - 1] = (down - 1, value)
        carry(row_shown, row_filled)
        shown.append(row_shown)
        filled.append(row_filled)
    return DocTable(shown, where, filled=filled if merged else None)


def _span(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1000))
    except ValueError:
        return 1


def _labelled_text(root: HtmlElement, item_tables: list[HtmlElement]) -> str:
    """The page's text, one line per block, with the small label tables of a notice as
    "label：value" (a table of three or more columns is left out: its header cells are not
    labels)."""
    lines: list[str] = []
    for table in item_tables:
        for tr in table.xpath(".//tr"):
            cells = [c for c in (_cell_text(td) for td in tr.xpath("./td | ./th")) if c]
            if len(cells) in (2, 4):
                lines.append("  ".join(f"{a.rstrip(':：')}：{b}"
                                       for a, b in zip(cells[::2], cells[1::2], strict=True)))
        table.drop_tree()
    for el in root.iter(*_BLOCKS):
        el.tail = "\n" + (el.tail or "")
    body = root.find("body")
    prose = (body if body is not None else root).text_content()
    lines += [" ".join(ln.split()) for ln in prose.splitlines() if ln.strip()]
    return "\n".join(lines)
