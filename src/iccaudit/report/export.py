"""Export a run's findings to Excel (findings, rejects, summary), CSV and Parquet.

Tender text is hostile input and ends up in spreadsheet cells: a supplier called
``=HYPERLINK(...)`` must not become a live formula when an auditor opens the file. Text cells
that start with ``= + - @`` (or a tab / carriage return, which some spreadsheets strip before
parsing) are prefixed with ``'`` in the Excel and CSV outputs (OWASP "CSV injection"). The
Parquet file is data for programs, not a spreadsheet, and keeps the values unchanged.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iccaudit.report import data as rdata
from iccaudit.report.labels import mechanism_name

if TYPE_CHECKING:
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

#: Characters that make a spreadsheet treat a cell as a formula.
FORMULA_PREFIX = r"^[=+\-@\t\r]"
#: Control characters that XML (and so xlsx) cannot hold; openpyxl would refuse the cell.
ILLEGAL_XML = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
#: Excel's row limit, header included; longer tables continue on "name (2)", "name (3)" ...
EXCEL_MAX_ROWS = 1_048_576
MONEY_FORMAT = "¥#,##0"

#: The reviewer's columns of the findings sheet: filled by hand, read back by
#: ``iccaudit verdicts import`` (``verdict`` offers a drop-down of the statuses).
VERDICT_HEADER = "结论 verdict"
REASON_HEADER = "理由 reason"
FINGERPRINT_HEADER = "指纹 fingerprint"
#: Workbook properties that tie an export to its database and run (checked on import).
PROP_DATABASE, PROP_RUN, PROP_VERDICT_SEQ = ("iccaudit_database_id", "iccaudit_run_id",
                                             "iccaudit_verdict_seq")

#: Findings columns of the exports: (column, header).
FINDING_COLUMNS: list[tuple[str, str]] = [
    ("verdict_new", VERDICT_HEADER),
    ("reason_new", REASON_HEADER),
    ("fingerprint", FINGERPRINT_HEADER),
    ("verdict", "此前结论 prior verdict"),
    ("verdict_reason", "此前理由 prior reason"),
    ("dismissed", "已排除 dismissed"),
    ("source_file", "来源文件 source file"),
    ("source_sheet", "工作表/位置 sheet or place"),
    ("source_row", "行 row"),
    ("tender_id", "项目编号 tender"),
    ("line_no", "序号 line no"),
    ("supplier", "供应商 supplier"),
    ("mechanism", "手法 mechanism"),
    ("mechanism_zh", "手法名称 mechanism name"),
    ("severity", "等级 severity"),
    ("detector", "检测器 detector"),
    ("kind", "类型 kind"),
    ("title", "标题 title"),
    ("message", "说明 message"),
    ("title_en", "英文标题 title (English)"),
    ("message_en", "英文说明 message (English)"),
    ("est_excess_cny", "估计超额 est. excess (CNY)"),
    ("score", "分数 score"),
    ("corroborating", "模型佐证 corroborating"),
    ("group_id", "发现组 group"),
    ("finding_id", "发现 finding id"),
    ("evidence", "证据 evidence"),
    ("run_id", "运行 run"),
]
REJECT_COLUMNS: list[tuple[str, str]] = [
    ("source_file", "来源文件 source file"),
    ("source_sheet", "工作表/位置 sheet or place"),
    ("source_row", "行 row"),
    ("reason", "原因 reason"),
    ("column", "列 column"),
    ("detail", "说明 detail"),
    ("raw", "原始内容 raw"),
]
FILE_COLUMNS: list[tuple[str, str]] = [
    ("source_file", "来源文件 source file"),
    ("format", "格式 format"),
    ("status", "状态 status"),
    ("rows_read", "读取行数 rows read"),
    ("stored_line_items", "明细行 line items"),
    ("stored_rejects", "拒收行 rejects"),
    ("stored_non_items", "非明细行 non-items"),
    ("reconciles", "平衡 reconciles"),
    ("error", "错误 error"),
]
MECHANISM_COLUMNS: list[tuple[str, str]] = [
    ("mechanism", "手法 mechanism"),
    ("name", "手法名称 name"),
    ("money", "涉嫌超额 money at risk (CNY)"),
    ("lines", "涉及行 lines"),
    ("high", "高/严重 high+critical"),
]
MONEY_COLUMNS = {"est_excess_cny", "money"}


def export_findings(db: str | Path, xlsx: str | Path | None = None,
                    csv: str | Path | None = None, parquet: str | Path | None = None,
                    run_id: str | None = None) -> list[Path]:
    """Write the run's findings (default: the latest run) to the outputs asked for.

    Returns the paths written, in the order xlsx, csv, parquet. Raises
    :class:`iccaudit.store.StoreError` (one line) when the database or run is missing.
    """
    run = rdata.load_run(db, run_id)
    findings = findings_frame(run)
    written: list[Path] = []
    if xlsx is not None:
        written.append(_atomic(Path(xlsx), lambda p: _write_xlsx(run, findings, p)))
    if csv is not None:
        frame = neutralise(findings.reindex(columns=[c for c, _ in FINDING_COLUMNS]))
        # utf-8-sig writes a BOM, so Excel on Windows opens the Chinese text right
        written.append(_atomic(Path(csv), lambda p: frame.to_csv(
            p, index=False, encoding="utf-8-sig", header=[h for _, h in FINDING_COLUMNS])))
    if parquet is not None:
        frame = findings.reindex(columns=[c for c, _ in FINDING_COLUMNS])
        written.append(_atomic(Path(parquet), lambda p: frame.to_parquet(p, index=False)))
    return written


def findings_frame(run: rdata.RunData) -> pd.DataFrame:
    """The findings with the export's columns, in the report's order."""
    f = run.findings.copy()
    f["mechanism_zh"] = f["mechanism"].map(lambda m: mechanism_name(m, "zh"))
    f["source_row"] = f["source_row"].astype("Int64")
    f["corroborating"] = f["corroborating"].fillna(False).astype(bool)
    f["verdict_new"] = None  # the reviewer fills these in
    f["reason_new"] = None
    return f


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells made safe for a spreadsheet: no formula prefix, no XML-illegal characters."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        kind = pd.api.types.infer_dtype(s, skipna=True)
        if kind == "empty":
            continue
        if kind == "string":
            is_text = s.notna()
        else:  # mixed column: only its str cells are text
            is_text = s.map(lambda v: isinstance(v, str)).astype(bool)
        text = s.where(is_text).astype("string")
        text = text.str.replace(ILLEGAL_XML, "\ufffd", regex=True)
        risky = text.str.contains(FORMULA_PREFIX, regex=True).fillna(False).astype(bool)
        text = text.where(~risky, "'" + text)
        # np.where keeps None as None (Series.where would turn it into NaN)
        out[col] = np.where(is_text.to_numpy(), text.astype(object).to_numpy(),
                            s.astype(object).to_numpy())
    return out


def _atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Write through a temporary file, so a failed export never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_xlsx(run: rdata.RunData, findings: pd.DataFrame, path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    if wb.active is not None:
        wb.remove(wb.active)  # the new workbook's one worksheet
    _table_sheets(wb, "发现 findings", findings, FINDING_COLUMNS)
    _table_sheets(wb, "拒收 rejects", run.rejects, REJECT_COLUMNS)
    _summary_sheet(wb, run)
    _review_setup(wb, run, len(findings))
    wb.save(path)


def _review_setup(wb: Workbook, run: rdata.RunData, n: int) -> None:
    """The verdict drop-down on the findings sheets, and the properties that tie the
    workbook to its database and run."""
    from openpyxl.packaging.custom import StringProperty
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    from iccaudit.core.schema import VERDICT_STATUSES

    col = get_column_letter([h for _, h in FINDING_COLUMNS].index(VERDICT_HEADER) + 1)
    for ws in wb.worksheets:
        if not ws.title.startswith("发现 findings") or ws.max_row < 2:
            continue
        dv = DataValidation(type="list", formula1='"' + ",".join(VERDICT_STATUSES) + '"',
                            allow_blank=True, showErrorMessage=True,
                            errorTitle="verdict", error=" / ".join(VERDICT_STATUSES))
        dv.add(f"{col}2:{col}{ws.max_row}")
        ws.add_data_validation(dv)
    for name, value in ((PROP_DATABASE, run.database_id or ""), (PROP_RUN, run.run_id),
                        (PROP_VERDICT_SEQ, str(run.verdict_seq))):
        wb.custom_doc_props.append(  # type: ignore[attr-defined]  # openpyxl 3.1, no stub
            StringProperty(name=name, value=value))


def _table_sheets(wb: Workbook, name: str, frame: pd.DataFrame,
                  columns: Sequence[tuple[str, str]]) -> None:
    frame = neutralise(frame.reindex(columns=[c for c, _ in columns]))
    chunk = EXCEL_MAX_ROWS - 1
    parts = [frame.iloc[i:i + chunk] for i in range(0, len(frame), chunk)] or [frame]
    for n, part in enumerate(parts, start=1):
        ws = wb.create_sheet(name if n == 1 else f"{name} ({n})")
        ws.append([h for _, h in columns])
        # openpyxl writes cell by cell; itertuples is its fastest feed
        for values in part.itertuples(index=False, name=None):
            ws.append([_cell(v) for v in values])
        _format_table(ws, part, columns)


def _cell(value: object) -> object:
    """A pandas value as an openpyxl cell value (NA -> empty, numpy scalars -> Python)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _format_table(ws: Worksheet, frame: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    last_row = len(frame) + 1
    for i, (col, header) in enumerate(columns, start=1):
        letter = get_column_letter(i)
        cell = ws.cell(row=1, column=i)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        ws.column_dimensions[letter].width = _width(frame.get(col, None), header)
        if col in MONEY_COLUMNS:
            for (c,) in ws.iter_rows(min_row=2, max_row=last_row, min_col=i, max_col=i):
                c.number_format = MONEY_FORMAT
        elif col == "score":
            for (c,) in ws.iter_rows(min_row=2, max_row=last_row, min_col=i, max_col=i):
                c.number_format = "0.00"
    _print_setup(ws, columns, last_row)


def _print_setup(ws: Worksheet, columns: Sequence[tuple[str, str]], last_row: int) -> None:
    from openpyxl.utils import get_column_letter

    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(last_row, 1)}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages tall as needed
    if ws.sheet_properties.pageSetUpPr is not None:  # a new worksheet always has one
        ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"  # the header row repeats on every printed page
    ws.print_options.gridLines = True


