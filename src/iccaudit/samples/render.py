"""Writers: one tender's lines into the file shape a real tender comes in.

A :class:`Style` says everything about the shape (format, encoding, headers, money and date
formats, title block, sheets, total rows). Values are formatted column-at-a-time with pandas
string methods; files are written byte-for-byte deterministically (XLSX zip entries get a fixed
timestamp, document properties a fixed date).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired, TypedDict

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from openpyxl import Workbook

#: Header synonyms per field. The writer picks one per file.
ZH_HEADERS: dict[str, tuple[str, ...]] = {
    "line_no": ("序号",),
    "tender_id": ("项目编号", "招标编号"),
    "project": ("项目名称",),
    "item": ("货物名称", "产品名称", "品目", "标的名称"),
    "brand": ("品牌", "制造商"),
    "model": ("规格型号", "型号"),
    "spec": ("技术参数", "规格参数"),
    "qty": ("数量",),
    "unit": ("单位",),
    "price": ("单价", "含税单价", "单价(元)"),
    "total": ("总价", "合价", "金额"),
    "supplier": ("供应商", "中标人"),
    "date": ("合同日期", "日期"),
    "condition": ("新旧程度", "成色"),
    "serial": ("序列号", "SN"),
    "capacity": ("制冷量（kW）", "制冷量(kW)"),
    "mfg": ("生产日期", "出厂日期"),
    "claim": ("算力(PFLOPS)", "算力规模(PFLOPS)"),
}
WAN_HEADERS = {"price": ("单价（万元）", "含税单价（万元）"), "total": ("总价（万元）", "合价（万元）")}
MW_HEADER = "功率(MW)"
EN_HEADERS: dict[str, tuple[str, ...]] = {
    "line_no": ("No.",),
    "tender_id": ("Tender ID",),
    "project": ("Project Name",),
    "item": ("Item Name", "Product"),
    "brand": ("Brand", "Manufacturer"),
    "model": ("Model",),
    "spec": ("Specification",),
    "qty": ("Quantity", "Qty"),
    "unit": ("Unit",),
    "price": ("Unit Price (CNY)", "Unit Price"),
    "total": ("Total (CNY)", "Amount"),
    "supplier": ("Supplier",),
    "date": ("Contract Date", "Date"),
    "condition": ("Condition",),
    "serial": ("Serial Numbers", "SN"),
    "capacity": ("Cooling Capacity (kW)",),
    "mfg": ("Manufacture Date",),
    "claim": ("Claimed PFLOPS",),
}
#: JSON keys of English JSON files: the canonical names.
JSON_KEYS = {
    "line_no": "line_no", "tender_id": "tender_id", "project": "project_name",
    "item": "item_name", "brand": "brand", "model": "model", "spec": "spec",
    "qty": "quantity", "unit": "unit", "price": "unit_price", "total": "total",
    "supplier": "supplier", "date": "date", "condition": "condition",
    "serial": "serial_numbers", "capacity": "capacity_kw", "mfg": "manufacture_date",
    "claim": "claimed_pflops",
}
FIELD_ORDER = ("line_no", "tender_id", "project", "item", "brand", "model", "spec", "qty", "unit",
               "price", "total", "capacity", "condition", "serial", "mfg", "supplier", "date",
               "claim")
FIXED_TIME = (2025, 1, 1, 0, 0, 0)


@dataclass
class Style:
    """The shape of one tender file."""

    fmt: str  # csv tsv xlsx parquet json jsonl
    encoding: str = "utf-8"
    lang: str = "zh"
    money: str = "plain"  # plain wan_col wan_suffix yen comma num
    date: str = "iso"  # iso slash zh excel
    layout: str = "flat"  # xlsx: title, two_sheets, notes_sheet, two_sheets_notes
    cap_unit: str = "kW"
    columns: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    subtotals: bool = True
    total_word: str = "合计"
    total_in_no: bool = False
    blank_rows: bool = True
    note: str = ""
    lineterminator: str = "\n"


class Plan(TypedDict):
    """One entry of the corpus's format plan, from which a file's :class:`Style` is drawn.

    ``sn``, ``cond``, ``cap`` and ``mfg`` say whether the file has a serial, condition,
    capacity and manufacture-date column; ``claim`` where the compute claim goes (``column``,
    ``title`` or ``none``). The optional keys default to the :class:`Style` defaults or, for
    ``subtotals``, ``blank`` and ``note``, to a draw of the generator.
    """

    fmt: str
    lang: str
    money: str
    date: str
    sn: bool
    cond: bool
    cap: bool
    mfg: bool
    claim: str
    encoding: NotRequired[str]
    layout: NotRequired[str]
    extra: NotRequired[tuple[str, ...]]
    cap_unit: NotRequired[str]
    subtotals: NotRequired[bool]
    blank: NotRequired[bool]
    note: NotRequired[bool]
    crlf: NotRequired[bool]


# -- value formatting (column at a time) -----------------------------------------------------
def _group3(int_text: pd.Series) -> pd.Series:
    return int_text.str.replace(r"\B(?=(\d{3})+(?!\d))", ",", regex=True)


def money_text(x: pd.Series, style: str, rng: np.random.Generator) -> pd.Series:
    """Money in CNY as the file writes it; NaN -> ''."""
    index = x.index
    x = pd.to_numeric(x, errors="coerce").astype(float).reset_index(drop=True)
    blank = x.isna()
    v = x.fillna(0.0)
    ints = v.round().astype(np.int64).astype(str)
    if style in ("plain", "num"):
        out = ints
    elif style == "wan_col":
        out = _strip_zeros(pd.Series(np.char.mod("%.4f", (v / 1e4).to_numpy())))
    elif style == "yen":
        out = "¥" + _group3(ints) + ".00"
    elif style == "comma":
        out = _group3(ints) + ".00"
    elif style == "wan_suffix":
        big = (v >= 100000) & (v.round() % 100 == 0) & (rng.random(len(v)) < 0.7)
        wan = _strip_zeros(pd.Series(np.char.mod("%.2f", (v / 1e4).to_numpy()))) + "万"
        out = ints.where(~big.to_numpy(), wan)
    else:  # pragma: no cover - programming error
        raise ValueError(style)
    out = out.where(~blank, "")
    out.index = index
    return out


def _strip_zeros(s: pd.Series) -> pd.Series:
    return s.str.replace(r"\.?0+$", "", regex=True)


def date_text(days: pd.Series, style: str) -> pd.Series:
    """Dates as text; style excel keeps them as dates (for XLSX cells)."""
    d = pd.to_datetime(pd.Series(days, dtype=float), unit="D", origin="unix")
    blank = d.isna()
    if style == "iso":
        out = d.dt.strftime("%Y-%m-%d")
    elif style == "slash":
        out = (d.dt.year.astype("Int64").astype(str) + "/" + d.dt.month.astype("Int64").astype(str)
               + "/" + d.dt.day.astype("Int64").astype(str))
    elif style == "zh":
        out = (d.dt.year.astype("Int64").astype(str) + "年" + d.dt.month.astype("Int64").astype(str)
               + "月" + d.dt.day.astype("Int64").astype(str) + "日")
    else:
        return d.dt.date.where(~blank, None)
    return out.where(~blank, "")


# -- one tender -> display table --------------------------------------------------------------
def display_table(lines: pd.DataFrame, tender: pd.Series, style: Style,
                  rng: np.random.Generator) -> pd.DataFrame:
    """The visible cells of the tender's lines (already numbered), one column per field.

    Text formats get strings; XLSX/Parquet/JSON get numbers where the style says numbers.
    """
    n = len(lines)
    numeric = style.money in ("num",) or (style.fmt == "xlsx" and style.money in ("plain",
                                                                                  "wan_col"))
    price = lines["unit_price"].where(lines["reject"] != "面议")
    total = lines["total"].where(lines["reject"] != "面议")
    scale = 1e4 if style.money == "wan_col" else 1.0
    out = pd.DataFrame(index=lines.index)
    out["line_no"] = lines["line_no"].astype(int)
    out["tender_id"] = tender["tender_id"]
    out["project"] = tender["project_name"]
    out["item"] = lines["item_name"]
    out["brand"] = lines["brand"]
    out["model"] = lines["model"]
    out["spec"] = lines["spec"]
    out["qty"] = lines["quantity"].astype(int)
    out["unit"] = lines["unit"]
    if numeric:
        out["price"] = (price / scale).round(4)
        out["total"] = (total / scale).round(4)
        out["price"] = out["price"].astype(object).where(lines["reject"] != "面议", "面议")
    else:
        out["price"] = money_text(price, style.money, rng).where(lines["reject"] != "面议", "面议")
        out["total"] = money_text(total, style.money, rng)
    cap = lines["capacity_kw"].where(~lines["cap_in_spec"].astype(bool))
    cap = cap / 1000.0 if style.cap_unit == "MW" else cap
    out["capacity"] = cap.round(3)
    out["condition"] = lines["condition"]
    out["serial"] = lines["serials"]
    out["mfg"] = date_text(lines["mfg_day"], style.date)
    day = pd.Series(np.full(n, float(tender["day"])), index=lines.index)
    out["date"] = date_text(day, style.date).to_numpy()
    out["supplier"] = tender["supplier"]
    out["claim"] = tender["claim"]
    if style.fmt not in ("parquet",) and not numeric:
        out["capacity"] = _num_or_blank(out["capacity"])
        out["claim"] = _num_or_blank(out["claim"])
    return out[list(style.columns)]


def _num_or_blank(s: pd.Series) -> pd.Series:
    v = pd.to_numeric(s, errors="coerce")
    txt = _strip_zeros(pd.Series(np.char.mod("%.3f", v.fillna(0).to_numpy()), index=s.index))
    return txt.where(v.notna(), "")


def with_non_items(disp: pd.DataFrame, groups: pd.Series, style: Style, total_cny: pd.Series,
                   note: bool = True) -> pd.DataFrame:
    """Insert subtotal (小计), total (合计), blank and note rows among the line rows."""
    cols = list(disp.columns)
    money_col = "total"
    d = disp.copy()
    d["_pos"] = np.arange(len(d), dtype=float)
    extra: list[dict[str, object]] = []
    scale = 1e4 if style.money == "wan_col" else 1.0

    def row(pos: float, **cells: object) -> dict[str, object]:
        r: dict[str, object] = {c: None for c in cols}
        r.update(cells)
        r["_pos"] = pos
        return r

    label_col = "line_no" if style.total_in_no else "item"
    if style.subtotals and groups.nunique() > 1:
        for g in pd.unique(groups):  # per sheet group (two at most)
            m = (groups == g).to_numpy()
            last = float(np.flatnonzero(m).max())
            amount = float(total_cny[m].sum()) / scale
            if style.blank_rows:
                extra.append(row(last + 0.3))
            extra.append(row(last + 0.5, **{label_col: "小计", money_col: amount}))
    grand = float(total_cny.sum()) / scale
    extra.append(row(len(d) + 1.0, **{label_col: style.total_word, money_col: grand}))
    if note and style.note:
        extra.append(row(len(d) + 2.0, **{cols[0]: style.note}))
    if money_col not in cols:
        for r in extra:
            r.pop(money_col, None)
    e = pd.DataFrame(extra)
    numeric_total = style.fmt in ("xlsx", "parquet") and style.money in ("plain", "wan_col", "num")
    if not numeric_total and money_col in e:
        amt = e[money_col]
        txt = money_text(amt * scale, style.money, np.random.default_rng(0))
        e[money_col] = txt.where(amt.notna(), None)
    both = pd.concat([d.astype(object), e.astype(object)], ignore_index=True)
    both = both.sort_values("_pos", kind="stable").drop(columns="_pos")
    return both.reset_index(drop=True)


# -- writers ----------------------------------------------------------------------------------
def write_text(path: Path, table: pd.DataFrame, style: Style) -> None:
    """CSV / TSV in the style's encoding (utf-8, utf-8-sig with BOM, gb18030)."""
    sep = "\t" if style.fmt == "tsv" else ","
    t = table.rename(columns=style.headers)
    text = t.to_csv(index=False, sep=sep, lineterminator=style.lineterminator)
    path.write_bytes(text.encode(style.encoding))


