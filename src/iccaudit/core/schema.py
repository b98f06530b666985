"""The canonical records of iccaudit: line items, rejects, files, runs and findings, and what
produced a run (its configuration, the enriched facts of its lines).

The pydantic models here are the documentation and the validation of every table the tool
writes; :mod:`iccaudit.store` derives its DuckDB DDL from :data:`TABLES`, so the two cannot
drift apart. Vocabularies used in several places (mechanisms, severities, reject reasons) are
defined once, here.
"""

from __future__ import annotations

import datetime as dt
import typing
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

if TYPE_CHECKING:
    import pyarrow as pa

#: 2: line_items.currency; files rows for the files skipped; non-items of kind "repeat";
#:    line_items.buyer; line_facts.ref_as_of; findings.fingerprint and rule_version; verdicts, suppressions.
SCHEMA_VERSION = 2

#: Storage hint for the raw JSON columns and the findings' texts (``ddl`` writes it as
#: ``USING COMPRESSION zstd``): DuckDB's default string compression (dictionary + FSST)
#: spends most of a large run's write on them; zstd writes 1 M lines' JSON three times
#: faster into a sixth of the space and scans it faster too (609 k findings' evidence:
#: 0.9 s and 81 MB by default, 0.4 s and 30 MB as zstd; their messages 0.2 s -> 0.1 s each).
#: A database created before keeps its own choice (same values).
ZSTD: JsonDict = {"compression": "zstd"}

#: DuckDB SQL giving the JSON text of a ``raw`` column held as the cells themselves (a struct
#: under the header names, as ingest keeps a batch of one header layout): the very text
#: ``json_object`` writes for those cells.
RAW_CELLS_AS_JSON = 'to_json("raw")::VARCHAR'

#: A staging Parquet file (an out-of-core run) keeps ``raw`` as the cells of its first
#: batch's header layout; the JSON text of a batch of any other layout goes in this column
#: beside it (``raw`` then null). :class:`iccaudit.store.ParquetRows` gives back one text
#: column: this one, else the cells' JSON.
RAW_JSON_BESIDE_CELLS = "raw_json"


def raw_is_cells(arrow_schema: pa.Schema) -> bool:
    """Whether an Arrow schema's ``raw`` column holds the cells (a struct), not JSON text."""
    import pyarrow as pa

    i = arrow_schema.get_field_index("raw")
    return i >= 0 and pa.types.is_struct(arrow_schema.field(i).type)

#: Fraud mechanisms. One vocabulary for rules, models, labels and reports.
MECHANISMS: dict[str, str] = {
    "head_module_split": "机头+模组拆分计价 / machine head + GPU module billed as complete servers",
    "liquid_cooling_markup": "液冷虚高 / liquid cooling quoted far above market",
    "domestic_shell": "国产卡空壳 / domestic accelerator shells or idle cards",
    "used_as_new": "二手翻新充新 / used or refurbished cards billed as new",
    "offbrand_premium": "小品牌按大牌计价 / minor brand billed at tier-1 price",
    "capacity_mismatch": "算力虚报 / claimed compute does not match the cards bought",
    "price_outlier": "价格异常 / price far above reference or peers",
    "duplicate_line": "重复计价 / the same line billed twice",
    "bill_arithmetic": "金额不符 / quantity x unit price differs from the line total",
    "supply_channel": "供货渠道风险 / export-controlled model bought after the ban",
    "extendable": "其他 / other (rule authors' new schemes)",
}
Mechanism = Literal[
    "head_module_split",
    "liquid_cooling_markup",
    "domestic_shell",
    "used_as_new",
    "offbrand_premium",
    "capacity_mismatch",
    "price_outlier",
    "duplicate_line",
    "bill_arithmetic",
    "supply_channel",
    "extendable",
]

SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

#: Why a row is not a line item although it is not a title, header, blank or total row.
REJECT_REASONS: dict[str, str] = {
    "price_missing": "no unit price or total (empty, 面议, 详见附件 …)",
    "price_unparseable": "a price that is not a number",
    "price_negative": "a negative price",
    "quantity_missing": "no quantity",
    "quantity_unparseable": "a quantity that is not a number",
    "quantity_not_positive": "zero or negative quantity",
    "name_missing": "no item name",
    "date_invalid": "a date that does not exist (2024-02-30) or cannot be read",
    "capacity_unparseable": "a capacity value that cannot be read as kW",
    "value_too_long": "a cell longer than the documented limit",
}

