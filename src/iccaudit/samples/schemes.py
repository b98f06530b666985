"""Injected schemes and their legitimate look-alikes, each set-at-a-time over target tenders.

Every injector takes the builder and an array of target tenders and either adds labelled lines
or adds look-alike lines (recorded apart, never labelled). A mechanism's wording, magnitude and
placement vary between targets so rules cannot key on one phrase or one multiple.

Over 500 lines on purpose: one injector per scheme and one per look-alike, side by side, so
that each scheme is read next to the legitimate line it must not be confused with.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from iccaudit.samples import catalogue as cat
from iccaudit.samples.lines import (
    EQUIPMENT_KINDS,
    GPU_KINDS,
    Builder,
    _days,
    _map,
    _noise,
    _pick,
    _round_price,
    curve,
    num_text,
)

_ASSEMBLY_GPUS = tuple(cat.ASSEMBLY)


def _day(b: Builder, targets: np.ndarray) -> np.ndarray:
    days: np.ndarray = b.t["day"].to_numpy()[targets]
    return days


def _full(n: int, value: str) -> np.ndarray:
    return np.full(n, value, dtype=object)


def _date_text(days: npt.ArrayLike) -> pd.Series:
    return pd.Series((np.datetime64("1970-01-01", "D") + np.asarray(days, dtype=int))
                     .astype("datetime64[D]").astype(str))


def _assembly_gpu(b: Builder, targets: np.ndarray) -> np.ndarray:
    prim = b.t["gpu"].to_numpy()[targets]
    return np.where(np.isin(prim, _ASSEMBLY_GPUS), prim,
                    _pick(b.rng, _ASSEMBLY_GPUS, len(targets)))


# -- head_module_split ---------------------------------------------------------------------
def head_module_pair(b: Builder, targets: np.ndarray, fraud: bool) -> None:
    """Machine head + GPU module; fraud: no assembly discount; look-alike: 5-8 % below."""
    n = len(targets)
    if n == 0:
        return
    rng = b.rng
    gpu = _assembly_gpu(b, targets)
    head = b.make(targets, _full(n, "head"), gpu=gpu, origin="inject")
    mod = b.make(targets, _full(n, "module"), gpu=gpu, origin="inject")
    mod["quantity"] = head["quantity"].to_numpy()
    mod["order"] = head["order"].to_numpy() + 1e-6
    complete = curve(gpu, _day(b, targets)) * _noise(rng, n, 0.02)
    ratio = rng.uniform(1.0, 1.06, n) if fraud else 1.0 - rng.uniform(0.05, 0.08, n)
    mod["unit_price"] = _round_price(complete * ratio - head["unit_price"].to_numpy())
    b.add(head)
    b.add(mod)
    uids = np.concatenate([head["uid"], mod["uid"]])
    pct = num_text((ratio - 1) * 100, 1)
    if fraud:
        note = ("head+module = complete " + pd.Series(gpu) + " server " + pct
                + "% (no assembly discount)")
        b.label(uids, "head_module_split", np.concatenate([note, note]))
    else:
        note = "head+module " + pct + "% vs complete server (normal assembly discount)"
        b.lookalike(uids, "assembly_discount", np.concatenate([note, note]))


def assembled_as_complete(b: Builder, targets: np.ndarray) -> None:
    """A 整机 line whose spec admits it is a machine head + module, priced as complete."""
    n = len(targets)
    if n == 0:
        return
    rng = b.rng
    gpu = _assembly_gpu(b, targets)
    df = b.make(targets, _full(n, "server"), gpu=gpu, origin="inject")
    module = _map(gpu, {k: v["module"].split(" (")[0] for k, v in cat.ASSEMBLY.items()})
    wording = _pick(rng, cat.ASSEMBLED_WORDING, n)
    text = pd.Series(wording).str.replace("{module}", "", regex=False).to_numpy(object)
    has_slot = pd.Series(wording).str.contains("{module}", regex=False).to_numpy()
    text = np.where(has_slot, pd.Series(wording).str.split("{module}").str[0] + module
                    + pd.Series(wording).str.split("{module}").str[1], text)
    df["item_name"] = _pick(rng, ("GPU服务器（整机）", "整机GPU服务器", "成套GPU服务器"), n)
    df["spec"] = text + "；" + df["spec"]
    df["unit_price"] = _round_price(df["unit_price"] * rng.uniform(0.99, 1.04, n))
    b.add(df)
    b.label(df["uid"], "head_module_split", "complete-server line assembled from head + module")


# -- liquid_cooling_markup -----------------------------------------------------------------
def cooling_markup(b: Builder, targets: np.ndarray) -> None:
    """Cold plate or immersion quoted 2-10x the per-kW market price."""
    n = len(targets)
    if n == 0:
        return
    rng = b.rng
    kind = np.where(rng.random(n) < 0.55, "cold_plate", "immersion").astype(object)
    df = b.make(targets, kind, origin="inject")
    factor = np.exp(rng.uniform(np.log(2.0), np.log(10.0), n))
    df["unit_price"] = _round_price(df["unit_price"] * factor)
    b.add(df)
    rate = df["unit_price"] / df["capacity_kw"]
    note = (pd.Series(kind).str.replace("_", " ") + " at " + num_text(rate) + " CNY/kW ("
            + num_text(factor, 1) + "x market)")
    b.label(df["uid"], "liquid_cooling_markup", note)


def retrofit_markup(b: Builder, targets: np.ndarray) -> None:
    """Per-server cold-plate retrofit quoted 2.5-8x the ≈¥100 k market price."""
    n = len(targets)
    if n == 0:
        return
    df = b.make(targets, _full(n, "retrofit"), origin="inject")
    factor = b.rng.uniform(2.5, 8.0, n)
    df["unit_price"] = _round_price(df["unit_price"] * factor)
    b.add(df)
    b.label(df["uid"], "liquid_cooling_markup",
            "retrofit at " + num_text(df["unit_price"]) + " CNY/server (" + num_text(factor, 1)
            + "x market)")


# -- domestic_shell ------------------------------------------------------------------------
def _domestic_gpu(b: Builder, targets: np.ndarray) -> np.ndarray:
    dom = b.t["domestic"].to_numpy()[targets]
    return np.where(dom != "", dom, _pick(b.rng, cat.DOMESTIC_GPUS, len(targets)))


def domestic_shell(b: Builder, targets: np.ndarray, variant: str) -> None:
    """A domestic server that is only a shell (wording) or priced at a few % (fraction)."""
    n = len(targets)
    if n == 0:
        return
    rng = b.rng
    df = b.make(targets, _full(n, "domestic"), gpu=_domestic_gpu(b, targets), origin="inject")
    if variant == "wording":
        wording = _pick(rng, cat.SHELL_WORDING, n)
        first = rng.random(n) < 0.5
        df["spec"] = np.where(first, wording + "；" + df["spec"], df["spec"] + "，" + wording)
        df["unit_price"] = _round_price(df["unit_price"] * rng.uniform(0.95, 1.05, n))
        note = "shell wording '" + pd.Series(wording) + "' at a server price"
    else:
        share = rng.uniform(0.03, 0.10, n)
        df["unit_price"] = _round_price(df["unit_price"] * share)
        note = "domestic server at " + num_text(share * 100) + "% of reference, counted as compute"
    b.add(df)
    b.label(df["uid"], "domestic_shell", note)


def domestic_delivery(b: Builder, targets: np.ndarray) -> None:
    """Look-alike: a normal domestic server with ordinary delivery wording (原厂包装, 含导轨)."""
    n = len(targets)
    if n == 0:
        return
    df = b.make(targets, _full(n, "domestic"), gpu=_domestic_gpu(b, targets), origin="inject")
    wording = _pick(b.rng, cat.DELIVERY_WORDING, n)
    df["spec"] = df["spec"] + "，" + wording
    b.add(df)
    b.lookalike(df["uid"], "domestic_delivery_wording", "normal price, '" + pd.Series(wording)
                + "'")


# -- used_as_new ---------------------------------------------------------------------------
def _used_lines(b: Builder, targets: np.ndarray) -> pd.DataFrame:
    """Mostly 8×4090 servers, sometimes single cards of a datacentre model."""
    n = len(targets)
    rng = b.rng
    is_card = rng.random(n) < 0.3
    card_gpu = _pick(rng, ("A800", "H100", "L20", "RTX4090"), n)
    day = _day(b, targets)
    # L20 was not on sale before 2024-02: fall back to the 4090 there.
    card_gpu = np.where((card_gpu == "L20") & (day < _days(cat.GPUS["L20"]["from"])),
                        "RTX4090", card_gpu)
    gpu = np.where(is_card, card_gpu, "RTX4090")
    kind = np.where(is_card, "card", "server").astype(object)
    return b.make(targets, kind, gpu=gpu, origin="inject")


def _put_condition(b: Builder, df: pd.DataFrame, words: np.ndarray, force_spec: bool) -> None:
    has_cond = b.t["has_cond"].to_numpy()[df["tender"].to_numpy()]
    in_col = has_cond & (not force_spec)
    df["condition"] = np.where(in_col, words, df["condition"])
    df["spec"] = np.where(in_col, df["spec"], df["spec"] + "（" + words + "）")


def used_as_new(b: Builder, targets: np.ndarray, where: str) -> None:
    """Used or refurbished cards, said so in the condition column or the spec, priced as new."""
    n = len(targets)
    if n == 0:
        return
    df = _used_lines(b, targets)
    words = _pick(b.rng, cat.USED_WORDS, n)
    _put_condition(b, df, words, force_spec=(where == "spec"))
    df["unit_price"] = _round_price(df["unit_price"] * b.rng.uniform(0.96, 1.04, n))
    b.add(df)
    b.label(df["uid"], "used_as_new", "'" + pd.Series(words) + "' at the new price")


def declared_used(b: Builder, targets: np.ndarray) -> None:
    """Look-alike: declared used and priced as used (45-65 % of new)."""
    n = len(targets)
    if n == 0:
        return
    df = _used_lines(b, targets)
    words = _pick(b.rng, cat.DECLARED_USED, n)
    _put_condition(b, df, words, force_spec=False)
    share = b.rng.uniform(0.45, 0.65, n)
    df["unit_price"] = _round_price(df["unit_price"] * share)
    b.add(df)
    b.lookalike(df["uid"], "declared_used_price", "used at " + num_text(share * 100)
                + "% of new")


def old_manufacture(b: Builder, targets: np.ndarray) -> None:
    """A 'new' server whose manufacture date is 2-4 years before the purchase."""
    n = len(targets)
    if n == 0:
        return
    df = b.make(targets, _full(n, "server"), origin="inject")
    age = b.rng.integers(760, 1500, n)
    df["mfg_day"] = (_day(b, targets) - age).astype(float)
    b.add(df)
    b.label(df["uid"], "used_as_new", "manufactured " + _date_text(df["mfg_day"]) + ", "
            + num_text(age / 365.25, 1) + " years before purchase")


def serial_reuse(b: Builder, lines: pd.DataFrame, count: int) -> pd.DataFrame:
    """Lines whose serial numbers were already delivered in an earlier tender (later labelled).

    Sources are serial-bearing lines of tenders whose files have a serial column; each target
    is such a tender dated at least 30 days later. Returns the new lines (already added).
    """
    rng, t = b.rng, b.t
    sn_t = t[t["has_sn"]].sort_values(["day", "tender"], kind="stable")
    days = sn_t["day"].to_numpy()
    cand = lines[(lines["serials"] != "") & (lines["origin"] == "base")
                 & lines["kind"].isin(["server", "card"])]
    cand_day = t["day"].to_numpy()[cand["tender"].to_numpy()]
    pos = np.searchsorted(days, cand_day + 30, side="left")
    cand = cand[pos < len(days)]
    pos = pos[pos < len(days)]
    if count <= 0 or len(cand) == 0:
        return lines.iloc[:0]
    pick = rng.choice(len(cand), size=min(count, len(cand)), replace=False)
    pick.sort()
    src: pd.DataFrame = cand.iloc[pick]
    lo = pos[pick]
    tgt_pos = lo + np.floor(rng.random(len(pick)) * (len(days) - lo)).astype(int)
    target = sn_t["tender"].to_numpy()[tgt_pos]
    new = src.copy()
    new["uid"] = np.arange(b.next_uid, b.next_uid + len(new))
    b.next_uid += len(new)
    new["tender"] = target
    new["origin"] = "inject"
    new["order"] = rng.random(len(new))
    new["mfg_day"] = np.nan
    tday = t["day"].to_numpy()[target]
    anchors = np.where(new["kind"] == "card", "card_anchors", "anchors")
    price = np.where(anchors == "card_anchors",
                     curve(new["gpu"].to_numpy(), tday, "card_anchors"),
                     curve(new["gpu"].to_numpy(), tday))
    new["unit_price"] = _round_price(price * _noise(rng, len(new), 0.03))
    new["condition"] = np.where(t["has_cond"].to_numpy()[target], "全新", "")
    b.add(new)
    src_t = src["tender"].to_numpy()
    b.label(new["uid"], "used_as_new",
            "serial numbers already delivered in " + pd.Series(t["tender_id"].to_numpy()[src_t])
            + " (" + _date_text(t["day"].to_numpy()[src_t]) + ")")
    return new


# -- offbrand_premium ----------------------------------------------------------------------
def minor_brand(b: Builder, targets: np.ndarray, fraud: bool) -> None:
    """A white-label server at a tier-1 price (fraud) or at a minor-brand price (look-alike)."""
    n = len(targets)
    if n == 0:
        return
    rng = b.rng
    df = b.make(targets, _full(n, "server"), origin="inject")
    brand = _pick(rng, cat.MINOR_BRANDS, n)
    desc = _map(df["gpu"], {k: v["server"] for k, v in cat.GPUS.items()})
    df["brand"] = brand
    df["model"] = _map(brand, cat.MINOR) + " " + desc
    share = rng.uniform(0.97, 1.08, n) if fraud else rng.uniform(0.70, 0.85, n)
    df["unit_price"] = _round_price(df["unit_price"] * share)
    b.add(df)
    note = pd.Series(brand) + " at " + num_text(share * 100) + "% of the tier-1 price"
    if fraud:
        b.label(df["uid"], "offbrand_premium", note)
    else:
        b.lookalike(df["uid"], "minor_brand_price", note)


# -- price_outlier -------------------------------------------------------------------------
def accelerator_outlier(b: Builder, targets: np.ndarray) -> None:
    """A server or card of a known model at 1.5-2.5x its reference / peers."""
    n = len(targets)
    if n == 0:
        return
    rng = b.rng
    has_card = b.t["card_gpu"].to_numpy()[targets] != ""
    kind = np.where(has_card & (rng.random(n) < 0.4), "card", "server").astype(object)
    df = b.make(targets, kind, origin="inject")
    factor = rng.uniform(1.5, 2.5, n)
    df["unit_price"] = _round_price(df["unit_price"] * factor)
    b.add(df)
    b.label(df["uid"], "price_outlier", pd.Series(df["gpu"].to_numpy()) + " " + pd.Series(kind)
            + " at " + num_text(factor, 2) + "x reference")


def novel_outlier(b: Builder, targets: np.ndarray) -> None:
    """Mark-ups no rule prices: switches, NICs, storage, racks, optics at 2.5-6x."""
    n = len(targets)
    if n == 0:
        return
    rng = b.rng
    kind = _pick(rng, cat.NOVEL_KINDS, n)
    df = b.make(targets, kind, origin="inject")
    factor = rng.uniform(2.5, 6.0, n)
    df["unit_price"] = _round_price(df["unit_price"] * factor)
    b.add(df)
    b.label(df["uid"], "price_outlier", pd.Series(kind) + " at " + num_text(factor, 1)
            + "x market (no rule covers it)", novel=1)


# -- bill_arithmetic -----------------------------------------------------------------------
def bill_error(b: Builder, targets: np.ndarray) -> None:
    """Quantity x unit price differs from the stated line total beyond rounding."""
    n = len(targets)
    if n == 0:
        return
    rng = b.rng
    pool = (*cat.ITEMS, "server")
    kind = _pick(rng, pool, n)
    df = b.make(targets, kind, origin="inject")
    variant = rng.integers(0, 4, n)
    q = df["quantity"].to_numpy()
    variant = np.where((variant == 2) & (q > 50), 0, variant)  # +1 unit only shows on small qty
    up = rng.uniform(1.05, 1.35, n)
    down = rng.uniform(0.70, 0.95, n)
    df["total_factor"] = np.select([variant == 0, variant == 1, variant == 3], [up, down, 10.0],
                                   1.0)
    df["total_add"] = np.where(variant == 2, df["unit_price"], 0.0)
    b.add(df)
    note = np.select([variant == 0, variant == 1, variant == 2],
                     ["total " + num_text((up - 1) * 100) + "% above qty x price",
                      "total " + num_text((1 - down) * 100) + "% below qty x price",
                      pd.Series(_full(n, "total counts one unit more than the quantity"))],
                     "total has an extra zero (10x)")
    b.label(df["uid"], "bill_arithmetic", note)


# -- duplicate_line ------------------------------------------------------------------------
def duplicates(b: Builder, lines: pd.DataFrame, targets: np.ndarray, fraud: bool) -> np.ndarray:
    """Repeat a base line of each target tender (fraud) or repeat it with another qty/price.

    Returns the uids of the originals, which must keep their values from here on.
    """
    if len(targets) == 0:
        return np.array([], dtype=int)
    rng = b.rng
    pool = lines[(lines["origin"] == "base") & (lines["reject"] == "")
                 & ~lines["kind"].isin(list(cat.SERVICES))]
    pool = pool[pool["tender"].isin(targets)]
    # One original per target (a tender picked twice gets two different originals).
    shuffled = pool.iloc[rng.permutation(len(pool))]
    rank = pd.Series(targets).groupby(targets).cumcount().to_numpy()
    want = pd.DataFrame({"tender": targets, "k": rank})
    have = shuffled.assign(k=shuffled.groupby("tender").cumcount().to_numpy())
    orig = want.merge(have, on=["tender", "k"], how="inner").drop(columns="k")
    n = len(orig)
    if n == 0:
        return np.array([], dtype=int)
    copy = orig.copy()
    copy["uid"] = np.arange(b.next_uid, b.next_uid + n)
    b.next_uid += n
    copy["origin"] = "inject"
    copy["order"] = orig["order"].to_numpy() + rng.uniform(1e-4, 0.3, n)
    if not fraud:
        by_qty = rng.random(n) < 0.5
        step = np.maximum(1, np.round(copy["quantity"] * rng.uniform(0.2, 0.8, n))).astype(int)
        copy["quantity"] = np.where(by_qty, copy["quantity"] + step, copy["quantity"])
        copy["unit_price"] = np.where(by_qty, copy["unit_price"],
                                      _round_price(copy["unit_price"] * rng.uniform(0.9, 0.97, n)))
    b.add(copy)
    if fraud:
        b.label(copy["uid"], "duplicate_line", "repeat of an identical line (same item, model, "
                "quantity, price)")
    else:
        b.lookalike(copy["uid"], "same_item_other_qty_or_price",
                    "same item again with a different quantity or price")
    return orig["uid"].to_numpy()


# -- finishing: serials, conditions, claims, label rules over the whole table ----------------
def assign_serials(b: Builder, lines: pd.DataFrame) -> pd.DataFrame:
    """Unique serial numbers for small equipment lines of tenders whose files list them."""
    rng, t = b.rng, b.t
    has_sn = t["has_sn"].to_numpy()[lines["tender"].to_numpy()]
    m = (has_sn & lines["kind"].isin(EQUIPMENT_KINDS).to_numpy()
         & (lines["quantity"].to_numpy() <= 16) & (lines["serials"].to_numpy() == "")
         & (lines["reject"].to_numpy() == ""))
    sub = lines[m]
    if len(sub) == 0:
        return lines
    prefix = _pick(rng, ("2102313", "CN78", "J30K", "SN8A", "210235"), len(sub))
    rep = np.repeat(np.arange(len(sub)), sub["quantity"].to_numpy())
    k = pd.Series(rep).groupby(rep).cumcount().to_numpy()
    code = (pd.Series(prefix[rep]) + pd.Series(sub["uid"].to_numpy()[rep]).astype(str).str.zfill(7)
            + pd.Series(k).astype(str).str.zfill(2))
    sep = _pick(rng, (";", ";", ",", "、", " "), len(sub))
    # Join each line's codes with that line's separator (one groupby, not a row loop).
    code = code + pd.Series(sep[rep])
    joined = code.groupby(rep).sum().str[:-1]
    lines = lines.copy()
    lines.loc[sub.index, "serials"] = joined.to_numpy()
    return lines


def assign_conditions_and_mfg(b: Builder, lines: pd.DataFrame) -> pd.DataFrame:
    """'全新' in condition columns; manufacture dates 2-8 months before purchase."""
    rng, t = b.rng, b.t
    lines = lines.copy()
    tix = lines["tender"].to_numpy()
    equip = lines["kind"].isin([*EQUIPMENT_KINDS, *cat.ITEMS, *cat.COOLING]).to_numpy()
    ok = lines["reject"].to_numpy() == ""
    m = t["has_cond"].to_numpy()[tix] & equip & ok & (lines["condition"].to_numpy() == "")
    lines.loc[m, "condition"] = _pick(rng, cat.NEW_CONDITIONS, int(m.sum()))
    m = (t["has_mfg"].to_numpy()[tix] & lines["kind"].isin(EQUIPMENT_KINDS).to_numpy() & ok
         & lines["mfg_day"].isna().to_numpy())
    lines.loc[m, "mfg_day"] = (t["day"].to_numpy()[tix[m]] - rng.integers(20, 240, int(m.sum())))
    return lines


def price_services(b: Builder, lines: pd.DataFrame) -> pd.DataFrame:
    """Lump sums (项/批) as a share of the tender's equipment total, in whole thousands."""
    lines = lines.copy()
    svc = lines["kind"].isin(list(cat.SERVICES)).to_numpy()
    ok = lines["reject"].to_numpy() == ""
    equip_total = (lines["quantity"] * lines["unit_price"]).where(~svc & ok, 0.0)
    per_tender = equip_total.groupby(lines["tender"]).sum()
    base = lines["tender"].map(per_tender).to_numpy()
    price = np.maximum(np.round(base * lines["share"].to_numpy() / 1000) * 1000, 20000)
    lines.loc[svc, "unit_price"] = price[svc]
    lines.loc[svc, "quantity"] = 1
    return lines


