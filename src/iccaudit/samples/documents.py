"""One sample tender again as the documents auditors receive: a Word 分项报价表 (.docx), a text
PDF 报价明细, an HTML 中标结果公告 (GBK) and an OCDS release package.

Each is made from a CSV tender of the corpus, cell for cell, so the same schemes are planted
in the same lines: whatever its format, the tender must give the same findings (a test holds
it to that). The columns whose value is the same on every line (项目编号, 供应商, 合同日期,
算力规模) are stated once in the document's prose, as documents do, and read back from there.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from iccaudit.samples.pdfdoc import write_table_pdf
from iccaudit.samples.render import EN_HEADERS, MW_HEADER, WAN_HEADERS, ZH_HEADERS

#: Fields a document states once in its prose (when one value for all lines), with its label.
STATED = {"tender_id": "项目编号", "project": "项目名称", "claim": "算力规模",
          "supplier": "中标供应商", "date": "合同日期"}
#: Fields an OCDS item keeps as attributes (under the CSV's header, which says the unit).
ATTRIBUTES = ("brand", "model", "spec", "capacity", "condition", "serial", "mfg")
OCID_PREFIX = "ocds-213czf-"
_FIXED = (2025, 1, 1, 0, 0, 0)


def _roles(header: list[str]) -> dict[str, int]:
    """Field -> column of a sample CSV's header (whichever synonym the writer picked)."""
    names: dict[str, str] = {}
    for table in (ZH_HEADERS, EN_HEADERS, WAN_HEADERS):
        for f, synonyms in table.items():
            names.update(dict.fromkeys(synonyms, f))
    names[MW_HEADER] = "capacity"
    return {names[h]: j for j, h in enumerate(header) if h in names}


def _table(source: Path) -> tuple[list[str], list[list[str]]]:
    with source.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _split(header: list[str], rows: list[list[str]]) -> tuple[dict[str, str], list[str],
                                                               list[list[str]]]:
    """The stated fields' one value each, and the table without their columns."""
    role = _roles(header)
    items = [r for r in rows if r[role["line_no"]].strip().isdigit()]
    stated = {}
    for f in STATED:
        if f in role and len({r[role[f]] for r in items}) == 1:
            stated[f] = items[0][role[f]]
    gone = {role[f] for f in stated}
    keep = [j for j in range(len(header)) if j not in gone]
    return stated, [header[j] for j in keep], [[r[j] for j in keep] for r in rows]


def _prose(stated: dict[str, str]) -> tuple[list[str], list[str]]:
    """Lines before the table (project, id, claim) and after it (supplier, date)."""
    def line(f: str) -> str:
        value = stated[f] + (" PFLOPS" if f == "claim" else "")
        return f"{STATED[f]}：{value}"

    before = [line(f) for f in ("project", "tender_id", "claim") if f in stated]
    return before, [line(f) for f in ("supplier", "date") if f in stated]


def write_documents(source: Path, folder: Path) -> list[Path]:
    """The tender of CSV ``source`` as .docx, .pdf, .html and OCDS .json in ``folder``."""
    header, rows = _table(source)
    stated, cols, table = _split(header, rows)
    before, after = _prose(stated)
    folder.mkdir(parents=True, exist_ok=True)
    stem = source.stem
    return [
        _docx(folder / f"{stem}.docx", before, after, cols, table),
        write_table_pdf(folder / f"{stem}.pdf", ["分项报价表", *before], cols, table, after),
        _html(folder / f"{stem}.html", stated, cols, table),
        _ocds(folder / f"{stem}.ocds.json", stated, header, rows),
    ]


def _docx(path: Path, before: list[str], after: list[str], cols: list[str],
          rows: list[list[str]]) -> Path:
    """A Word 分项报价表 split in two tables, the header repeated, prose around them."""
    import datetime as dt

    import docx

    document = docx.Document()
    props = document.core_properties
    props.created = props.modified = dt.datetime(*_FIXED)
    props.author = props.last_modified_by = "iccaudit samples"
    props.revision = 1
    document.add_heading("分项报价表", level=1)
    for line in before:
        document.add_paragraph(line)
    half = len(rows) // 2
    for k, part in enumerate((rows[:half], rows[half:])):
        if k:
            document.add_paragraph("（续表）")
        grid = document.add_table(rows=len(part) + 1, cols=len(cols))
        grid.style = "Table Grid"
        for i, row in enumerate([cols, *part]):
            for j, value in enumerate(row):
                if value:
                    grid.cell(i, j).text = value
    for line in after:
        document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    _fixed_zip(buffer.getvalue(), path)
    return path