#: Rows that are read but are not line items, and are not errors either.
NON_ITEM_KINDS: dict[str, str] = {
    "title": "title block above the header (项目名称, 项目编号 …)",
    "header": "the header row itself",
    "blank": "an empty row",
    "total": "a total or subtotal row (合计, 小计, 总计)",
    "note": "a free-text note below the table (备注, 说明 …)",
    "repeat": "an OCDS item published again (a later release, the contract repeating its award)",
}


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineItem(_Record):
    """One priced line of a tender, in canonical form.

    Money is always in CNY (元); 万元 columns and "245万" values are scaled on ingest.
    """

    run_id: str = Field(description="the run that ingested this line")
    item_id: int = Field(description="line id, unique within the run")
    source_file: str = Field(description="path of the tender file as given on the command line")
    source_sheet: str | None = Field(None, description="Excel sheet name; NULL for other formats")
    source_row: int = Field(
        description="1-based row number as a person sees it in Excel or a text editor"
    )
    tender_id: str = Field(description="项目编号: from a column, else the title block, else file stem")
    project_name: str | None = Field(None, description="项目名称 from a column or the title block")
    line_no: str = Field(description="the file's own 序号 when present, else source_row")
    item_name: str = Field(description="货物名称 / 品目")
    brand: str | None = Field(None, description="品牌 / 制造商")
    model: str | None = Field(None, description="规格型号 / 型号")
    spec: str | None = Field(None, description="技术参数 / 规格参数 (free text)")
    quantity: float = Field(gt=0, description="数量")
    unit: str | None = Field(None, description="单位: 台, 套, 张, 项 …")
    unit_price_cny: float = Field(ge=0, description="单价 in 元")
    total_cny: float | None = Field(None, description="总价 / 合价 in 元 as stated (not computed)")
    currency: str | None = Field(
        None, description="币种: the ISO 4217 code of unit_price_cny and total_cny when the file "
        "states another currency than yuan (OCDS unit.value.currency) and no rate table "
        "converted them; NULL or CNY: yuan")
    supplier: str | None = Field(None, description="供应商 / 中标人")
    buyer: str | None = Field(None, description="采购人 / 采购单位: the purchasing body")
    date: dt.date | None = Field(None, description="合同日期 / 日期")
    condition: str | None = Field(None, description="新旧程度 / 成色 as written")
    serial_numbers: list[str] = Field(default_factory=list, description="序列号 split into a list")
    capacity_kw: float | None = Field(
        None, description="制冷量 / 功率 in kW, from its column or from the spec text"
    )
    manufacture_date: dt.date | None = Field(None, description="生产日期 / 出厂日期")
    price_includes_vat: bool | None = Field(
        None, description="true for 含税 price columns, false for 不含税, NULL when not stated"
    )
    claimed_pflops: float | None = Field(
        None,
        description="tender-level compute claim in PFLOPS (column 算力 or title '算力规模: 500 PFLOPS')",
    )
    raw: str = Field(description="the row's raw cell values as JSON {header: value}",
                     json_schema_extra=ZSTD)


class Reject(_Record):
    """A row that could not become a line item, with the reason."""

    run_id: str
    source_file: str
    source_sheet: str | None = None
    source_row: int
    reason: str = Field(description="one of REJECT_REASONS")
    column: str | None = Field(None, description="the header of the offending column")
    detail: str = Field(description="one line a person can act on")
    raw: str = Field(description="the row's raw cell values as JSON", json_schema_extra=ZSTD)


class NonItem(_Record):
    """A row that was read and recognised as not a line item (title, header, blank, total)."""

    run_id: str
    source_file: str
    source_sheet: str | None = None
    source_row: int
    kind: str = Field(description="one of NON_ITEM_KINDS")
    text: str | None = Field(None, description="the row's text, shortened")


class FileRecord(_Record):
    """Accounting per input file: rows_read = line_items + rejects + non_items."""

    run_id: str
    source_file: str
    content_sha256: str
    format: str = Field(description="csv, tsv, xlsx, parquet, json, jsonl, docx, pdf, html, ocds")
    encoding: str | None = Field(None, description="detected text encoding")
    sheets: int = Field(0, description="sheets (or tables) with line items")
    rows_read: int
    line_items: int
    rejects: int
    non_items: int
    status: Literal["ok", "error", "skipped"]
    error: str | None = None