def _width(values: pd.Series | None, header: str) -> float:
    """Column width from the longest text, CJK characters counted double, clamped to 8-60."""
    widths = [_text_width(pd.Series([header]))]
    if values is not None and len(values):
        widths.append(_text_width(values.head(2000).astype("string").fillna("")))
    return float(min(max(max(widths) + 2, 8), 60))


def _text_width(s: pd.Series) -> int:
    s = s.astype("string")
    return int((s.str.len() + s.str.count(r"[^\x00-\xff]")).max() or 0)


def _summary_sheet(wb: Workbook, run: rdata.RunData) -> None:
    from openpyxl.styles import Font

    ws = wb.create_sheet("汇总 summary")
    f = rdata.headline(run.findings)  # dismissed and suppressed findings are not counted
    n_dismissed = len(run.findings) - len(f)
    facts = [
        ("运行 run", run.run_id),
        ("开始 started", str(run.run.get("started_at"))),
        ("文件 files", len(run.files)),
        ("读取行数 rows read", int(run.files["rows_read"].sum())),
        ("明细行 line items", int(run.files["stored_line_items"].sum())),
        ("拒收行 rejects", len(run.rejects)),
        ("非明细行 non-items", int(run.files["stored_non_items"].sum())),
        ("发现 findings", len(f)),
        ("涉嫌超额 money at risk (CNY)", float(f["est_excess_cny"].sum()) if len(f) else 0.0),
        ("未执行规则 rules not evaluated",
         int((run.rule_runs["status"] == "not_evaluated").sum())),
        ("已排除未计入 dismissed, not counted", n_dismissed),
    ]
    for label, value in facts:
        ws.append([label, value])
        ws.cell(row=ws.max_row, column=1).font = Font(bold=True)
        if label.startswith("涉嫌超额"):
            ws.cell(row=ws.max_row, column=2).number_format = MONEY_FORMAT
    ws.append([])
    _block(ws, "逐文件核对 per-file reconciliation", run.files, FILE_COLUMNS)
    ws.append([])
    mech = rdata.money_by(f, "mechanism", "extendable")
    mech["name"] = mech["mechanism"].map(lambda m: mechanism_name(m, "zh"))
    _block(ws, "按手法 money at risk by mechanism", mech, MECHANISM_COLUMNS)
    for i in range(1, 10):
        ws.column_dimensions[chr(64 + i)].width = 34 if i == 1 else 18
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    if ws.sheet_properties.pageSetUpPr is not None:  # a new worksheet always has one
        ws.sheet_properties.pageSetUpPr.fitToPage = True


def _block(ws: Worksheet, title: str, frame: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> None:
    from openpyxl.styles import Font

    ws.append([title])
    ws.cell(row=ws.max_row, column=1).font = Font(bold=True, size=12)
    ws.append([h for _, h in columns])
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    frame = neutralise(frame.reindex(columns=[c for c, _ in columns]))
    for values in frame.itertuples(index=False, name=None):
        ws.append([_cell(v) for v in values])
        for i, (col, _) in enumerate(columns, start=1):
            if col in MONEY_COLUMNS:
                ws.cell(row=ws.max_row, column=i).number_format = MONEY_FORMAT
