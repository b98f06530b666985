"""The line table of a labelled corpus: tenders, their line items, injected schemes, labels.

Everything is built set-at-a-time with numpy/pandas over all tenders at once; loops run over
catalogue kinds or injection kinds, never over rows. The same code makes the 16-file corpus
(an exact injection schedule, so every mechanism and look-alike is present) and the large CSV
(injections at low rates).

Internal line columns (one row per line item or reject row):
``uid`` stable id; ``tender``; ``kind`` (server, domestic, card, head, module, cold_plate,
immersion, retrofit, a catalogue item key, a service key, reject); ``group`` (gpu/infra: the
sheet of two-sheet workbooks); ``gpu`` (accelerator key or ""); ``cards`` per unit; the
visible fields; ``cap_in_spec``; ``total_factor``/``total_add`` (a bill_arithmetic error);
``order`` (position inside the group).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from iccaudit.samples import catalogue as cat

_EPOCH = np.datetime64("1970-01-01", "D")
GPU_KINDS = ("server", "domestic", "card", "module")
EQUIPMENT_KINDS = ("server", "domestic", "card", "module", "head")


def _days(date: dt.date | str) -> int:
    return int((np.datetime64(str(date), "D") - _EPOCH).astype(int))


def _pick(rng: np.random.Generator, options: Collection[object], n: int) -> np.ndarray:
    arr = np.empty(len(options), dtype=object)
    arr[:] = list(options)
    return arr[rng.integers(0, len(options), n)]


def _round_price(p: npt.ArrayLike) -> np.ndarray:
    """Quotes are whole yuan; large ones whole hundreds (so 万元 with 4 decimals is exact)."""
    p = np.asarray(p, dtype=float)
    return np.where(p >= 10000, np.round(p / 100) * 100, np.round(p))


def curve(gpus: np.ndarray, days: np.ndarray,
          which: Literal["anchors", "card_anchors"] = "anchors") -> np.ndarray:
    """Reference price of each accelerator key on each day (interpolated between anchors)."""
    out = np.full(len(gpus), np.nan)
    for key, info in cat.GPUS.items():  # per model, not per row
        m = gpus == key
        anchors = info[which]
        if not m.any() or not anchors:
            continue
        xs = np.array([_days(d) for d, _ in anchors], dtype=float)
        ys = np.array([p for _, p in anchors], dtype=float)
        out[m] = np.interp(days[m], xs, ys)
    return out


def _noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    return np.exp(np.clip(rng.normal(0.0, sigma, n), -2.5 * sigma, 2.5 * sigma))


def make_tenders(rng: np.random.Generator, flags: pd.DataFrame) -> pd.DataFrame:
    """One row per tender: id, project, date, supplier, accelerators bought, file flags.

    ``flags`` has one row per tender: sn, cond, cap, mfg (bool: optional columns of its file),
    claim_where (none/column/title) and claim_mode (none/honest/inflated).
    """
    n = len(flags)
    start, end = _days(cat.START), _days(cat.END)
    days = rng.integers(start, end + 1, n)
    ban = _days(cat.BAN_DATE)
    days = np.where(days == ban, ban + 1, days)  # no tender on the ambiguous day itself
    # Primary NVIDIA model: what was on sale, with the ban shifting the mix toward H20/L20.
    keys = np.array(cat.NVIDIA_SERVER_GPUS, dtype=object)
    pre = np.array([0.30, 0.25, 0.25, 0.0, 0.0, 0.20])
    post = np.array([0.22, 0.12, 0.10, 0.26, 0.16, 0.14])
    w = np.where((days > ban)[:, None], post[None, :], pre[None, :])
    w = w * _on_sale_matrix(keys, days)
    w = w / w.sum(axis=1, keepdims=True)
    u = rng.random(n)
    gpu = keys[(u[:, None] > np.cumsum(w, axis=1)).sum(axis=1).clip(0, len(keys) - 1)]
    domestic = np.where(rng.random(n) < 0.45, _pick(rng, cat.DOMESTIC_GPUS, n), "")
    card_keys = np.array(cat.CARD_GPUS, dtype=object)
    card = _pick(rng, card_keys, n)
    card_ok = _map(card, {k: _days(v["from"]) for k, v in cat.GPUS.items()}) <= days
    card = np.where((rng.random(n) < 0.35) & card_ok, card, "")
    brand = _pick(rng, cat.MAINSTREAM_BRANDS, n)
    series_i = rng.integers(0, 2, n)
    series = _map(brand + "|" + series_i.astype(str),
                  {f"{b}|{i}": s for b, ss in cat.MAINSTREAM.items() for i, s in enumerate(ss)})
    city = _pick(rng, cat.CITIES, n)
    # Every template starts with the city, so the name is city + the template's tail.
    templ = _pick(rng, [tp.removeprefix("{city}") for tp in cat.PROJECT_TEMPLATES], n)
    year = (_EPOCH + days).astype("datetime64[Y]").astype(int) + 1970
    num = rng.integers(100, 9999, n)
    style = rng.integers(0, 3, n)
    ids = pd.Series(num).astype(str).str.zfill(4)
    yr = pd.Series(year).astype(str)
    tender_id = np.where(style == 0, "ZSZX-" + yr + "-" + ids,
                         np.where(style == 1, "GXTC" + yr + "-G1-" + ids,
                                  "SZZB-" + yr + ids))
    t = pd.DataFrame({
        "tender": np.arange(n),
        "tender_id": tender_id,
        "project_name": city + templ,
        "city": city,
        "day": days,
        "date": (_EPOCH + days).astype("datetime64[D]"),
        "supplier": _pick(rng, cat.SUPPLIERS, n),
        "gpu": gpu,
        "domestic": domestic,
        "card_gpu": card,
        "brand": brand,
        "series": series,
        "has_sn": flags["sn"].to_numpy(bool),
        "has_cond": flags["cond"].to_numpy(bool),
        "has_cap": flags["cap"].to_numpy(bool),
        "has_mfg": flags["mfg"].to_numpy(bool),
        "claim_where": flags["claim_where"].to_numpy(object),
        "claim_mode": flags["claim_mode"].to_numpy(object),
    })
    # Tender ids must be unique: a repeat gets the tender number appended.
    dup = t["tender_id"].duplicated()
    t.loc[dup, "tender_id"] = t.loc[dup, "tender_id"] + "-" + t.loc[dup, "tender"].astype(str)
    return t


def _capacity_text(rng: np.random.Generator, kw: np.ndarray) -> np.ndarray:
    """Capacity written into spec text: "制冷量800kW", "0.8MW" and friends."""
    n = len(kw)
    use_mw = rng.random(n) < 0.35
    templ = np.where(use_mw, _pick(rng, cat.CAPACITY_MW_TEXT, n),
                     _pick(rng, cat.CAPACITY_KW_TEXT, n))
    kw_s = pd.Series(kw.astype(int)).astype(str)
    mw_s = pd.Series(np.round(kw / 1000.0, 3)).astype(str)
    t = cast("pd.Series[str]", pd.Series(templ))  # templates: text
    out = t.str.split("{").str[0] + np.where(use_mw, mw_s, kw_s) + t.str.split("}").str[1]
    return out.to_numpy(object)


def _map(values: npt.ArrayLike, table: Mapping[str, object]) -> np.ndarray:
    """Vectorised dictionary lookup (pandas hash join), as an object array."""
    return pd.Series(np.asarray(values, dtype=object)).map(table).to_numpy(dtype=object)


def _on_sale_matrix(keys: np.ndarray, days: np.ndarray) -> np.ndarray:
    froms = np.array([_days(cat.GPUS[k]["from"]) for k in keys])
    return days[:, None] >= froms[None, :]


class Builder:
    """Accumulates lines, labels and look-alikes of one corpus; hands out stable uids."""

    def __init__(self, rng: np.random.Generator, tenders: pd.DataFrame) -> None:
        self.rng = rng
        self.t = tenders
        self.frames: list[pd.DataFrame] = []
        self.labels: list[pd.DataFrame] = []
        self.looks: list[pd.DataFrame] = []
        self.next_uid = 0
        # Tender columns as numpy arrays once (arrow-backed strings are slow to index).
        self.cols = {c: tenders[c].to_numpy(dtype=object if tenders[c].dtype != bool else bool)
                     for c in ("gpu", "domestic", "card_gpu", "brand", "series", "has_cap")}
        self.cols["day"] = tenders["day"].to_numpy()

    # -- lines ---------------------------------------------------------------------------
    def make(self, tender: np.ndarray, kind: np.ndarray, gpu: np.ndarray | None = None,
             origin: str = "base") -> pd.DataFrame:
        """New lines of the given kinds in the given tenders, priced at the reference."""
        rng = self.rng
        tender = np.asarray(tender, dtype=int)
        kind = np.asarray(kind, dtype=object)
        n = len(tender)
        tt = {c: a[tender] for c, a in self.cols.items()}
        obj = ("kind", "group", "gpu", "item_name", "brand", "model", "spec", "unit",
               "condition", "serials", "origin", "reject")
        df = {c: np.full(n, "", dtype=object) for c in obj}
        df.update({
            "uid": np.arange(self.next_uid, self.next_uid + n),
            "tender": tender,
            "cards": np.zeros(n, dtype=int),
            "quantity": np.ones(n, dtype=int),
            "unit_price": np.zeros(n),
            "capacity_kw": np.full(n, np.nan),
            "cap_in_spec": np.zeros(n, dtype=bool),
            "mfg_day": np.full(n, np.nan),
            "total_factor": np.ones(n),
            "total_add": np.zeros(n),
            "order": rng.random(n),
            "share": np.full(n, np.nan),
        })
        df["kind"][:] = kind
        df["group"][:] = "infra"
        df["origin"][:] = origin
        self.next_uid += n
        day = tt["day"]
        if gpu is None:
            gpu = np.where(kind == "server", tt["gpu"],
                           np.where(kind == "domestic", tt["domestic"],
                                    np.where(kind == "card", tt["card_gpu"], "")))
        gpu = np.asarray(gpu, dtype=object)
        for k in pd.unique(kind):  # per kind, vectorised inside
            m = kind == k
            idx = np.flatnonzero(m)
            c = len(idx)
            if k == "server":
                g = gpu[m]
                df["group"][idx] = "gpu"
                df["gpu"][idx] = g
                df["cards"][idx] = 8
                df["item_name"][idx] = _pick(rng, cat.SERVER_NAMES, c)
                df["brand"][idx] = tt["brand"][m]
                desc = _map(g, {x: v["server"] for x, v in cat.GPUS.items()})
                df["model"][idx] = tt["series"][m] + " " + desc
                df["spec"][idx] = _pick(rng, cat.SERVER_SPECS, c)
                df["quantity"][idx] = _log_int(rng, 2, 64, c)
                df["unit"][idx] = _pick(rng, ("台", "台", "套"), c)
                df["unit_price"][idx] = curve(g, day[m]) * _noise(rng, c, 0.035)
            elif k == "domestic":
                g = gpu[m]
                df["group"][idx] = "gpu"
                df["gpu"][idx] = g
                df["cards"][idx] = 8
                df["item_name"][idx] = _pick(rng, cat.DOMESTIC_NAMES, c)
                key = g + "|" + rng.integers(0, 2, c).astype(str)
                dom = {f"{x}|{i}": p for x, ps in cat.DOMESTIC_BRANDS.items()
                       for i, p in enumerate(ps)}
                df["brand"][idx] = _map(key, {k2: p[0] for k2, p in dom.items()})
                df["model"][idx] = (_map(key, {k2: p[1] for k2, p in dom.items()})
                                        + _map(g, {x: v["server"] for x, v in cat.GPUS.items()}))
                df["spec"][idx] = _pick(rng, cat.DOMESTIC_SPECS, c)
                df["quantity"][idx] = _log_int(rng, 2, 32, c)
                df["unit"][idx] = "台"
                df["unit_price"][idx] = curve(g, day[m]) * _noise(rng, c, 0.035)
            elif k == "card":
                g = gpu[m]
                df["group"][idx] = "gpu"
                df["gpu"][idx] = g
                df["cards"][idx] = 1
                df["item_name"][idx] = _pick(rng, cat.CARD_NAMES, c)
                df["brand"][idx] = np.where(
                    np.isin(g, cat.DOMESTIC_GPUS), "华为", _pick(rng, ("NVIDIA", "英伟达"), c))
                df["model"][idx] = _map(g, {x: v["card"] for x, v in cat.GPUS.items()})
                df["spec"][idx] = _pick(rng, cat.CARD_SPECS, c)
                df["quantity"][idx] = rng.integers(1, 17, c) * 8
                df["unit"][idx] = _pick(rng, ("张", "块"), c)
                df["unit_price"][idx] = curve(g, day[m], "card_anchors") * _noise(rng, c, 0.04)
            elif k in ("head", "module"):
                g = gpu[m]
                df["group"][idx] = "gpu"
                q = _log_int(rng, 2, 32, c)
                if k == "head":
                    df["item_name"][idx] = _pick(rng, cat.HEAD_NAMES, c)
                    df["brand"][idx] = tt["brand"][m]
                    df["model"][idx] = tt["series"][m] + " 机头"
                    df["spec"][idx] = _pick(rng, cat.HEAD_SPECS, c)
                    df["unit"][idx] = "台"
                    head = _map(g, {x: v["head"] for x, v in cat.ASSEMBLY.items()}).astype(float)
                    df["unit_price"][idx] = head * _noise(rng, c, 0.03)
                else:
                    df["gpu"][idx] = g
                    df["cards"][idx] = 8
                    df["item_name"][idx] = _pick(rng, cat.MODULE_NAMES, c)
                    df["brand"][idx] = "NVIDIA"
                    df["model"][idx] = _map(g, {x: v["module"] for x, v in cat.ASSEMBLY.items()})
                    df["spec"][idx] = "含NVLink/NVSwitch基板"
                    df["unit"][idx] = _pick(rng, ("套", "块"), c)
                df["quantity"][idx] = q
            elif k in cat.COOLING:
                cool = cat.COOLING[k]
                kw = rng.integers(4, 49, c) * 50
                rate = rng.uniform(*cool["rate"], c)
                df["item_name"][idx] = _pick(rng, cool["names"], c)
                df["brand"][idx] = _pick(rng, cat.COOLING_BRANDS, c)
                df["model"][idx] = "冷板式" if k == "cold_plate" else "单相浸没式"
                df["unit"][idx] = _pick(rng, ("套", "项"), c)
                df["capacity_kw"][idx] = kw.astype(float)
                has_col = tt["has_cap"][m]
                in_spec = ~has_col | (rng.random(c) < 0.25)
                df["cap_in_spec"][idx] = in_spec
                df["spec"][idx] = np.where(in_spec, _capacity_text(rng, kw),
                                               "含CDU、二次侧管路及安装调试")
                df["unit_price"][idx] = kw * rate
            elif k == "retrofit":
                df["item_name"][idx] = _pick(rng, cat.RETROFIT_NAMES, c)
                df["brand"][idx] = _pick(rng, cat.COOLING_BRANDS, c)
                df["model"][idx] = "冷板改造"
                df["spec"][idx] = _pick(rng, cat.RETROFIT_SPECS, c)
                df["unit"][idx] = "台"
                df["quantity"][idx] = rng.integers(4, 65, c)
                df["unit_price"][idx] = rng.uniform(*cat.RETROFIT_PRICE, c)
            elif k in cat.ITEMS:
                item = cat.ITEMS[k]
                lo, hi, step = item["qty"]
                df["item_name"][idx] = _pick(rng, item["names"], c)
                df["brand"][idx] = _pick(rng, item["brands"], c)
                df["model"][idx] = _pick(rng, item["models"], c)
                df["spec"][idx] = _pick(rng, item["specs"], c)
                df["unit"][idx] = _pick(rng, item["units"], c)
                df["quantity"][idx] = rng.integers(max(lo // step, 1), hi // step + 1, c) * step
                df["unit_price"][idx] = item["price"] * _noise(rng, c, item["sigma"])
            elif k in cat.SERVICES:
                svc = cat.SERVICES[k]
                df["item_name"][idx] = _pick(rng, svc["names"], c)
                df["unit"][idx] = _pick(rng, svc["unit"], c)
                df["share"][idx] = rng.uniform(*svc["share"], c)
                df["order"][idx] = 10.0 + rng.random(c)  # services close the list
            elif k == "reject":
                pass
            else:  # pragma: no cover - a programming error, not data
                raise ValueError(f"unknown line kind {k!r}")
        df["unit_price"] = _round_price(df["unit_price"])
        cols = ["uid", "tender", "kind", "group", "gpu", "cards", "item_name", "brand", "model",
                "spec", "quantity", "unit", "unit_price", "capacity_kw", "cap_in_spec",
                "condition", "serials", "mfg_day", "total_factor", "total_add", "order",
                "origin", "reject", "share"]
        # Plain object columns: pandas' arrow strings are slow to copy, take and concatenate.
        return pd.DataFrame({c: pd.Series(df[c], dtype=object) if df[c].dtype == object
                             else df[c] for c in cols})

    def add(self, df: pd.DataFrame) -> pd.DataFrame:
        self.frames.append(df)
        return df

    def label(self, uids: npt.ArrayLike, mechanism: str, notes: npt.ArrayLike | str,
              novel: int = 0) -> None:
        uids = np.asarray(uids, dtype=int)
        notes = np.broadcast_to(np.asarray(notes, dtype=object), uids.shape)
        self.labels.append(pd.DataFrame({"uid": uids, "mechanism": mechanism,
                                         "novel": novel, "note": notes}))

    def lookalike(self, uids: npt.ArrayLike, kind: str, notes: npt.ArrayLike | str) -> None:
        uids = np.asarray(uids, dtype=int)
        notes = np.broadcast_to(np.asarray(notes, dtype=object), uids.shape)
        self.looks.append(pd.DataFrame({"uid": uids, "kind": kind, "note": notes}))

    def lines(self) -> pd.DataFrame:
        return pd.concat(self.frames, ignore_index=True)


def _log_int(rng: np.random.Generator, lo: int, hi: int, n: int) -> np.ndarray:
    """Integers spread log-uniformly: many small purchases, a few large ones."""
    return np.round(np.exp(rng.uniform(np.log(lo), np.log(hi), n))).astype(int)


def num_text(x: npt.ArrayLike, decimals: int = 0) -> pd.Series:
    """Numbers as text for label notes, vectorised."""
    x = np.asarray(x, dtype=float)
    if decimals == 0:
        return pd.Series(np.round(x).astype(np.int64)).astype(str)
    return pd.Series(np.round(x, decimals)).astype(str)


def base_lines(b: Builder, n_lines: np.ndarray, cooling_p: float) -> None:
    """The honest body of every tender: servers, network, storage, cooling, racks."""
    rng, t = b.rng, b.t
    n = len(t)
    tender_all = np.arange(n)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    n_srv = rng.integers(1, 4, n)
    parts.append((np.repeat(tender_all, n_srv), np.full(n_srv.sum(), "server", dtype=object)))
    has_dom = t["domestic"].to_numpy() != ""
    n_dom = np.where(has_dom, rng.integers(1, 3, n), 0)
    parts.append((np.repeat(tender_all, n_dom), np.full(n_dom.sum(), "domestic", dtype=object)))
    has_card = t["card_gpu"].to_numpy() != ""
    parts.append((tender_all[has_card], np.full(has_card.sum(), "card", dtype=object)))
    cool = rng.random(n) < cooling_p
    ctype = np.where(rng.random(n) < 0.6, "cold_plate", "immersion")
    parts.append((tender_all[cool], ctype[cool].astype(object)))
    retro = rng.random(n) < cooling_p * 0.4
    parts.append((tender_all[retro], np.full(retro.sum(), "retrofit", dtype=object)))
    n_svc = rng.integers(1, 4, n)
    svc_keys = np.array(list(cat.SERVICES), dtype=object)
    # Services of one tender are distinct: take the first n of a per-tender permutation.
    perm = np.argsort(rng.random((n, len(svc_keys))), axis=1)
    svc_mask = np.arange(len(svc_keys))[None, :] < n_svc[:, None]
    parts.append((np.repeat(tender_all, svc_mask.sum(axis=1)), svc_keys[perm[svc_mask]]))
    fixed = sum(np.bincount(p[0], minlength=n) for p in parts)
    n_infra = np.maximum(n_lines - fixed, 8)
    keys = np.array(list(cat.ITEM_WEIGHTS), dtype=object)
    w = np.array(list(cat.ITEM_WEIGHTS.values()), dtype=float)
    parts.append((np.repeat(tender_all, n_infra),
                  rng.choice(keys, size=int(n_infra.sum()), p=w / w.sum())))
    tender = np.concatenate([p[0] for p in parts])
    kind = np.concatenate([p[1] for p in parts])
    b.add(b.make(tender, kind))


def dedupe(df: pd.DataFrame, exclude: np.ndarray | None = None) -> pd.DataFrame:
    """Make accidental repeats (same tender, quantity and price) differ by a small price step.

    Only injected duplicate_line copies may repeat a line; any other repeat would be an
    unlabelled duplicate, so its price moves by ¥100 (or ¥1 for cheap items) until unique.
    """
    df = df.copy()
    keep = np.ones(len(df), dtype=bool) if exclude is None else ~np.isin(df["uid"], exclude)
    keep &= df["reject"].to_numpy() == ""
    for _ in range(100):
        sub = df[keep]
        dup = sub.duplicated(["tender", "quantity", "unit_price"], keep="first")
        if not dup.any():
            return df
        ix = sub.index[dup.to_numpy()]
        step = np.where(df.loc[ix, "unit_price"] >= 10000, 100.0, 1.0)
        df.loc[ix, "unit_price"] = df.loc[ix, "unit_price"] + step
    raise RuntimeError("could not make line prices unique")  # pragma: no cover
