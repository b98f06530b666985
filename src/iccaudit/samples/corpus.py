"""Drivers: the labelled 16-file corpus and the large single CSV.

Both run the same pipeline over one line table (:func:`build_table`): tenders -> honest base
lines -> injected schemes and look-alikes -> duplicates -> services, serials, conditions ->
claims and whole-table label rules. The corpus then renders one file per tender in a rotating
plan of shapes; the large CSV writes everything at once.

Over 500 lines on purpose: the two drivers share one build order, and reading it in one file
is what keeps the labels and the lines in step.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from iccaudit.samples import catalogue as cat
from iccaudit.samples import schemes as sc
from iccaudit.samples.documents import write_documents
from iccaudit.samples.lines import Builder, base_lines, dedupe, make_tenders
from iccaudit.samples.render import (
    EN_HEADERS,
    FIELD_ORDER,
    JSON_KEYS,
    MW_HEADER,
    WAN_HEADERS,
    ZH_HEADERS,
    Plan,
    Style,
    display_table,
    with_non_items,
    write_json,
    write_parquet,
    write_text,
    write_xlsx,
)

#: (name, injector, count per 16 tenders). Counts are exact in the corpus; in the large CSV
#: they become per-tender rates (count x LARGE_RATE).
INJECTIONS: list[tuple[str, Callable, int]] = [
    ("head_module_pair", partial(sc.head_module_pair, fraud=True), 2),
    ("assembly_discount", partial(sc.head_module_pair, fraud=False), 3),
    ("assembled_as_complete", sc.assembled_as_complete, 2),
    ("cooling_markup", sc.cooling_markup, 3),
    ("retrofit_markup", sc.retrofit_markup, 1),
    ("shell_wording", partial(sc.domestic_shell, variant="wording"), 3),
    ("shell_fraction", partial(sc.domestic_shell, variant="fraction"), 1),
    ("domestic_delivery", sc.domestic_delivery, 3),
    ("used_condition", partial(sc.used_as_new, where="column"), 2),
    ("used_spec", partial(sc.used_as_new, where="spec"), 2),
    ("old_manufacture", sc.old_manufacture, 2),
    ("declared_used", sc.declared_used, 3),
    ("offbrand", partial(sc.minor_brand, fraud=True), 3),
    ("minor_brand_price", partial(sc.minor_brand, fraud=False), 3),
    ("accelerator_outlier", sc.accelerator_outlier, 3),
    ("novel_outlier", sc.novel_outlier, 5),
    ("bill_error", sc.bill_error, 4),
]
DUPLICATES = 3
DUPLICATE_LOOKALIKES = 3
SERIAL_REUSE = 2
INFLATED_CLAIMS = 2
LARGE_RATE = 0.012
#: Below this many rows the large CSV has no injections (too few lines to hold them).
LARGE_MIN_INJECT = 500

#: The rotating plan of file shapes of the corpus (cycled when tenders > 16).
FORMAT_PLAN: list[Plan] = [
    {"fmt": "csv", "encoding": "utf-8", "lang": "zh", "money": "plain", "date": "iso", "sn": True, "cond": True,
         "cap": True, "mfg": False, "claim": "column", "extra": ("tender_id",), "subtotals": True, "blank": True,
         "note": True},
    {"fmt": "xlsx", "layout": "title", "lang": "zh", "money": "wan_col", "date": "excel", "sn": False,
         "cond": False, "cap": True, "mfg": True, "claim": "title"},
    {"fmt": "csv", "encoding": "utf-8-sig", "lang": "zh", "money": "yen", "date": "slash", "sn": True,
         "cond": False, "cap": False, "mfg": False, "claim": "none", "crlf": True},
    {"fmt": "parquet", "lang": "zh", "money": "num", "date": "iso", "sn": True, "cond": True, "cap": True,
         "mfg": True, "claim": "column", "extra": ("tender_id", "project")},
    {"fmt": "csv", "encoding": "gb18030", "lang": "zh", "money": "wan_suffix", "date": "zh", "sn": False,
         "cond": True, "cap": False, "mfg": False, "claim": "none", "crlf": True},
    {"fmt": "xlsx", "layout": "two_sheets", "lang": "zh", "money": "plain", "date": "iso", "sn": True,
         "cond": True, "cap": True, "mfg": False, "claim": "title", "cap_unit": "MW"},
    {"fmt": "json", "lang": "en", "money": "num", "date": "iso", "sn": True, "cond": True, "cap": True, "mfg": True,
         "claim": "column"},
    {"fmt": "tsv", "encoding": "utf-8", "lang": "zh", "money": "comma", "date": "iso", "sn": False,
         "cond": False, "cap": True, "mfg": True, "claim": "none"},
    {"fmt": "xlsx", "layout": "notes_sheet", "lang": "zh", "money": "yen", "date": "zh", "sn": False,
         "cond": True, "cap": False, "mfg": False, "claim": "title"},
    {"fmt": "csv", "encoding": "utf-8", "lang": "en", "money": "plain", "date": "iso", "sn": True, "cond": True,
         "cap": True, "mfg": True, "claim": "column", "extra": ("tender_id",)},
    {"fmt": "jsonl", "lang": "zh", "money": "num", "date": "iso", "sn": False, "cond": True, "cap": True,
         "mfg": False, "claim": "none"},
    {"fmt": "xlsx", "layout": "two_sheets_notes", "lang": "zh", "money": "wan_col", "date": "excel",
         "sn": True, "cond": False, "cap": True, "mfg": True, "claim": "none"},
    {"fmt": "parquet", "lang": "en", "money": "num", "date": "iso", "sn": False, "cond": False, "cap": False,
         "mfg": False, "claim": "none"},
    {"fmt": "csv", "encoding": "gb18030", "lang": "zh", "money": "plain", "date": "slash", "sn": True,
         "cond": True, "cap": True, "mfg": False, "claim": "column"},
    {"fmt": "xlsx", "layout": "title", "lang": "en", "money": "plain", "date": "excel", "sn": True, "cond": True,
         "cap": False, "mfg": True, "claim": "title"},
    {"fmt": "csv", "encoding": "utf-8-sig", "lang": "zh", "money": "wan_col", "date": "iso", "sn": False,
         "cond": True, "cap": True, "mfg": True, "claim": "column"},
]
_EXT = {"csv": "csv", "tsv": "tsv", "xlsx": "xlsx", "parquet": "parquet", "json": "json",
        "jsonl": "jsonl"}
SAMPLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".parquet", ".json", ".jsonl", ".docx", ".pdf",
                   ".html"}
#: The folder (beside ``tenders/``) of one tender in the document formats.
FORMATS = "formats"
LABEL_COLUMNS = ["file", "sheet", "line_no", "mechanism", "novel", "note"]
LOOKALIKE_COLUMNS = ["file", "sheet", "line_no", "mechanism", "kind", "note"]
#: look-alike kind -> the mechanism it resembles (and must not be labelled with).
LOOKALIKE_OF: dict[str, str] = {
    "assembly_discount": "head_module_split",
    "cooling_at_reference": "liquid_cooling_markup",
    "retrofit_at_reference": "liquid_cooling_markup",
    "declared_used_price": "used_as_new",
    "domestic_delivery_wording": "domestic_shell",
    "minor_brand_price": "offbrand_premium",
    "honest_claim": "capacity_mismatch",
    "pre_ban_export_model": "supply_channel",
    "same_item_other_qty_or_price": "duplicate_line",
}


# -- the line table -------------------------------------------------------------------------------
def build_table(rng: np.random.Generator, flags: pd.DataFrame, n_lines: np.ndarray,
                targets: dict[str, np.ndarray], n_dup: tuple[np.ndarray, np.ndarray],
                n_reuse: int, rows: int | None = None,
                rejects: Callable[[Builder, pd.DataFrame], pd.DataFrame] | None = None,
                cooling_p: float = 0.6) -> tuple[pd.DataFrame, pd.DataFrame, Builder]:
    """Tenders and their lines with every injection applied; labels/look-alikes in the builder.

    ``rows``: trim (or pad) to exactly this many line items (the large CSV).
    """
    t = make_tenders(rng, flags)
    b = Builder(rng, t)
    base_lines(b, n_lines, cooling_p)
    b.frames = [dedupe(b.lines())]
    for name, fn, _ in INJECTIONS:  # per injection kind, vectorised over its targets
        fn(b, targets.get(name, np.array([], dtype=int)))
    lines = dedupe(b.lines())
    b.frames = [lines]
    originals = np.concatenate([sc.duplicates(b, lines, n_dup[0], fraud=True),
                                sc.duplicates(b, lines, n_dup[1], fraud=False)])
    copies = np.arange(lines["uid"].max() + 1, b.next_uid)
    lines = b.lines()
    if rows is not None and len(lines) < rows + n_reuse:
        lines = _pad(b, lines, rows + n_reuse - len(lines))
    lines = sc.assign_serials(b, lines)
    lines = sc.assign_conditions_and_mfg(b, lines)
    b.frames = [lines]
    reused = sc.serial_reuse(b, lines, n_reuse)
    lines = b.lines()
    if rows is not None:
        sources = lines.loc[lines["serials"].isin(reused["serials"]), "uid"].to_numpy()
        lines = _trim(rng, lines, rows, protect=np.concatenate([originals, sources]))
    if rejects is not None:
        lines = pd.concat([lines, rejects(b, lines)], ignore_index=True)
    lines = sc.price_services(b, lines)
    lines = dedupe(lines, exclude=copies)
    t["claim"] = sc.claims_and_rules(b, lines)
    sc.reference_lookalikes(b, lines)
    ok = lines["reject"] != "面议"
    total = lines["quantity"] * lines["unit_price"] * lines["total_factor"] + lines["total_add"]
    lines["total"] = np.where(ok, np.round(total), np.nan)
    lines.loc[~ok, "unit_price"] = np.nan
    return t, lines, b


def _pad(b: Builder, lines: pd.DataFrame, count: int) -> pd.DataFrame:
    """More honest infrastructure lines, spread over random tenders."""
    rng = b.rng
    keys = np.array(list(cat.ITEM_WEIGHTS), dtype=object)
    w = np.array(list(cat.ITEM_WEIGHTS.values()), dtype=float)
    extra = b.make(rng.integers(0, len(b.t), count), rng.choice(keys, size=count, p=w / w.sum()))
    return dedupe(pd.concat([lines, extra], ignore_index=True))


def _trim(rng: np.random.Generator, lines: pd.DataFrame, rows: int,
          protect: np.ndarray) -> pd.DataFrame:
    """Drop random honest base lines until exactly ``rows`` remain."""
    excess = len(lines) - rows
    if excess <= 0:
        return lines
    free = np.flatnonzero((lines["origin"] == "base").to_numpy()
                          & ~np.isin(lines["uid"].to_numpy(), protect))
    if len(free) < excess:  # pragma: no cover - sizes are planned to prevent this
        raise RuntimeError("not enough honest lines to trim the large CSV to size")
    drop = rng.choice(free, size=excess, replace=False)
    return lines.drop(index=lines.index[drop]).reset_index(drop=True)


def label_frames(b: Builder, lines: pd.DataFrame, where: pd.DataFrame) -> tuple[pd.DataFrame,
                                                                                 pd.DataFrame]:
    """labels and look-alikes located by (file, sheet, line_no); ``where`` maps uid to them."""
    loc = where.set_index("uid")
    labels = pd.concat(b.labels, ignore_index=True)
    labels = labels[labels["uid"].isin(loc.index)]
    labels = labels.join(loc, on="uid")
    looks = pd.concat(b.looks, ignore_index=True)
    looks["mechanism"] = looks["kind"].map(LOOKALIKE_OF)
    # A look-alike is one for its own mechanism: it may carry other labels (a minor-brand
    # H100 bought after the ban is still supply_channel), never the one it resembles.
    clash = looks.merge(labels[["uid", "mechanism"]], on=["uid", "mechanism"], how="left",
                        indicator=True)["_merge"].eq("both").to_numpy()
    looks = looks[looks["uid"].isin(loc.index).to_numpy() & ~clash]
    looks = looks.join(loc, on="uid")
    for df in (labels, looks):
        df["_n"] = df["line_no"].astype(int)
    labels = labels.sort_values(["file", "sheet", "_n", "mechanism"], kind="stable")
    looks = looks.sort_values(["file", "sheet", "_n", "kind"], kind="stable")
    labels = labels.drop_duplicates(["file", "sheet", "line_no", "mechanism"])
    looks = looks.drop_duplicates(["file", "sheet", "line_no", "kind"])
    return labels[LABEL_COLUMNS], looks[LOOKALIKE_COLUMNS]


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    path.write_bytes(df.to_csv(index=False, lineterminator="\n").encode("utf-8"))


# -- the corpus ---------------------------------------------------------------------------------
def write_corpus(out: Path, seed: int = 7, tenders: int = 16) -> dict[str, int]:
    """Write ``out/tenders/`` (one file per tender), ``out/labels.csv`` and ``out/lookalikes.csv``.

    Same seed, same bytes. Sample-format files already in ``out/tenders`` are removed first so
    the folder and the labels always match.

    Parameters
    ----------
    out : Path
        Folder to write into (created if missing).
    seed : int
        Seed of the numpy Generator; the only source of randomness.
    tenders : int
        Number of tender files; the 16 shapes of :data:`FORMAT_PLAN` rotate.

    Returns
    -------
    dict
        ``{"files": n, "labels": n, "lookalikes": n}``.
    """
    if tenders < 1:
        raise ValueError("tenders must be at least 1")
    rng = np.random.default_rng(seed)
    out = Path(out)
    folder = out / "tenders"
    _clear(folder)
    plans = [FORMAT_PLAN[i % len(FORMAT_PLAN)].copy() for i in range(tenders)]
    claim_where = np.array([p["claim"] for p in plans], dtype=object)
    mode = np.where(claim_where != "none", "honest", "none").astype(object)
    with_claim = np.flatnonzero(claim_where != "none")
    scale = tenders / 16
    n_infl = min(len(with_claim), max(1, round(INFLATED_CLAIMS * scale)))
    mode[rng.choice(with_claim, size=n_infl, replace=False)] = "inflated"
    flags = pd.DataFrame({
        "sn": [p["sn"] for p in plans], "cond": [p["cond"] for p in plans],
        "cap": [p["cap"] for p in plans], "mfg": [p["mfg"] for p in plans],
        "claim_where": claim_where, "claim_mode": mode,
    })
    n_lines = rng.integers(32, 66, tenders)
    targets: dict[str, np.ndarray] = {}
    for name, _, count in INJECTIONS:
        eligible = np.flatnonzero(flags["mfg"]) if name == "old_manufacture" else np.arange(tenders)
        k = max(1, round(count * scale))
        targets[name] = np.sort(rng.choice(eligible, size=k, replace=k > len(eligible)))
    dup = (np.sort(rng.choice(tenders, size=max(1, round(DUPLICATES * scale)))),
           np.sort(rng.choice(tenders, size=max(1, round(DUPLICATE_LOOKALIKES * scale)))))
    no_price_text = np.array([p["fmt"] == "parquet" for p in plans])
    t, lines, b = build_table(rng, flags, n_lines, targets, dup,
                              max(1, round(SERIAL_REUSE * scale)),
                              rejects=partial(_rejects, no_price_text=no_price_text),
                              cooling_p=0.75)
    styles = [_style(rng, p, t.iloc[i]) for i, p in enumerate(plans)]
    names = [_file_name(i, p, t.iloc[i]) for i, p in enumerate(plans)]
    two_sheet = np.array(["two_sheets" in p.get("layout", "") for p in plans])
    sheet_of = np.array([_single_sheet(p) for p in plans], dtype=object)
    lines = _number(lines, two_sheet, sheet_of)
    where = pd.DataFrame({"uid": lines["uid"], "file": np.array(names, dtype=object)[lines["tender"]],
                          "sheet": lines["sheet"], "line_no": lines["line_no"].astype(str)})
    labels, looks = label_frames(b, lines, where)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (_, group) in enumerate(lines.groupby("tender", sort=True)):  # per file
        path = folder / names[i]
        path.parent.mkdir(parents=True, exist_ok=True)
        _render(path, group, t.iloc[i], styles[i], plans[i], rng)
    _write_csv(labels, out / "labels.csv")
    _write_csv(looks, out / "lookalikes.csv")
    # the first CSV tender again as Word, PDF, HTML and OCDS (beside the corpus: a tender
    # scored twice in one batch would be its own duplicate)
    _clear(out / FORMATS)
    first_csv = next((folder / n for n in names if n.endswith(".csv") and "/" not in n), None)
    if first_csv is not None:
        write_documents(first_csv, out / FORMATS)
    return {"files": tenders, "labels": len(labels), "lookalikes": len(looks)}


def _clear(folder: Path) -> None:
    if not folder.exists():
        return
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in SAMPLE_SUFFIXES:
            p.unlink()
    for p in sorted(folder.rglob("*"), reverse=True):
        if p.is_dir() and not any(p.iterdir()):
            shutil.rmtree(p)


def _rejects(b: Builder, lines: pd.DataFrame, no_price_text: np.ndarray) -> pd.DataFrame:
    """0-2 reject rows per tender (面议 price, zero quantity); tender 0 gets one of each."""
    rng = b.rng
    n = len(b.t)
    count = rng.integers(0, 3, n)
    count[0] = 2
    tender = np.repeat(np.arange(n), count)
    which = rng.integers(0, len(cat.REJECT_ITEMS), len(tender))
    first = np.flatnonzero(tender == 0)
    which[first[:2]] = [0, 1]
    df = b.make(tender, np.full(len(tender), "reject", dtype=object), origin="reject")
    items = np.array([r[0] for r in cat.REJECT_ITEMS], dtype=object)
    units = np.array([r[1] for r in cat.REJECT_ITEMS], dtype=object)
    how = np.array([r[2] for r in cat.REJECT_ITEMS], dtype=object)[which]
    how = np.where(no_price_text[tender], "0qty", how)  # Parquet money columns hold numbers
    df["item_name"] = items[which]
    df["unit"] = units[which]
    df["reject"] = how
    df["quantity"] = np.where(how == "0qty", 0, 1)
    df["unit_price"] = np.where(how == "0qty", 5000.0, np.nan)
    df["order"] = rng.uniform(0.2, 0.99, len(df))
    return df


def _number(lines: pd.DataFrame, two_sheet: np.ndarray, sheet_of: np.ndarray) -> pd.DataFrame:
    """Sort into file order and write each line's 序号 (per sheet in two-sheet workbooks)."""
    lines = lines.copy()
    lines["_g"] = (lines["group"] == "infra").astype(int)
    lines = lines.sort_values(["tender", "_g", "order", "uid"], kind="stable").reset_index(drop=True)
    tix = lines["tender"].to_numpy()
    split = two_sheet[tix]
    lines["sheet"] = np.where(split, np.where(lines["_g"] == 0, "GPU服务器", "配套设施"),
                              sheet_of[tix])
    lines["line_no"] = lines.groupby(["tender", "sheet"], sort=False).cumcount() + 1
    return lines.drop(columns="_g")


