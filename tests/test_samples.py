"""The labelled sample generator: determinism, shapes, and labels that mean what they say.

The raw files are read here with pandas/openpyxl directly (not with iccaudit.read or iccaudit.normalise), and the
labels are checked against the cells: every line that does not reconcile is labelled
bill_arithmetic and no other, every repeated line is labelled duplicate_line, and so on.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from iccaudit.core.schema import MECHANISMS
from iccaudit.samples import write_corpus, write_large_csv
from iccaudit.samples.render import EN_HEADERS, JSON_KEYS, MW_HEADER, WAN_HEADERS, ZH_HEADERS

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "data" / "samples"
LINE_NO_HEADERS = {"序号", "No.", "line_no"}
EXPORT_TOKEN = re.compile(r"H100|H800|A800|RTX ?4090")
BAN = dt.date(2023, 10, 25)

# header text -> field, from the generator's own header vocabulary
FIELD_OF: dict[str, str] = {}
for table in (ZH_HEADERS, EN_HEADERS, WAN_HEADERS):
    for f, names in table.items():
        for h in names:
            FIELD_OF[h] = f
FIELD_OF.update({v: k for k, v in JSON_KEYS.items()})
FIELD_OF[MW_HEADER] = "capacity"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    info = write_corpus(out, seed=7, tenders=16)
    assert info["files"] == 16
    return out


@pytest.fixture(scope="module")
def labels(corpus) -> pd.DataFrame:
    return pd.read_csv(corpus / "labels.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def looks(corpus) -> pd.DataFrame:
    return pd.read_csv(corpus / "lookalikes.csv", dtype=str, keep_default_na=False)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- raw reading (independent of iccaudit.read or iccaudit.normalise) ---------------------------------------------
def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise AssertionError(f"{path}: undecodable")


def read_raw(path: Path) -> dict[str, pd.DataFrame]:
    """sheet ('' outside Excel) -> the table under its header row, cells as written."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        import io

        sep = "\t" if suffix == ".tsv" else ","
        df = pd.read_csv(io.StringIO(_read_text(path)), sep=sep, dtype=str,
                         keep_default_na=False)
        return {"": df}
    if suffix == ".parquet":
        return {"": pd.read_parquet(path)}
    if suffix == ".json":
        return {"": pd.DataFrame(json.loads(path.read_text("utf-8"))["items"])}
    if suffix == ".jsonl":
        rows = [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]
        return {"": pd.DataFrame(rows)}
    wb = openpyxl.load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        rows = list(ws.iter_rows(values_only=True))
        head = [i for i, r in enumerate(rows) if r and r[0] in LINE_NO_HEADERS]
        if head:
            h = head[0]
            out[ws.title] = pd.DataFrame(rows[h + 1:], columns=list(rows[h]))
    return out