def write_parquet(path: Path, table: pd.DataFrame, style: Style) -> None:
    """Typed columns: integers as nullable Int64, money as float, dates as dates."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = table.copy()
    for c in ("line_no", "qty"):
        if c in t:
            t[c] = pd.to_numeric(t[c], errors="coerce").astype("Int64")
    for c in ("price", "total", "capacity", "claim"):
        if c in t:
            t[c] = pd.to_numeric(t[c], errors="coerce").astype(float)
    for c in ("date", "mfg"):
        if c in t:
            t[c] = pd.to_datetime(t[c], errors="coerce").dt.date
    for c in t.columns:
        if t[c].dtype == object and c not in ("date", "mfg"):
            t[c] = t[c].where(t[c].notna(), None)
    t = t.rename(columns=style.headers)
    table_pa = pa.Table.from_pandas(t, preserve_index=False)
    table_pa = table_pa.replace_schema_metadata(None)  # no pandas version in the file
    pq.write_table(table_pa, path, compression="snappy")


def write_json(path: Path, table: pd.DataFrame, tender: pd.Series, style: Style) -> None:
    """{"tender_id", "project_name", "items": [...]} or JSON Lines with tender_id per item."""
    t = table.rename(columns=style.headers)
    records = json.loads(t.to_json(orient="records", force_ascii=False, date_format="iso"))
    if style.fmt == "jsonl":
        key = style.headers.get("tender_id", "tender_id")
        lines = [json.dumps({key: tender["tender_id"], **r}, ensure_ascii=False) for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        doc = {"tender_id": tender["tender_id"], "project_name": tender["project_name"],
               "items": records}
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_xlsx(path: Path, sheets: list[tuple[str, pd.DataFrame | list[str], list[str]]],
               style: Style) -> None:
    """Sheets of (name, table or text lines, title lines); merged title cells above the header."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    if wb.active is not None:  # the default sheet: ours are added below
        wb.remove(wb.active)
    for name, body, title in sheets:
        ws = wb.create_sheet(name)
        if isinstance(body, list):  # a note sheet: text only
            for line in body:
                ws.append([line])
            continue
        width = len(body.columns)
        for r, text in enumerate(title, start=1):
            ws.append([text])
            if width > 1:
                ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
            if r == 1:
                ws.cell(r, 1).font = Font(bold=True, size=14)
                ws.cell(r, 1).alignment = Alignment(horizontal="center")
        if title:
            ws.append([])
        ws.append([style.headers.get(c, c) for c in body.columns])
        for cell in ws[ws.max_row]:
            cell.font = Font(bold=True)
        for rec in body.itertuples(index=False):  # writing cells, not computing
            ws.append([_cell(v) for v in rec])
        if style.date == "excel":
            for c in ("date", "mfg"):
                if c in body.columns:
                    col = list(body.columns).index(c) + 1
                    for row in ws.iter_rows(min_row=ws.max_row - len(body) + 1, min_col=col,
                                            max_col=col):
                        row[0].number_format = "yyyy-mm-dd"
    _save_workbook(wb, path)


def _cell(v: object) -> object:
    if v is None:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return int(f) if f.is_integer() else f
    if v is pd.NaT:
        return None
    if isinstance(v, str) and v == "":
        return None
    return v


def _save_workbook(wb: Workbook, path: Path) -> None:
    """Save with fixed timestamps so the same inputs give the same bytes."""
    fixed = dt.datetime(2025, 1, 1)
    wb.properties.creator = "iccaudit samples"
    wb.properties.created = fixed
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>2025-01-01T00:00:00Z\g<2>", data)
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = info.external_attr
            dst.writestr(zi, data)
    path.write_bytes(out.getvalue())
