"""Header recognition: aliases of every canonical field, header units, the user mapping file.

A header cell is normalised (NFKC, no spaces, lower case) and its bracketed unit recorded
("单价（万元）" -> base "单价", unit "万元"), then matched against the aliases below: exactly first,
then (Chinese aliases only) as the longest alias contained in the header, so "投标单价" and
"供应商名称" map where a person would map them. A user mapping file takes priority over all of it.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from iccaudit.core import yamlsafe

#: canonical field -> aliases as they appear in tender tables (compared after normalising).
ALIASES: dict[str, tuple[str, ...]] = {
    "line_no": ("序号", "行号", "编号", "序", "no", "no.", "#", "line", "line_no", "item_no"),
    "item_name": (
        "货物名称", "产品名称", "品目", "品目名称", "标的名称", "名称", "设备名称", "物资名称",
        "项目内容", "服务名称", "商品名称", "采购内容", "货物", "item", "item_name", "name",
        "description", "product",
    ),
    "brand": ("品牌", "制造商", "生产厂家", "生产厂商", "厂家", "厂商", "brand", "manufacturer",
              "make"),
    "model": ("规格型号", "型号", "型号规格", "产品型号", "model", "model_no", "part_no"),
    "spec": ("技术参数", "规格参数", "配置", "参数", "规格", "技术规格", "配置参数",
             "主要技术参数", "技术要求", "配置要求", "spec", "specs", "specification",
             "specifications", "configuration"),
    "quantity": ("数量", "采购数量", "qty", "quantity", "count"),
    "unit": ("单位", "计量单位", "unit", "uom"),
    "unit_price_cny": ("单价", "含税单价", "不含税单价", "报价", "投标单价", "中标单价",
                       "成交单价", "综合单价", "unit_price", "unit price", "price", "unitprice"),
    "total_cny": ("总价", "合价", "金额", "小计金额", "总报价", "投标总价", "中标金额",
                  "成交金额", "含税总价", "不含税总价", "total", "amount", "total_price",
                  "line_total"),
    "supplier": ("供应商", "中标人", "成交供应商", "投标人", "中标供应商", "中标单位",
                 "供货商", "supplier", "vendor", "bidder"),
    "buyer": ("采购人", "采购人名称", "采购单位", "采购单位名称", "招标人", "buyer", "purchaser",
              "procuring_entity"),
    "date": ("日期", "合同日期", "签订日期", "采购日期", "中标日期", "成交日期", "交货日期",
             "date", "contract_date"),
    "condition": ("新旧程度", "成色", "新旧", "condition"),
    "serial_numbers": ("序列号", "sn", "s/n", "sn号", "序列号sn", "serial", "serial_no",
                       "serial_numbers", "serials"),
    "capacity_kw": ("制冷量", "功率", "冷量", "额定功率", "制冷功率", "容量", "capacity",
                    "capacity_kw", "cooling_capacity"),
    "manufacture_date": ("生产日期", "出厂日期", "manufacture_date", "manufactured"),
    "tender_id": ("项目编号", "招标编号", "采购项目编号", "采购编号", "tender_id", "tender id",
                  "tender_no", "project_id"),
    "project_name": ("项目名称", "采购项目名称", "project_name", "project"),
    "claimed_pflops": ("算力", "总算力", "算力规模", "claimed_pflops", "pflops"),
    "currency": ("币种", "货币", "币别", "货币种类", "currency", "currency_code"),
}

#: The canonical fields a mapping file may name.
CANONICAL_FIELDS: tuple[str, ...] = tuple(ALIASES)
MONEY_FIELDS = ("unit_price_cny", "total_cny")

_BRACKETS = re.compile(r"[(\[【{<]([^)\]】}>]*)[)\]】}>]")
_MONEY_UNITS = {"亿元": 1e8, "万元": 1e4, "千元": 1e3, "元": 1.0, "rmb": 1.0, "cny": 1.0}
_CAP_UNITS = {"mw": 1000.0, "兆瓦": 1000.0, "kw": 1.0, "千瓦": 1.0, "w": 0.001, "瓦": 0.001,
              "rt": 3.517, "冷吨": 3.517}
_PFLOPS_UNITS = {"eflops": 1000.0, "ef": 1000.0, "e": 1000.0, "pflops": 1.0, "pf": 1.0,
                 "p": 1.0, "tflops": 0.001, "tf": 0.001, "t": 0.001}
# Substring matching is only for short Chinese headers; long cells are data or title text.
_SUBSTRING_MAX_LEN = 12


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", unicodedata.normalize("NFKC", text)).lower()


_EXACT: dict[str, str] = {_norm(a): f for f, aliases in ALIASES.items() for a in aliases}
_CJK_ALIASES: list[tuple[str, str]] = [
    (a, f) for a, f in _EXACT.items() if re.search(r"[\u4e00-\u9fff]", a)
]


@dataclass(frozen=True)
class HeaderInfo:
    """What one header cell says: the field, the unit's scale, and the VAT wording."""

    text: str
    field: str | None
    scale: float = 1.0
    includes_vat: bool | None = None