def _single_sheet(plan: Plan) -> str:
    if plan["fmt"] != "xlsx":
        return ""
    return "采购清单" if plan.get("layout") == "notes_sheet" else "Sheet1" \
        if plan.get("lang") == "en" else "分项报价表"


def _file_name(i: int, plan: Plan, tender: pd.Series) -> str:
    ext = _EXT[plan["fmt"]]
    name = (f"T{i + 1:02d}_{tender['city']}智算中心采购清单.{ext}" if i % 3 == 1
            else f"T{i + 1:02d}_{tender['tender_id']}.{ext}")
    return f"补充材料/{name}" if i % 5 == 4 else name


def _style(rng: np.random.Generator, plan: Plan, tender: pd.Series) -> Style:
    """Pick headers and the optional columns of one file from its plan."""
    lang = plan["lang"]
    table = EN_HEADERS if lang == "en" else ZH_HEADERS
    cols = ["line_no", *plan.get("extra", ()), "item", "brand", "model", "spec", "qty", "unit",
            "price", "total"]
    if plan["cap"]:
        cols.append("capacity")
    if plan["cond"]:
        cols.append("condition")
    if plan["sn"]:
        cols.append("serial")
    if plan["mfg"]:
        cols.append("mfg")
    cols += ["supplier", "date"]
    if plan["claim"] == "column":
        cols.append("claim")
    cols = [c for c in FIELD_ORDER if c in cols]
    headers = {}
    for c in cols:
        options = table[c]
        if plan["money"] == "wan_col" and c in WAN_HEADERS:
            options = WAN_HEADERS[c]
        headers[c] = options[int(rng.integers(0, len(options)))]
    cap_unit = plan.get("cap_unit", "kW")
    if cap_unit == "MW" and "capacity" in headers:
        headers["capacity"] = MW_HEADER
    if plan["fmt"] == "json" and lang == "en":
        headers = {c: JSON_KEYS[c] for c in cols}
    word = ("合计", "合 计", "总计")[int(rng.integers(0, 3))]
    return Style(
        fmt=plan["fmt"], encoding=plan.get("encoding", "utf-8"), lang=lang,
        money=plan["money"], date=plan["date"], layout=plan.get("layout", "flat"),
        cap_unit=cap_unit, columns=tuple(cols), headers=headers,
        subtotals=plan.get("subtotals", bool(rng.random() < 0.7)), total_word=word,
        total_in_no=bool(rng.random() < 0.4),
        blank_rows=plan.get("blank", bool(rng.random() < 0.6)),
        note=cat.NOTES[int(rng.integers(0, len(cat.NOTES)))]
        if plan.get("note", rng.random() < 0.7) else "",
        lineterminator="\r\n" if plan.get("crlf") else "\n",
    )