def claims_and_rules(b: Builder, lines: pd.DataFrame) -> pd.Series:
    """Compute each tender's PFLOPS claim; label capacity_mismatch and supply_channel.

    Honest claims stay below the dense FP16 total even when shells and models of unknown
    TFLOPS are left out; inflated ones are 1.9-2.6x the total counting everything (the
    sparse/FP8 headline). Returns the claim per tender (NaN: no claim).
    """
    rng, t = b.rng, b.t
    ok = lines["reject"].to_numpy() == ""
    acc = lines["kind"].isin(GPU_KINDS).to_numpy() & (lines["gpu"].to_numpy() != "") & ok
    tfl = _map(lines["gpu"], {k: (v["tflops"] or 0.0) for k, v in cat.GPUS.items()})
    tfl = np.where(acc, pd.to_numeric(pd.Series(tfl), errors="coerce").fillna(0).to_numpy(), 0.0)
    pf = lines["quantity"].to_numpy() * lines["cards"].to_numpy() * tfl / 1000.0
    labelled = pd.concat(b.labels, ignore_index=True) if b.labels else pd.DataFrame(
        {"uid": [], "mechanism": []})
    shells = labelled.loc[labelled["mechanism"] == "domestic_shell", "uid"].to_numpy()
    safe = np.where(np.isin(lines["uid"].to_numpy(), shells), 0.0, pf)
    n = len(t)
    actual_all = np.bincount(lines["tender"], weights=pf, minlength=n)
    actual_safe = np.bincount(lines["tender"], weights=safe, minlength=n)
    mode = t["claim_mode"].to_numpy()
    honest = actual_safe * rng.uniform(0.80, 0.98, n)
    honest = np.where(honest >= 10, np.floor(honest), np.floor(honest * 10) / 10)
    inflated = np.round(actual_all * rng.uniform(1.9, 2.6, n))
    claim = np.select([(mode == "honest") & (honest > 0), (mode == "inflated") & (actual_all > 0)],
                      [honest, inflated], np.nan)
    tix = lines["tender"].to_numpy()
    hit = acc & (mode[tix] == "inflated") & ~np.isnan(claim[tix])
    b.label(lines["uid"].to_numpy()[hit], "capacity_mismatch",
            "claim " + num_text(claim[tix[hit]]) + " PFLOPS vs " + num_text(actual_all[tix[hit]])
            + " dense FP16")
    honest_hit = acc & (mode[tix] == "honest") & ~np.isnan(claim[tix])
    b.lookalike(lines["uid"].to_numpy()[honest_hit], "honest_claim",
                "claim " + num_text(claim[tix[honest_hit]]) + " PFLOPS <= "
                + num_text(actual_safe[tix[honest_hit]]) + " dense FP16")
    # supply_channel: every export-controlled accelerator line bought after the ban.
    day = t["day"].to_numpy()[tix]
    ctrl = (lines["kind"].isin(["server", "card", "module"]).to_numpy() & ok
            & np.isin(lines["gpu"].to_numpy(), cat.EXPORT_CONTROLLED))
    after = ctrl & (day > _days(cat.BAN_DATE))
    b.label(lines["uid"].to_numpy()[after], "supply_channel",
            pd.Series(lines["gpu"].to_numpy()[after]) + " bought " + _date_text(day[after])
            + ", after the 2023-10-25 export ban")
    before = ctrl & (day < _days(cat.BAN_DATE))
    b.lookalike(lines["uid"].to_numpy()[before], "pre_ban_export_model",
                pd.Series(lines["gpu"].to_numpy()[before]) + " bought " + _date_text(day[before])
                + ", before the ban")
    return pd.Series(claim, index=t.index)


def reference_lookalikes(b: Builder, lines: pd.DataFrame) -> None:
    """Record the unlabelled cooling and retrofit lines (priced at the reference)."""
    labelled = pd.concat(b.labels, ignore_index=True)["uid"].to_numpy()
    free = ~np.isin(lines["uid"].to_numpy(), labelled) & (lines["reject"].to_numpy() == "")
    cool = free & lines["kind"].isin(list(cat.COOLING)).to_numpy()
    rate = lines["unit_price"].to_numpy()[cool] / lines["capacity_kw"].to_numpy()[cool]
    b.lookalike(lines["uid"].to_numpy()[cool], "cooling_at_reference",
                pd.Series(lines["kind"].to_numpy()[cool]) + " at " + num_text(rate) + " CNY/kW")
    retro = free & (lines["kind"].to_numpy() == "retrofit")
    b.lookalike(lines["uid"].to_numpy()[retro], "retrofit_at_reference",
                "retrofit at " + num_text(lines["unit_price"].to_numpy()[retro]) + " CNY/server")
