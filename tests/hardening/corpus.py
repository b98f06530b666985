"""The hostile-input corpus: writers of broken, odd and huge tender files, all made by code.

Nothing here is committed as a big file: every file is written into a temporary folder by the
test that needs it. Small files are bytes or openpyxl workbooks; the large XLSX is streamed as
SpreadsheetML by hand (openpyxl would take minutes for 200k rows), zip members written one
chunk at a time so the writer itself stays small in memory.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import openpyxl

HEADER = ["序号", "货物名称", "品牌", "规格型号", "数量", "单位", "单价(元)", "总价(元)", "供应商"]
ROW = ["1", "GPU服务器", "浪潮", "NF5688M7", "8", "台", "2450000", "19600000", "甲公司"]
ROW2 = ["2", "冷板式液冷系统", "英维克", "CDU-800", "1", "套", "4800000", "4800000", "甲公司"]


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    """Rows joined by commas and newlines, no quoting (the caller controls every byte)."""
    return ("\n".join(",".join(r) for r in rows) + "\n").encode(encoding)


def good_xlsx(path: Path) -> Path:
    """A small valid workbook written by openpyxl."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "清单"
    for row in (HEADER, ROW, ROW2):
        ws.append(row)
    wb.save(path)
    return path


def formulas_xlsx(path: Path, cached: bool) -> Path:
    """Totals as formulas =E*G. openpyxl writes no cached value (as if never opened in Excel);
    with ``cached`` the cached results Excel would have stored are patched into the XML."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "清单"
    ws.append(HEADER)
    for r, row in enumerate((ROW, ROW2), start=2):
        ws.append([int(row[0]), row[1], row[2], row[3], int(row[4]), row[5], int(row[6]),
                   f"=E{r}*G{r}", row[8]])
    buf = io.BytesIO()
    wb.save(buf)
    if not cached:
        path.write_bytes(buf.getvalue())
        return path
    values = {"H2": 19600000, "H3": 4800000}
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                for ref, value in values.items():
                    r = int(ref[1:])
                    formula = f"<f>E{r}*G{r}</f>"
                    # openpyxl writes the empty value as <v /> (or <v></v> through lxml)
                    empty = next((v for v in ("<v />", "<v></v>", "<v/>")
                                  if formula + v in text), None)
                    assert empty is not None, "openpyxl changed how it writes formulas"
                    text = text.replace(formula + empty, f"{formula}<v>{value}</v>")
                data = text.encode()
            out.writestr(info, data)
    return path


def merged_hidden_xlsx(path: Path) -> Path:
    """A merged two-row header (价格（万元） over 单价 | 总价) and a hidden sheet with items."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "清单"
    ws.append(["序号", "货物名称", "数量", "价格（万元）", None])
    ws.append([None, None, None, "单价", "总价"])
    ws.append([1, "GPU服务器", 8, 245, 1960])
    for rng in ("A1:A2", "B1:B2", "C1:C2", "D1:E1"):
        ws.merge_cells(rng)
    hidden = wb.create_sheet("隐藏")
    hidden.append(["货物名称", "数量", "单价"])
    hidden.append(["交换机", 2, 100000])
    hidden.sheet_state = "veryHidden"
    wb.save(path)
    return path


# ------------------------------------------------------------------ streamed SpreadsheetML

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="清单" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
_SHEET_TAIL = "</sheetData></worksheet>"


def _cell(col: int, row: int, value: str | int) -> str:
    ref = chr(ord("A") + col) + str(row)
    if isinstance(value, int):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'


def _sheet_rows(rows: int, chunk: int = 5000):
    """The sheet XML of a header and ``rows`` line items, yielded in chunks."""
    yield _SHEET_HEAD + "<row r=\"1\">" + "".join(_cell(j, 1, h) for j, h in enumerate(HEADER))
    yield "</row>"
    names = ("GPU服务器", "交换机", "冷板式液冷系统", "存储服务器")
    for start in range(0, rows, chunk):
        parts = []
        for i in range(start, min(rows, start + chunk)):
            r = i + 2
            cells = [i + 1, names[i % 4], "浪潮", f"M{i % 97}", 1 + i % 8, "台",
                     10000 + (i * 7919) % 2_000_000, None, "甲公司"]
            cells[7] = cells[4] * cells[6]
            parts.append(f'<row r="{r}">' + "".join(_cell(j, r, v) for j, v in enumerate(cells))
                         + "</row>")
        yield "".join(parts)
    yield _SHEET_TAIL


def large_xlsx(path: Path, rows: int) -> Path:
    """A valid one-sheet XLSX of ``rows`` line items, streamed (inline strings, no styles)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            for part in _sheet_rows(rows):
                fh.write(part.encode())
    return path


def zip_bomb_xlsx(path: Path, inflated: int) -> Path:
    """A valid-looking XLSX whose sheet is ``inflated`` bytes of one repeated byte: a highly
    compressible member that declares its huge size honestly (the zip format stores it).

    The member is compressed chunk by chunk so that building it needs little memory.
    """
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        chunk = b" " * (1 << 20)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(_SHEET_HEAD.encode())
            for _ in range(inflated >> 20):
                fh.write(chunk)
            fh.write(_SHEET_TAIL.encode())
    return path


def lying_zip_bomb_xlsx(path: Path, inflated: int) -> Path:
    """Like :func:`zip_bomb_xlsx`, but the zip headers claim the sheet is tiny: a size check
    that trusts the declared sizes passes, and the inflater must stop by itself."""
    zip_bomb_xlsx(path, inflated)
    data = bytearray(path.read_bytes())
    # patch the declared uncompressed size of the sheet (local header and central directory)
    real = inflated + len(_SHEET_HEAD) + len(_SHEET_TAIL)
    fake = 4096
    # zip64 extra fields hold 8-byte sizes; classic headers hold 4-byte ones
    for width in (8, 4):
        old = real.to_bytes(width, "little")
        if width == 4 and real >= 1 << 32:
            continue
        data = data.replace(old, fake.to_bytes(width, "little"))
    path.write_bytes(bytes(data))
    return path


def deflate_ratio(path: Path) -> float:
    """Declared inflated size over packed size of a zip (for the test's own sanity check)."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    return sum(i.file_size for i in infos) / max(1, sum(i.compress_size for i in infos))


__all__ = ["HEADER", "ROW", "ROW2", "csv_bytes", "deflate_ratio", "formulas_xlsx", "good_xlsx",
           "large_xlsx", "lying_zip_bomb_xlsx", "merged_hidden_xlsx", "zip_bomb_xlsx"]