def _title(tender: pd.Series, style: Style, with_claim: bool) -> list[str]:
    rows = [f"{tender['project_name']}分项报价表", f"项目名称：{tender['project_name']}",
            f"项目编号：{tender['tender_id']}"]
    if with_claim and not np.isnan(tender["claim"]):
        rows.append(f"算力规模：≥{tender['claim']:g} PFLOPS (FP16)")
    if style.money == "wan_col":
        rows.append("金额单位：万元")
    return rows


def _render(path: Path, lines: pd.DataFrame, tender: pd.Series, style: Style, plan: Plan,
            rng: np.random.Generator) -> None:
    disp = display_table(lines, tender, style, rng)
    total_cny = lines["total"].fillna(0.0)
    if style.fmt in ("csv", "tsv"):
        write_text(path, with_non_items(disp, lines["group"], style, total_cny), style)
    elif style.fmt == "parquet":
        # Typed columns: the total's label goes into the text item column, no note row.
        plain = Style(**{**style.__dict__, "subtotals": False, "note": "", "total_in_no": False})
        table = with_non_items(disp, lines["group"], plain, total_cny, note=False)
        write_parquet(path, table, style)
    elif style.fmt in ("json", "jsonl"):
        write_json(path, disp, tender, style)
    else:
        claim_title = plan["claim"] == "title"
        sheets: list[tuple[str, pd.DataFrame | list[str], list[str]]] = []
        notes: tuple[str, list[str], list[str]] = (
            "说明", ["一、本表为分项报价明细，序号按工作表分别编号。",
                     "二、金额单位见表头；含税价已含13%增值税。",
                     "三、GPU服务器按整机交付，配套设施另行验收。"], [])
        if style.layout == "notes_sheet":
            sheets.append(notes)
        if "two_sheets" in style.layout:
            for k, (sheet, sub) in enumerate(lines.groupby("sheet", sort=False)):
                body = with_non_items(disp.loc[sub.index], sub["group"], style,
                                      total_cny.loc[sub.index], note=(k == 1))
                sheets.append((str(sheet), body, _title(tender, style, claim_title and k == 0)))
        else:
            body = with_non_items(disp, lines["group"], style, total_cny)
            sheets.append((lines["sheet"].iloc[0], body, _title(tender, style, claim_title)))
        if style.layout == "two_sheets_notes":
            sheets.append(notes)
        write_xlsx(path, sheets, style)