def split_header(text: str) -> tuple[str, str]:
    """Normalised header base and its bracketed unit text: "单价（万元）" -> ("单价", "万元")."""
    t = _norm(text)
    units = " ".join(_BRACKETS.findall(t))
    base = _BRACKETS.sub("", t).strip("*:：")
    return base, units


def _scale(field: str | None, base: str, units: str) -> tuple[str, float]:
    """The unit scale for a field, from the bracket or a unit suffix; returns (base, scale)."""
    if field in MONEY_FIELDS or field is None:
        for unit, factor in _MONEY_UNITS.items():
            if unit in units:
                return base, factor
        for unit, factor in _MONEY_UNITS.items():
            if base.endswith(unit) and len(base) > len(unit):
                return base[: -len(unit)], factor
        return base, 1.0
    table = _CAP_UNITS if field == "capacity_kw" else _PFLOPS_UNITS
    if field in ("capacity_kw", "claimed_pflops"):
        for unit in re.findall(r"[a-z]+|[\u4e00-\u9fff]+", units):
            if unit in table:
                return base, table[unit]
    return base, 1.0


def match_field(base: str) -> str | None:
    """Canonical field of a normalised header base, or None."""
    if base in _EXACT:
        return _EXACT[base]
    if 0 < len(base) <= _SUBSTRING_MAX_LEN:
        # Longest alias wins; on a tie the earlier one, because Chinese puts the modifier
        # first: 供应商名称 is the supplier, 品牌名称 the brand, 货物名称及规格型号 the item.
        hits = [(len(a), -base.index(a), f) for a, f in _CJK_ALIASES if a in base]
        if hits:
            return max(hits)[2]
    return None


def interpret(text: str | None, mapping: dict[str, str] | None = None) -> HeaderInfo:
    """Read one header cell: canonical field (user mapping first), unit scale, VAT flag."""
    if text is None or str(text).strip() == "":
        return HeaderInfo("", None)
    # Thousands of files repeat the same few hundred header texts: read each once.
    key = tuple(sorted(mapping.items())) if mapping else None
    return _interpret(str(text), key)


@functools.lru_cache(maxsize=65536)
def _interpret(text: str, mapping_items: tuple[tuple[str, str], ...] | None) -> HeaderInfo:
    mapping = dict(mapping_items) if mapping_items else None
    base, units = split_header(text)
    field = None
    if mapping:
        field = mapping.get(text.strip()) or mapping.get(_norm(text)) or mapping.get(base)
    stripped = base
    if field is None:
        field = match_field(base)
        if field is None:
            # "单价万元" / "金额元": try again without a money unit suffix.
            stripped, _ = _scale(None, base, "")
            field = match_field(stripped) if stripped != base else None
    _, scale = _scale(field, base, units)
    if field == "capacity_kw" and units and scale == 1.0 and not re.search(r"kw|千瓦", units):
        field = None  # "容量(TB)" or "功率(A)": not a power in kW, so not our capacity
    vat = None
    wording = base + " " + units
    if "不含税" in wording or "未含税" in wording or "excl" in wording:
        vat = False
    elif "含税" in wording or "incl" in wording:
        vat = True
    return HeaderInfo(text, field, scale, vat if field in MONEY_FIELDS else None)


# ---------------------------------------------------------------- the user mapping file


class MappingFile(BaseModel):
    """``--mapping map.yaml``: ``headers: {their header: canonical_field}``."""

    model_config = ConfigDict(extra="forbid")
    headers: dict[str, str]


class MappingError(Exception):
    """An invalid mapping file; the message is one line."""


