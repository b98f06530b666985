"""Synthetic ``items``-shaped rows with labelled price mark-ups, for tests and the benchmark.

Prices follow the reference book (docs/sources.md) with log-normal noise; a share of lines
is marked up 2.5-6x (label 1) and a share is priced far *below* peers (label 0: a cheap line
is not overpayment). Vectorised: a million rows take about a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# (category, accel_model or None, reference unit price in CNY, cards per unit, weight, name)
_CATALOGUE: list[tuple[str, str | None, float, float, float, str]] = [
    ("gpu_server", "H100", 2_450_000, 8, 4, "GPU服务器"),
    ("gpu_server", "H800", 2_100_000, 8, 2, "GPU服务器"),
    ("gpu_server", "A800", 1_450_000, 8, 2, "GPU服务器"),
    ("gpu_server", "H20", 1_300_000, 8, 3, "GPU服务器"),
    ("gpu_server", "L20", 650_000, 8, 2, "GPU服务器"),
    ("gpu_server", "RTX4090", 220_000, 8, 3, "GPU服务器"),
    ("domestic_accelerator", "Ascend910B", 1_500_000, 8, 2, "昇腾服务器"),
    ("gpu_card", "H100", 210_000, 1, 2, "GPU卡"), ("gpu_card", "L20", 75_000, 1, 2, "GPU卡"),
    ("gpu_card", "RTX4090", 20_000, 1, 2, "GPU卡"),
    ("liquid_cooling", None, 0, np.nan, 4, "液冷系统"),  # priced per kW below
    ("network", None, 310_000, np.nan, 2, "InfiniBand交换机"),
    ("network", None, 12_000, np.nan, 2, "管理网交换机"),
    ("network", None, 15_000, np.nan, 3, "网卡"), ("network", None, 6_500, np.nan, 3, "光模块"),
    ("storage", None, 0, np.nan, 3, "并行存储"), ("rack_power", None, 8_500, np.nan, 3, "机柜"),
    ("service", None, 500_000, np.nan, 1, "集成服务"),
]

def synthetic_items(
    n: int, seed: int = 0, outlier_rate: float = 0.02, cheap_rate: float = 0.01,
    lines_per_tender: int = 40,
) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` synthetic item rows and their labels (1 = marked-up line)."""
    rng = np.random.default_rng(seed)
    weights = np.array([c[4] for c in _CATALOGUE], dtype=float)
    pick = rng.choice(len(_CATALOGUE), size=n, p=weights / weights.sum())
    category = np.array([c[0] for c in _CATALOGUE], dtype=object)[pick]
    accel = np.array([c[1] for c in _CATALOGUE], dtype=object)[pick]
    ref = np.array([c[2] for c in _CATALOGUE])[pick]
    cards = np.array([c[3] for c in _CATALOGUE])[pick]
    names = np.array([c[5] for c in _CATALOGUE], dtype=object)[pick]

    cooling = category == "liquid_cooling"
    capacity_kw = np.where(cooling, np.round(rng.lognormal(np.log(300), 0.6, n)), np.nan)
    immersion = rng.random(n) < 0.3
    per_kw = np.where(immersion, 10_000.0, 5_500.0)
    capacity_tb = np.where(category == "storage", np.round(rng.lognormal(np.log(500), 0.7, n)),
                           np.nan)
    base = np.where(cooling, per_kw * capacity_kw,
                    np.where(category == "storage", 2_500.0 * capacity_tb, ref))
    price = base * rng.lognormal(0.0, 0.1, n)
    u = rng.random(n)
    label = (u < outlier_rate).astype(int)
    cheap = (u >= outlier_rate) & (u < outlier_rate + cheap_rate)
    price = np.where(label == 1, price * rng.uniform(2.5, 6.0, n), price)
    price = np.where(cheap, price * 0.3, price)
    price = np.round(price, 0)

    lump = category == "service"
    quantity = np.where(lump, 1.0, np.maximum(1.0, np.round(rng.lognormal(1.5, 0.8, n))))
    tender = np.arange(n) // lines_per_tender
    line_total = price * quantity
    has_ref = ~np.isnan(cards) & (ref > 0)
    ref_high = np.where(has_ref, ref * 1.05, np.nan)
    ratio_ref = price / ref_high
    ratio_ref[rng.random(n) < 0.05] = np.nan  # the reference book does not cover every line

    frame = pd.DataFrame({
        "item_id": np.arange(1, n + 1, dtype="int64"),
        "tender_id": pd.Series(tender).map("T{:06d}".format).to_numpy(),
        "source_file": pd.Series(tender // 10).map("tenders/t{:05d}.csv".format).to_numpy(),
        "source_sheet": None,
        "source_row": (np.arange(n) % (lines_per_tender * 10)) + 2,
        "line_no": pd.Series(np.arange(n) % lines_per_tender + 1).astype(str).to_numpy(),
        "item_name": names, "category": category, "accel_model": accel,
        "cooling_type": np.where(cooling, np.where(immersion, "immersion", "cold_plate"),
                                 np.array(None)),
        "unit_price_cny": price, "quantity": quantity,
        "unit": np.where(lump, "项", "台"),
        "capacity_kw": capacity_kw, "capacity_tb": capacity_tb,
        "price_per_kw": price / capacity_kw,
        "card_count": cards * quantity, "cards_per_unit": cards,
        "ratio_to_ref_high": ratio_ref, "ref_low_cny": ref_high / 1.1, "ref_high_cny": ref_high,
        "is_lump_sum": lump, "line_total_cny": line_total,
    })
    peer_key = [frame["category"], frame["accel_model"].fillna("-")]
    grp = frame.groupby(peer_key, sort=False)["unit_price_cny"]
    frame["peer_count"] = grp.transform("size").astype("int64")
    frame["peer_median"] = grp.transform("median")
    frame["ratio_to_peer_median"] = frame["unit_price_cny"] / frame["peer_median"]
    mad = (frame["unit_price_cny"] - frame["peer_median"]).abs().groupby(peer_key).transform(
        "median")
    frame["robust_z"] = (frame["unit_price_cny"] - frame["peer_median"]) / (1.4826 * mad)
    frame["line_value_share"] = line_total / frame.groupby("tender_id")[
        "line_total_cny"].transform("sum")
    return frame, label