# -- the large CSV -------------------------------------------------------------------------------
LARGE_NAME = "tenders_large.csv"
LARGE_HEADERS = {
    "tender_id": "项目编号", "project": "项目名称", "line_no": "序号", "item": "货物名称",
    "brand": "品牌", "model": "规格型号", "spec": "技术参数", "qty": "数量", "unit": "单位",
    "price": "单价(元)", "total": "总价(元)", "capacity": "制冷量（kW）", "condition": "新旧程度",
    "serial": "序列号", "mfg": "生产日期", "supplier": "供应商", "date": "合同日期",
    "claim": "算力(PFLOPS)",
}


def write_large_csv(out: Path, rows: int, seed: int = 7) -> Path:
    """Write ``out/tenders/tenders_large.csv`` with exactly ``rows`` line items, and labels.

    Many tenders (a 项目编号 column), one file, 序号 running through the file. The same
    mechanisms are injected at low per-tender rates; ``out/labels.csv`` and
    ``out/lookalikes.csv`` sit beside the ``tenders`` folder as in the corpus.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    rng = np.random.default_rng(seed)
    out = Path(out)
    n = max(1, int(np.ceil(rows / 50)))
    inject = rows >= LARGE_MIN_INJECT
    u = rng.random(n)
    flags = pd.DataFrame({"sn": True, "cond": True, "cap": True, "mfg": True,
                          "claim_where": "column",
                          "claim_mode": np.where(u < 0.06, "inflated",
                                                 np.where(u < 0.36, "honest", "none"))},
                         index=np.arange(n))
    n_lines = rng.integers(30, 80, n)
    targets: dict[str, np.ndarray] = {}
    for name, _, count in INJECTIONS:
        rate = count * LARGE_RATE if inject else 0.0
        targets[name] = np.flatnonzero(rng.random(n) < rate)
    dup = (np.flatnonzero(rng.random(n) < DUPLICATES * LARGE_RATE * inject),
           np.flatnonzero(rng.random(n) < DUPLICATE_LOOKALIKES * LARGE_RATE * inject))
    n_reuse = round(SERIAL_REUSE * LARGE_RATE * n) if inject else 0
    t, lines, b = build_table(rng, flags, n_lines, targets, dup, n_reuse, rows=rows,
                              cooling_p=0.6)
    lines = lines.sort_values(["tender", "group", "order", "uid"], kind="stable")
    lines = lines.reset_index(drop=True)
    lines["line_no"] = np.arange(1, len(lines) + 1)
    lines["sheet"] = ""
    folder = out / "tenders"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LARGE_NAME
    tix = lines["tender"].to_numpy()
    day = t["day"].to_numpy()[tix].astype(float)
    table = pd.DataFrame({
        "tender_id": t["tender_id"].to_numpy()[tix],
        "project": t["project_name"].to_numpy()[tix],
        "line_no": lines["line_no"], "item": lines["item_name"], "brand": lines["brand"],
        "model": lines["model"], "spec": lines["spec"], "qty": lines["quantity"],
        "unit": lines["unit"], "price": lines["unit_price"].round().astype("Int64"),
        "total": lines["total"].round().astype("Int64"),
        "capacity": lines["capacity_kw"].where(~lines["cap_in_spec"].astype(bool)).astype("Int64"),
        "condition": lines["condition"], "serial": lines["serials"],
        "mfg": _iso(lines["mfg_day"].to_numpy()), "supplier": t["supplier"].to_numpy()[tix],
        "date": _iso(day), "claim": t["claim"].to_numpy()[tix],
    })
    table = table.rename(columns=LARGE_HEADERS)
    _fast_csv(table, path)
    where = pd.DataFrame({"uid": lines["uid"], "file": LARGE_NAME, "sheet": "",
                          "line_no": lines["line_no"].astype(str)})
    labels, looks = label_frames(b, lines, where)
    _write_csv(labels, out / "labels.csv")
    _write_csv(looks, out / "lookalikes.csv")
    return path


def _fast_csv(table: pd.DataFrame, path: Path) -> None:
    """Arrow's CSV writer: the same CSV dialect as pandas (quotes only where needed), 10x faster."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    for c in table.columns:
        if table[c].dtype == object:
            table[c] = table[c].astype(str)
    at = pa.Table.from_pandas(table, preserve_index=False).replace_schema_metadata(None)
    pacsv.write_csv(at, path, pacsv.WriteOptions(quoting_style="needed"))


def _iso(days: np.ndarray) -> np.ndarray:
    d = np.asarray(days, dtype=float)
    txt = (np.datetime64("1970-01-01", "D") + np.nan_to_num(d).astype(np.int64)).astype(str)
    return np.where(np.isnan(d), "", txt).astype(object)