class Run(_Record):
    """One invocation of ``iccaudit score``."""

    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    tool_version: str
    inputs: str = Field(description="JSON list of {path, sha256}")
    options: str = Field(description="JSON of the options the run used (rules dirs, seed …)")
    files: int = 0
    rows_read: int = 0
    line_items: int = 0
    rejects: int = 0
    non_items: int = 0
    findings: int = 0
    rules_evaluated: int = 0
    rules_not_evaluated: int = 0
    status: Literal["complete", "failed"] = "complete"


class RuleRun(_Record):
    """What one rule (or model group) did in one run. not_evaluated is never zero findings."""

    run_id: str
    detector: str
    kind: Literal["rule", "model"]
    status: Literal["ok", "not_evaluated", "skipped"]
    rows_evaluated: int | None = None
    rows_applicable: int | None = None
    hits: int | None = None
    error: str | None = None
    warning: str | None = None


class Finding(_Record):
    """One implicated line of one finding. ``group_id`` ties the lines of one finding together."""

    run_id: str
    finding_id: str
    group_id: str
    item_id: int | None = None
    source_file: str
    source_sheet: str | None = None
    source_row: int | None = None
    tender_id: str
    line_no: str | None = None
    detector: str = Field(description="rule id or model name")
    kind: Literal["rule", "model"]
    mechanism: Mechanism
    severity: Severity
    score: float = Field(ge=0, le=1)
    est_excess_cny: float | None = Field(None, description="estimated overpayment, counted once")
    title: str = Field(description="short title, Chinese (the report's default language)")
    title_en: str | None = Field(None, description="short title, English")
    message: str = Field(description="what was found, in Chinese, ready to paste into a report",
                         json_schema_extra=ZSTD)
    message_en: str | None = Field(None, description="the same message in English",
                                   json_schema_extra=ZSTD)
    evidence: str = Field(description="JSON object of the values that support the finding",
                          json_schema_extra=ZSTD)
    rule_version: str | None = Field(
        None, description="short hash of the detector's logic: a rule's SQL-relevant fields, "
        "the models' settings (tests, docs and message wording left out)")
    fingerprint: str | None = Field(
        None, description="the finding line across runs: hash of tender, the line's content, "
        "detector and rule_version (computed by the store when the run is written)")


class LineFact(_Record):
    """What the enrich views derived for one line, as the run's rules saw it.

    Written by the run from its sandbox (``items``), so that the report and the exports show
    the run's own figures and never re-derive them with today's reference book. Narrow on
    purpose: only what they show; the column names and meanings are those of the ``items``
    view (docs/dictionary.md).
    """

    run_id: str
    item_id: int
    category: str | None = Field(None, description="items.category")
    accel_model: str | None = Field(None, description="items.accel_model")
    cards_per_unit: int | None = Field(None, description="items.cards_per_unit")
    cooling_type: str | None = Field(None, description="items.cooling_type")
    price_per_kw: float | None = Field(None, description="items.price_per_kw")
    ref_basis: str | None = Field(None, description="items.ref_basis")
    ref_low_cny: float | None = Field(None, description="items.ref_low_cny")
    ref_high_cny: float | None = Field(None, description="items.ref_high_cny")
    ref_as_of: str | None = Field(None, description="items.ref_as_of (the dated reference "
                                  "point used, and where the line's date came from)")
    peer_basis: str | None = Field(None, description="items.peer_basis")
    peer_price_cny: float | None = Field(None, description="items.peer_price_cny")
    peer_count: int | None = Field(None, description="items.peer_count")
    peer_median: float | None = Field(None, description="items.peer_median")


#: What recognised a line's category: the lexicon, the learned fallback, or nothing.
RecognisedBy = Literal["lexicon", "model", "none"]


class LineRecognition(_Record):
    """How the run understood one line: by the lexicon (``rules/lexicon/``), by the learned
    fallback's guess, or not at all. The recognition coverage (``recognition_coverage``
    view, the summary, the report, ``iccaudit lexicon gaps``) is read from these rows."""

    run_id: str
    item_id: int
    recognised_by: RecognisedBy = Field(description="items.recognised_by")
    category: str | None = Field(None, description="items.category")
    model_confidence: float | None = Field(None, description="items.model_confidence")


#: What a reviewer concluded about a finding.
VERDICT_STATUSES: tuple[str, ...] = ("confirmed", "dismissed", "needs-info")
VerdictStatus = Literal["confirmed", "dismissed", "needs-info"]
#: How far a suppression reaches: the one finding line, the rule's findings on one
#: supplier's lines, or the rule's findings where a condition holds.
SuppressionScope = Literal["line", "supplier", "rule"]