def load_mapping(path: Path) -> dict[str, str]:
    """Read and validate a mapping file; keys are stored raw, stripped and normalised."""
    try:
        data = yamlsafe.load(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read the mapping file: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MappingError(f"{path}{where}: invalid YAML: {problem}") from None
    try:
        parsed = MappingFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise MappingError(
            f"{path}: {problems} (expected: headers: {{\"their header\": field}})"
        ) from None
    out: dict[str, str] = {}
    for header, field in parsed.headers.items():
        if field not in CANONICAL_FIELDS:
            close = difflib.get_close_matches(field, CANONICAL_FIELDS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise MappingError(
                f"{path}: headers.{header!r}: unknown canonical field {field!r}{hint}; "
                f"known: {', '.join(CANONICAL_FIELDS)}"
            )
        out[header.strip()] = field
        out[_norm(header)] = field
    return out


# ---------------------------------------------------------------- header row detection

#: A header row names the item and at least a price or a quantity.
REQUIRED_ANY = ("unit_price_cny", "total_cny", "quantity")
HEADER_SCAN_ROWS = 30
MIN_HEADER_FIELDS = 3


def is_header(fields: set[str]) -> bool:
    """Whether a row's recognised fields make it a table header."""
    return (
        len(fields) >= MIN_HEADER_FIELDS
        and "item_name" in fields
        and any(f in fields for f in REQUIRED_ANY)
    )


def missing_required(fields: set[str]) -> list[str]:
    """The required fields a header lacks (item name, a price, a quantity)."""
    missing = [f for f in ("item_name", "quantity") if f not in fields]
    if "unit_price_cny" not in fields and "total_cny" not in fields:
        missing.insert(1, "unit_price_cny or total_cny")
    return missing


# ---------------------------------------------------------------- title block

_ID_LABEL = (
    r"(?:采购项目编号|招标项目编号|项目编号|招标编号|采购编号|标段编号|tender[ _]?id|tender[ _]?no\.?"
    r"|project[ _]?id)"
)
_TENDER_ID_RE = re.compile(_ID_LABEL + r"\s*[:：]?\s*\|?\s*([^\s|,，;；]+)", re.IGNORECASE)
_LABELS_AFTER = re.compile(
    r"(?:采购)?项目名称[:：]?|项目编号|招标编号|采购编号|(?:日期|算力规模|总算力)[:：]"
)
_PROJECT_RE = re.compile(
    r"(?:采购项目名称|项目名称|project[ _]?name)\s*[:：]?\s*\|?\s*([^|\n]+)", re.IGNORECASE
)
_CLAIM_RE = re.compile(
    r"(?:算力规模|总算力|算力总规模|智能算力|计算能力|算力)\s*[:：]?\s*\|?\s*"
    r"(?:不低于|不少于|大于|达到|约|≥|>=|>)?\s*(\d+(?:\.\d+)?)\s*"
    r"(eflops|ef|e|pflops|pf|p|tflops|tf|t)(?![a-z])",
    re.IGNORECASE,
)


#: Labelled fields of a document's prose (a Word title paragraph, an HTML award notice) that
#: stand for a whole table: the winning supplier, the buyer and the date. Longest labels first.
_SUPPLIER_RE = re.compile(
    r"(?:中标供应商名称|成交供应商名称|中标供应商|成交供应商|中标人名称|中标人|中标单位|成交人"
    r"|供应商名称|投标人名称|supplier|awarded to)\s*[:：]\s*\|?\s*([^|\n]+)",
    re.IGNORECASE,
)
_BUYER_RE = re.compile(
    r"(?:采购人名称|采购单位名称|采购人|采购单位|招标人名称|招标人|buyer|procuring entity)"
    r"\s*[:：]\s*\|?\s*([^|\n]+)",
    re.IGNORECASE,
)
_DATE_RE = re.compile(
    r"(?:中标日期|成交日期|签订日期|合同签订日期|合同日期|公告日期|发布日期|发布时间|公告时间|报价日期|投标日期|日期"
    r"|award date|contract date|date)\s*[:：]\s*\|?\s*"
    r"(\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?)",
    re.IGNORECASE,
)
_FIELD_END = re.compile(r"\s{2,}|\s(?=\S{1,8}\s*[:：])")


@dataclass
class TitleInfo:
    """Tender-level facts found in the title block (or top-level JSON keys)."""

    tender_id: str | None = None
    project_name: str | None = None
    claimed_pflops: float | None = None
    #: the supplier and date a document states once for its table (used where a row has none)
    supplier: str | None = None
    buyer: str | None = None
    date: str | None = None


def read_title(text: str) -> TitleInfo:
    """Tender id, project name and compute claim from title-block text (rows joined by \\n)."""
    text = unicodedata.normalize("NFKC", text)
    info = TitleInfo()
    m = _TENDER_ID_RE.search(text)
    if m:
        value = _LABELS_AFTER.split(m.group(1))[0].strip(":：")
        info.tender_id = value or None
    m = _PROJECT_RE.search(text)
    if m:
        value = re.split(r"\s{2,}|\s(?=\S*(?:编号|日期|算力)\s*[:：])", m.group(1).strip())[0]
        value = _LABELS_AFTER.split(value)[0].strip(" :：")
        info.project_name = value or None
    m = _CLAIM_RE.search(text)
    if m:
        info.claimed_pflops = float(m.group(1)) * _PFLOPS_UNITS[m.group(2).lower()]
    m = _SUPPLIER_RE.search(text)
    if m:
        info.supplier = _FIELD_END.split(m.group(1).strip())[0].strip(" :：;；,，。") or None
    m = _BUYER_RE.search(text)
    if m:
        info.buyer = _FIELD_END.split(m.group(1).strip())[0].strip(" :：;；,，。") or None
    m = _DATE_RE.search(text)
    if m:
        info.date = _real_date(m.group(1))
    return info


def _real_date(text: str) -> str | None:
    """An ISO date from "2024年3月5日" / "2024-03-05" / "2024/3/5", None if no such day."""
    import datetime as dt

    y, mo, d = (int(x) for x in re.findall(r"\d+", text)[:3])
    try:
        return dt.date(y, mo, d).isoformat()
    except ValueError:
        return None
