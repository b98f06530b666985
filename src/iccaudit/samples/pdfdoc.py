"""A small PDF writer for the sample tender: Chinese text and ruled tables over pages.

Chinese text needs a font with Chinese glyphs. Rather than embed one (megabytes, and none
ships with Python), the text is set in STSong-Light, one of the CJK fonts every PDF reader
provides (PDF 1.7, 9.7.5.2), addressed by the predefined UniGB-UCS2-H encoding: the file
stays small, byte-for-byte deterministic, and has a real text layer (text tools map the
glyphs back to Unicode through the Adobe-GB1 character collection). Each cell's text is
wrapped to its column; a table longer than a page continues on the next one with its header
repeated, as in real 报价明细.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

PAGE_W, PAGE_H = 842.0, 595.0  # A4 landscape, points
MARGIN = 28.0
FONT_SIZE = 6.5
LINE_H = FONT_SIZE * 1.25
PAD = 2.0


def _width(text: str, size: float = FONT_SIZE) -> float:
    """Text width: ASCII at half an em (the font's proportional roman), the rest one em."""
    return sum(size * (0.5 if ord(c) < 0x7F else 1.0) for c in text)


#: Where a line may break, as a word processor breaks it: after a Chinese character, after a
#: space, after "," or ";" (a list of serial numbers); never inside a Latin word or number,
#: nor at a space beside a Chinese character (a text tool joins a line ending or starting with
#: one to the next without a space, so such a space would be lost).
_C = "[\u3000-\u9fff\uff00-\uffef]"
_W = "[^\\s\u3000-\u9fff\uff00-\uffef,;]+[,;]?"
_TOKENS = re.compile(rf"{_C}(?:\s+{_W})?\s*|{_W}(?:\s+{_C})?\s*|[,;]\s*|\s+")


def _wrap(text: str, width: float) -> list[str]:
    lines, line = [], ""
    for token in _TOKENS.findall(text):
        if line and _width(line + token.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        while _width(token.rstrip()) > width:  # a word wider than the column is cut
            k = max(1, int(width // _width("0")))
            lines.append(token[:k])
            token = token[k:]
        line += token
    return [*lines, line.rstrip()] if line or not lines else lines


def _hex(text: str) -> str:
    return "<" + text.encode("utf-16-be").hex().upper() + ">"


@dataclass
class _Page:
    ops: list[str] = field(default_factory=list)

    def text(self, x: float, y: float, s: str, size: float = FONT_SIZE) -> None:
        if s:
            self.ops.append(f"BT /F1 {size:g} Tf {x:.2f} {y:.2f} Td {_hex(s)} Tj ET")

    def rect(self, x: float, y: float, w: float, h: float) -> None:
        self.ops.append(f"{x:.2f} {y:.2f} {w:.2f} {h:.2f} re S")


def write_table_pdf(path: Path, before: list[str], header: list[str],
                    rows: list[list[str]], after: list[str]) -> Path:
    """Lines of text, a ruled table (header repeated on every page), lines of text."""
    usable = PAGE_W - 2 * MARGIN
    natural = [max(_width(h) for h in [header[j], *(r[j] for r in rows)]) + 2 * PAD
               for j in range(len(header))]
    floor = [min(n, _width(header[j]) + 2 * PAD + FONT_SIZE) for j, n in enumerate(natural)]
    spare = usable - sum(floor)
    extra = [n - f for n, f in zip(natural, floor, strict=True)]
    total = float(sum(extra))
    shrink = spare / total if total > spare else 1.0  # columns share the room left
    widths = [f + e * shrink for f, e in zip(floor, extra, strict=True)]
    pages = [_Page()]
    y = PAGE_H - MARGIN
    for line in before:
        y -= LINE_H * 1.6
        pages[-1].text(MARGIN, y, line, FONT_SIZE * 1.5)
    y -= LINE_H

    def draw(cells: list[str]) -> float:
        wrapped = [_wrap(c, w - 2 * PAD) for c, w in zip(cells, widths, strict=True)]
        h = max(len(w) for w in wrapped) * LINE_H + 2 * PAD
        x = MARGIN
        for lines, w in zip(wrapped, widths, strict=True):
            pages[-1].rect(x, y - h, w, h)
            for k, s in enumerate(lines):
                pages[-1].text(x + PAD, y - PAD - (k + 1) * LINE_H + 1.5, s)
            x += w
        return h

    y -= draw(header)
    for row in rows:
        need = max(len(_wrap(c, w - 2 * PAD)) for c, w in zip(row, widths, strict=True))
        if y - (need * LINE_H + 2 * PAD) < MARGIN:
            pages.append(_Page())
            y = PAGE_H - MARGIN
            y -= draw(header)
        y -= draw(row)
    for line in after:
        y -= LINE_H * 1.6
        if y < MARGIN:
            pages.append(_Page())
            y = PAGE_H - MARGIN - LINE_H
        pages[-1].text(MARGIN, y, line, FONT_SIZE * 1.3)
    path.write_bytes(_document(pages))
    return path


def _document(pages: list[_Page]) -> bytes:
    """The objects of the file: catalog, pages, the font, and each page with its content."""
    n = len(pages)
    font, descendant, descriptor = 3, 4, 5
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Count {} /Kids [{}] >>".format(
            n, " ".join(f"{6 + 2 * i} 0 R" for i in range(n))).encode(),
        f"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H "
        f"/DescendantFonts [{descendant} 0 R] >>".encode(),
        f"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo "
        f"<< /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> /FontDescriptor {descriptor} "
        f"0 R /DW 1000 /W [1 95 500] >>".encode(),
        (b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 "
         b"1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>"),
    ]
    for i, page in enumerate(pages):
        content = ("0.5 w\n" + "\n".join(page.ops)).encode("ascii")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W:g} {PAGE_H:g}] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {7 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content
                       + b"\nendstream")
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for k, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % k + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)