class Verdict(_Record):
    """A reviewer's conclusion on a finding, by fingerprint. History is kept: the latest
    verdict of a fingerprint (highest ``verdict_id``) is its current one."""

    run_id: str = Field(description="the run the reviewer was looking at")
    verdict_id: int = Field(description="increasing across the database: later supersedes")
    fingerprint: str
    status: VerdictStatus
    reason: str | None = None
    reviewer: str
    made_at: dt.datetime
    source: str = Field(description="where it was recorded: xlsx file name, review page, cli")


class Suppression(_Record):
    """A dismissal turned into a standing decision: matching findings stay stored, marked
    suppressed, and out of the headline totals."""

    run_id: str = Field(description="the run the suppression was made in")
    suppression_id: int
    scope: SuppressionScope
    detector: str = Field(description="the rule or model it applies to")
    fingerprint: str | None = Field(None, description="scope line: the finding line")
    supplier: str | None = Field(None, description="scope supplier: the supplier's lines")
    condition: str | None = Field(None, description="scope rule: a SQL condition over the "
                                  "columns of latest_findings, checked before it is stored")
    reason: str
    created_by: str
    created_at: dt.datetime
    from_fingerprint: str = Field(description="the dismissed finding it was made from")


#: What a ``run_config`` row records: a rule file, a reference file, the detector settings,
#: the column mapping, the currency rate table, or the whole configuration (``pack``: one row per run).
ConfigKind = Literal["pack", "rules", "reference", "lexicon", "models", "mapping", "rates"]


class RunConfig(_Record):
    """One file that produced a run (a rule, a reference file, the detector settings, the
    column mapping), with its content, so that a run can be shown and repeated later.

    The ``pack`` row sums the run's configuration up: its ``sha256`` hashes the manifest (one
    line ``kind<TAB>path<TAB>sha256`` per other row, sorted), which is its ``text``; the same
    files give the same hash wherever they lie.
    """

    run_id: str
    kind: ConfigKind
    root: str | None = Field(None, description="the folder the file was read from, as the run "
                             "resolved it (NULL for the pack row)")
    path: str = Field(description="the file's path relative to root ('' for the pack row)")
    sha256: str = Field(description="SHA-256 of the file's bytes (of the manifest: pack)")
    text: str | None = Field(None, description="the file's text as read (UTF-8)",
                             json_schema_extra=ZSTD)


_SQL_TYPES: dict[object, str] = {
    str: "VARCHAR",
    int: "BIGINT",
    float: "DOUBLE",
    bool: "BOOLEAN",
    dt.date: "DATE",
    dt.datetime: "TIMESTAMP",
    list[str]: "VARCHAR[]",
}


def sql_type(annotation: object) -> str:
    """DuckDB type of a pydantic field annotation (Optional unwrapped, Literal as VARCHAR)."""
    import types

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return sql_type(args[0])
    if origin is typing.Literal:
        return "VARCHAR"
    if annotation in _SQL_TYPES:
        return _SQL_TYPES[annotation]
    if isinstance(annotation, str):  # Mechanism / Severity aliases resolved lazily
        return "VARCHAR"
    raise TypeError(f"no SQL type for {annotation!r}")


#: table name -> record model, in creation order.
TABLES: dict[str, type[_Record]] = {
    "runs": Run,
    "run_config": RunConfig,
    "files": FileRecord,
    "line_items": LineItem,
    "line_facts": LineFact,
    "line_recognition": LineRecognition,
    "rejects": Reject,
    "non_items": NonItem,
    "rule_runs": RuleRun,
    "findings": Finding,
    "verdicts": Verdict,
    "suppressions": Suppression,
}


def columns(table: str) -> list[str]:
    """Column names of a table, in order."""
    return list(TABLES[table].model_fields)


def ddl(table: str) -> str:
    """CREATE TABLE statement for a table, derived from its pydantic model."""
    model = TABLES[table]
    cols = []
    for name, field in model.model_fields.items():
        typ = sql_type(field.annotation)
        null = "" if (not field.is_required() or _is_optional(field.annotation)) else " NOT NULL"
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        using = f" USING COMPRESSION {extra['compression']}" if "compression" in extra else ""
        cols.append(f'    "{name}" {typ}{null}{using}')
    return f"CREATE TABLE IF NOT EXISTS {table} (\n" + ",\n".join(cols) + "\n)"


def _is_optional(annotation: object) -> bool:
    import types

    origin = typing.get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)