def _text(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _money(v, wan: bool) -> float:
    t = _text(v).replace("¥", "").replace(",", "")
    if t == "" or t == "面议":
        return np.nan
    scale = 1e4 if wan else 1.0
    if t.endswith("万"):
        t, scale = t[:-1], 1e4
    return float(t) * scale


def _date(v) -> dt.date | None:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    t = _text(v)
    m = re.match(r"(\d{4})\D(\d{1,2})\D(\d{1,2})", t)
    return dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None


def items(corpus: Path) -> pd.DataFrame:
    """Every numbered row of every file, with the fields the checks need."""
    frames = []
    for path in sorted((corpus / "tenders").rglob("*")):
        if not path.is_file():
            continue
        for sheet, df in read_raw(path).items():
            fields = {c: FIELD_OF.get(str(c)) for c in df.columns}
            assert "line_no" in fields.values(), f"{path}: no 序号 column"
            g = df.rename(columns={c: f for c, f in fields.items() if f})
            wan = any("万元" in str(c) for c in df.columns)
            mw = any(str(c) == MW_HEADER for c in df.columns)
            ln = g["line_no"].map(_text)
            g = g[ln.str.fullmatch(r"\d+")]
            rec = pd.DataFrame({
                "file": path.relative_to(corpus / "tenders").as_posix(),
                "sheet": sheet,
                "line_no": g["line_no"].map(_text),
                "item": g["item"].map(_text),
                "model": g["model"].map(_text),
                "spec": g["spec"].map(_text),
                "qty": pd.to_numeric(g["qty"].map(_text), errors="coerce"),
                "price": [_money(v, wan) for v in g["price"]],
                "total": [_money(v, wan) for v in g["total"]],
                "date": g["date"].map(_date),
                "serials": (g["serial"].map(_text) if "serial" in g
                            else pd.Series("", index=g.index)),
                "capacity_kw": (pd.to_numeric(g["capacity"].map(_text), errors="coerce")
                                * (1000 if mw else 1)) if "capacity" in g else np.nan,
            })
            frames.append(rec)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def raw(corpus) -> pd.DataFrame:
    return items(corpus)


def _labelled(raw: pd.DataFrame, labels: pd.DataFrame, mechanism: str) -> pd.Series:
    keys = set(map(tuple, labels.loc[labels["mechanism"] == mechanism,
                                     ["file", "sheet", "line_no"]].to_numpy()))
    return pd.Series([k in keys for k in map(tuple, raw[["file", "sheet", "line_no"]].to_numpy())],
                     index=raw.index)


# -- determinism ----------------------------------------------------------------------------
def test_same_seed_gives_identical_bytes(corpus, tmp_path):
    write_corpus(tmp_path, seed=7, tenders=16)
    assert _files(tmp_path) == _files(corpus)


def test_other_seed_gives_other_files(corpus, tmp_path):
    write_corpus(tmp_path, seed=8, tenders=16)
    a, b = _files(tmp_path / "tenders"), _files(corpus / "tenders")
    assert (tmp_path / "labels.csv").read_bytes() != (corpus / "labels.csv").read_bytes()
    assert list(a.values()) != list(b.values())


def test_committed_corpus_is_seed_7(corpus):
    """data/samples must be exactly what `iccaudit samples --out data/samples --seed 7` gives."""
    committed = {k: v for k, v in _files(COMMITTED).items() if k != "README.md"}
    assert committed == _files(corpus)


# -- shapes -----------------------------------------------------------------------------------
def test_every_format_and_shape_is_present(corpus):
    files = sorted(p for p in (corpus / "tenders").rglob("*") if p.is_file())
    assert {p.suffix for p in files} == {".csv", ".tsv", ".xlsx", ".parquet", ".json", ".jsonl"}
    csvs = [p.read_bytes() for p in files if p.suffix == ".csv"]
    assert any(b.startswith(b"\xef\xbb\xbf") for b in csvs)  # UTF-8 with BOM
    gb = [b for b in csvs if not b.startswith(b"\xef\xbb\xbf")]
    assert any(_fails_utf8(b) for b in gb)  # GB18030
    assert any(not _fails_utf8(b) for b in gb)  # plain UTF-8
    texts = [_read_text(p) for p in files if p.suffix in (".csv", ".tsv")]
    assert any("¥" in t for t in texts) and any(re.search(r"\d万", t) for t in texts)
    assert any("单价（万元）" in t or "含税单价（万元）" in t for t in texts)
    assert any("面议" in t for t in texts)
    assert any(re.search(r"(小计|合计|合 计|总计)", t) for t in texts)
    assert any("备注" in t or "说明：" in t for t in texts)
    assert any(re.search(r"\n,+\r?\n", t) for t in texts)  # a blank row
    books = [openpyxl.load_workbook(p) for p in files if p.suffix == ".xlsx"]
    assert all(ws.merged_cells.ranges for wb in books for ws in wb.worksheets
               if ws.title != "说明")
    assert any(wb.sheetnames[:2] == ["GPU服务器", "配套设施"] for wb in books)
    assert any("说明" in wb.sheetnames for wb in books)
    titles = [ws.cell(r, 1).value or "" for wb in books for ws in wb.worksheets
              for r in range(1, 6)]
    assert any(str(t).startswith("项目名称：") for t in titles)
    assert any(re.match(r"算力规模：≥[\d.]+ PFLOPS \(FP16\)", str(t)) for t in titles)
    headers = set()
    for p in files:
        for df in read_raw(p).values():
            headers |= {str(c) for c in df.columns}
    for h in ("货物名称", "产品名称", "品目", "标的名称", "品牌", "制造商", "规格型号", "型号",
              "技术参数", "规格参数", "含税单价", "供应商", "中标人", "新旧程度", "成色",
              "序列号", "SN", "No.", "Item Name", MW_HEADER):
        assert h in headers, h


def _fails_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_rows_are_items_or_recognisable(raw):
    assert (raw["qty"] == 0).any()  # a zero-quantity reject row
    assert raw["price"].isna().any()  # a 面议 reject row
    ok = raw[(raw["qty"] > 0) & raw["price"].notna()]
    assert 16 * 30 <= len(ok) <= 16 * 80
    per_file = ok.groupby("file").size()
    assert per_file.between(30, 80).all(), per_file.to_dict()
    assert not raw.duplicated(["file", "sheet", "line_no"]).any()


# -- labels -----------------------------------------------------------------------------------
def test_labels_reference_existing_rows(labels, looks, raw):
    keys = set(map(tuple, raw[["file", "sheet", "line_no"]].to_numpy()))
    for df in (labels, looks):
        missing = [k for k in map(tuple, df[["file", "sheet", "line_no"]].to_numpy())
                   if k not in keys]
        assert not missing, missing[:5]
    assert list(labels.columns) == ["file", "sheet", "line_no", "mechanism", "novel", "note"]
    xlsx = labels["file"].str.endswith(".xlsx")
    assert (labels.loc[xlsx, "sheet"] != "").all() and (labels.loc[~xlsx, "sheet"] == "").all()
    assert not labels.duplicated(["file", "sheet", "line_no", "mechanism"]).any()
    # labels never point at reject rows
    bad = raw[(raw["qty"] <= 0) | raw["price"].isna()]
    bad_keys = set(map(tuple, bad[["file", "sheet", "line_no"]].to_numpy()))
    assert not [k for k in map(tuple, labels[["file", "sheet", "line_no"]].to_numpy())
                if k in bad_keys]


def test_every_mechanism_at_least_three_times(labels):
    counts = labels["mechanism"].value_counts()
    for m in MECHANISMS:
        if m != "extendable":
            assert counts.get(m, 0) >= 3, (m, counts.to_dict())
    assert "extendable" not in counts
    novel = labels[labels["novel"] == "1"]
    assert len(novel) >= 3 and (novel["mechanism"] == "price_outlier").all()
    # several files carry schemes, not one
    assert labels.loc[labels["mechanism"] != "supply_channel", "file"].nunique() >= 8


def test_lookalikes_are_present_and_unlabelled(labels, looks):
    kinds = looks["kind"].value_counts()
    for k in ("assembly_discount", "cooling_at_reference", "retrofit_at_reference",
              "declared_used_price", "domestic_delivery_wording", "minor_brand_price",
              "honest_claim", "pre_ban_export_model", "same_item_other_qty_or_price"):
        assert kinds.get(k, 0) >= 1, (k, kinds.to_dict())
    both = looks.merge(labels, on=["file", "sheet", "line_no", "mechanism"])
    assert both.empty, both.head()


def test_bill_arithmetic_labels_are_exactly_the_lines_that_do_not_add_up(raw, labels):
    ok = raw[(raw["qty"] > 0) & raw["price"].notna() & raw["total"].notna()]
    off = (ok["qty"] * ok["price"] - ok["total"]).abs() > 1.0
    lab = _labelled(ok, labels, "bill_arithmetic")
    assert off.sum() >= 3
    assert (off == lab).all(), ok[off != lab].head()


def test_duplicate_labels_are_exactly_the_repeated_lines(raw, labels):
    ok = raw[(raw["qty"] > 0) & raw["price"].notna()].copy()
    ok["_n"] = ok["line_no"].astype(int)
    ok = ok.sort_values(["file", "sheet", "_n"])
    rep = ok.duplicated(["file", "sheet", "item", "model", "qty", "price"], keep="first")
    lab = _labelled(ok, labels, "duplicate_line")
    assert rep.sum() >= 3
    assert (rep == lab).all()
    # and the look-alike: the same item again with another quantity or price
    same = ok.duplicated(["file", "sheet", "item", "model"], keep="first") & ~rep
    assert same.sum() >= 3


def test_supply_channel_labels_every_controlled_line_after_the_ban(raw, labels):
    ok = raw[(raw["qty"] > 0) & raw["price"].notna()]
    text = ok["item"] + " " + ok["model"]
    ctrl = text.str.contains(EXPORT_TOKEN) & ok["date"].map(lambda d: d is not None and d > BAN)
    lab = _labelled(ok, labels, "supply_channel")
    assert ctrl.sum() >= 3
    assert (ctrl == lab).all(), ok[ctrl != lab].head()
    before = text.str.contains(EXPORT_TOKEN) & ok["date"].map(lambda d: d is not None and d < BAN)
    assert before.sum() >= 1  # pre-ban purchases of the same models stay unlabelled


def test_liquid_cooling_labels_follow_the_per_kw_price(raw, labels):
    ok = raw[(raw["qty"] > 0) & raw["price"].notna()]
    cool = ok[ok["item"].str.contains("冷板|浸没") & ~ok["item"].str.contains("改造")].copy()
    spec_kw = cool["spec"].str.extract(r"([\d.]+)\s*(kW|KW|MW)")
    from_spec = pd.to_numeric(spec_kw[0]) * np.where(spec_kw[1] == "MW", 1000, 1)
    cool["kw"] = cool["capacity_kw"].fillna(from_spec)
    assert cool["kw"].notna().all()
    assert (spec_kw[1] == "MW").any() and cool["capacity_kw"].notna().any()
    immersion = cool["item"].str.contains("浸没")
    rate = cool["price"] * cool["qty"] / cool["kw"]
    ref_high = np.where(immersion, 10_000, 6_000)
    high = rate > 1.5 * ref_high
    lab = _labelled(cool, labels, "liquid_cooling_markup")
    assert (high == lab).all()
    assert high.sum() >= 3 and (~high).sum() >= 3
    assert (rate[~high] / ref_high[~high] > 0.8).all()  # honest lines sit at the reference
    retro = ok[ok["item"].str.contains("改造")]
    assert ((retro["price"] > 150_000) == _labelled(retro, labels, "liquid_cooling_markup")).all()


def test_reused_serials_are_labelled_on_the_later_tender(raw, labels):
    ok = raw[(raw["qty"] > 0) & raw["price"].notna()]
    sn = ok.assign(sn=ok["serials"].str.split(r"[;,、 ]")).explode("sn")
    sn = sn[sn["sn"].fillna("") != ""]
    seen = sn.groupby("sn")["file"].nunique()
    assert seen.max() <= 2
    reused = sn[sn["sn"].isin(seen[seen > 1].index)]
    assert reused["file"].nunique() >= 2
    used = labels[labels["mechanism"] == "used_as_new"]
    used_keys = set(map(tuple, used[["file", "sheet", "line_no"]].to_numpy()))
    for _, grp in reused.groupby("sn"):
        first, later = grp.sort_values("date").iloc[0], grp.sort_values("date").iloc[-1]
        assert first["date"] < later["date"]
        assert (later["file"], later["sheet"], later["line_no"]) in used_keys
        assert (first["file"], first["sheet"], first["line_no"]) not in used_keys


def test_capacity_claims(labels, looks):
    mism = labels[labels["mechanism"] == "capacity_mismatch"]
    honest = looks[looks["kind"] == "honest_claim"]
    assert mism["file"].nunique() >= 2 and honest["file"].nunique() >= 2
    assert not set(mism["file"]) & set(honest["file"])


# -- the large CSV --------------------------------------------------------------------------------
def test_large_csv_has_exact_rows_and_consistent_labels(tmp_path):
    path = write_large_csv(tmp_path, rows=20_000, seed=3)
    assert path == tmp_path / "tenders" / "tenders_large.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(df) == 20_000
    assert df["项目编号"].nunique() > 100
    assert df["序号"].is_unique
    lab = pd.read_csv(tmp_path / "labels.csv", dtype=str, keep_default_na=False)
    assert set(lab["line_no"]) <= set(df["序号"])
    assert (lab["file"] == "tenders_large.csv").all()
    for m in MECHANISMS:
        if m != "extendable":
            assert (lab["mechanism"] == m).sum() >= 3, m
    q = pd.to_numeric(df["数量"])
    p = pd.to_numeric(df["单价(元)"])
    t = pd.to_numeric(df["总价(元)"])
    off = set(df.loc[(q * p - t).abs() > 1, "序号"])
    assert off == set(lab.loc[lab["mechanism"] == "bill_arithmetic", "line_no"])


def test_large_csv_is_deterministic_and_small_sizes_work(tmp_path):
    a = write_large_csv(tmp_path / "a", rows=600, seed=5).read_bytes()
    b = write_large_csv(tmp_path / "b", rows=600, seed=5).read_bytes()
    assert a == b
    tiny = write_large_csv(tmp_path / "c", rows=7, seed=5)
    assert len(pd.read_csv(tiny)) == 7