def _fixed_zip(data: bytes, path: Path) -> None:
    """The zip rewritten with fixed timestamps: same content, same bytes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(fixed, source.read(info.filename))


def _cell(tag: str, value: str) -> str:
    from html import escape

    return f"<{tag}>{escape(value)}</{tag}>"


def _html(path: Path, stated: dict[str, str], cols: list[str], rows: list[list[str]]) -> Path:
    """An award notice in GBK: labelled fields in a small table, the items in another."""
    from html import escape

    fields = [("项目编号", stated.get("tender_id")), ("采购人", "某市大数据管理局"),
              ("中标供应商", stated.get("supplier")), ("合同日期", stated.get("date"))]
    claim = stated.get("claim")
    lines = [
        "<!DOCTYPE html>", "<html><head>",
        '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">',
        "<title>中标（成交）结果公告</title></head><body>",
        '<div class="notice"><h1>智算中心设备采购项目中标（成交）结果公告</h1>',
        "<table class=\"fields\">",
        *(f"<tr>{_cell('td', k)}{_cell('td', v)}</tr>" for k, v in fields if v),
        "</table>",
        f"<p>算力规模：{escape(claim)} PFLOPS</p>" if claim else "",
        "<h3>主要标的信息</h3>", '<table class="items" border="1">',
        "<thead><tr>" + "".join(_cell("th", c) for c in cols) + "</tr></thead><tbody>",
        *("<tr>" + "".join(_cell("td", v) for v in r) + "</tr>" for r in rows),
        "</tbody></table></div></body></html>",
    ]
    path.write_bytes("\n".join(x for x in lines if x).encode("gbk") + b"\n")
    return path


def _ocds(path: Path, stated: dict[str, str], header: list[str], rows: list[list[str]]) -> Path:
    """A release package: the award with the items, the contract repeating them, and an
    earlier release of the same award (superseded): one item published three times."""
    role = _roles(header)
    ocid = OCID_PREFIX + stated.get("tender_id", path.stem.split(".")[0])
    date = _iso(stated.get("date", "2024-01-01"))
    wan = "万" in header[role["price"]] if "price" in role else False

    def item(r: list[str]) -> dict[str, object]:
        it: dict[str, object] = {"id": r[role["line_no"]], "description": r[role["item"]],
                                 "quantity": _number(r[role["qty"]])}
        unit: dict[str, object] = {"name": r[role["unit"]]} if "unit" in role else {}
        price = _number(r[role["price"]], wan) if "price" in role else None
        if price is not None:
            unit["value"] = {"amount": price, "currency": "CNY"}
        it["unit"] = unit
        attrs = [{"name": header[role[a]], "value": r[role[a]]} for a in ATTRIBUTES
                 if a in role and r[role[a]]]
        if attrs:
            it["attributes"] = attrs
        return it

    items = [item(r) for r in rows if r[role["line_no"]].strip().isdigit()]
    supplier = {"id": "S1", "name": stated.get("supplier", "")}
    tender = {"id": stated.get("tender_id", ""), "title": stated.get("project", "智算中心设备采购"),
              "description": f"算力规模：{stated['claim']} PFLOPS" if "claim" in stated else ""}
    award = {"id": "A1", "status": "active", "date": f"{date}T00:00:00+08:00",
             "suppliers": [supplier]}
    base = {"ocid": ocid, "initiationType": "tender", "language": "zh",
            "parties": [{**supplier, "roles": ["supplier"]}], "tender": tender}
    releases = [
        {**base, "id": f"{ocid}-award-draft", "date": f"{date}T09:00:00+08:00", "tag": ["award"],
         "awards": [{**award, "status": "pending", "items": items[: len(items) // 2]}]},
        {**base, "id": f"{ocid}-award", "date": f"{date}T10:00:00+08:00", "tag": ["award"],
         "awards": [{**award, "items": items}]},
        {**base, "id": f"{ocid}-contract", "date": f"{date}T11:00:00+08:00",
         "tag": ["contract"], "awards": [{**award, "items": items}],
         "contracts": [{"id": "C1", "awardID": "A1", "status": "active",
                        "dateSigned": f"{date}T11:00:00+08:00", "items": items}]},
    ]
    package = {"uri": f"https://example.org/ocds/{ocid}.json", "version": "1.1",
               "publishedDate": f"{date}T12:00:00+08:00",
               "publisher": {"name": "iccaudit samples"},
               "license": "https://creativecommons.org/licenses/by/4.0/",
               "releases": releases}
    path.write_text(json.dumps(package, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def _iso(text: str) -> str:
    """2024-03-05 from the sample's date styles (2024/3/5, 2024年3月5日)."""
    import re

    y, m, d = (int(x) for x in re.findall(r"\d+", text)[:3])
    return f"{y:04d}-{m:02d}-{d:02d}"


def _number(text: str, wan: bool = False) -> float | int | None:
    """A sample cell's amount in yuan (¥ and thousands separators, 万 in the cell or header)."""
    t = text.replace(",", "").replace("¥", "").strip()
    scale = 1e4 if wan or t.endswith("万") else 1.0
    try:
        value = round(float(t.removesuffix("万")) * scale, 2)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value
