"""Features of a line for the outlier models, and the peer groups the lines are compared in.

Every feature is the log of a positive quantity (prices are multiplicative: a 3x mark-up is
the same distance from the median for a ¥20 k NIC and a ¥2 M server). A value that is absent,
zero or negative is *missing* (NaN), never zero; the scorer imputes it with the group median
and records that in the evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from iccaudit.detect.models.config import GroupLevel


def _col(items: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric column as float, all-NaN when the view does not have it."""
    if name not in items.columns:
        return np.full(len(items), np.nan)
    return pd.to_numeric(items[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return a / b


def _cards_per_unit(items: pd.DataFrame) -> np.ndarray:
    cpu = _col(items, "cards_per_unit")
    # Fall back to the line's card count over its quantity when cards_per_unit is not given.
    return np.where(np.isnan(cpu), _div(_col(items, "card_count"), _col(items, "quantity")), cpu)


def _price_per_kw(items: pd.DataFrame) -> np.ndarray:
    ppk = _col(items, "price_per_kw")
    if not np.isnan(ppk).all():
        return ppk
    return _div(_col(items, "unit_price_cny"), _col(items, "capacity_kw"))


@dataclass(frozen=True)
class Feature:
    """One feature: how to compute it and how to name it in a finding.

    ``price`` marks features proportional to the line's unit price (so an excess over the
    peer median converts to money); ``money`` marks values shown as ¥; ``mechanism`` names a
    more specific mechanism when this feature is the one that shows the line above its peers.
    """

    compute: Callable[[pd.DataFrame], np.ndarray]
    zh: str
    en: str
    price: bool = False
    money: bool = False
    mechanism: str | None = None


#: Feature catalogue (names used in models.yaml). All are used on the log scale.
FEATURES: dict[str, Feature] = {
    "unit_price": Feature(lambda d: _col(d, "unit_price_cny"), "单价", "unit price",
                          price=True, money=True),
    "price_per_card": Feature(lambda d: _div(_col(d, "unit_price_cny"), _cards_per_unit(d)),
                              "每卡单价", "price per card", price=True, money=True),
    "price_per_kw": Feature(_price_per_kw, "每千瓦单价", "price per kW", price=True, money=True,
                            mechanism="liquid_cooling_markup"),
    "price_per_tb": Feature(lambda d: _div(_col(d, "unit_price_cny"), _col(d, "capacity_tb")),
                            "每TB单价", "price per TB", price=True, money=True),
    "ratio_to_ref": Feature(lambda d: _col(d, "ratio_to_ref_high"), "单价/参考价",
                            "price / reference", price=True),
    "ratio_to_peer": Feature(lambda d: _col(d, "ratio_to_peer_median"), "单价/中位数",
                             "price / peer median", price=True),
    "quantity": Feature(lambda d: _col(d, "quantity"), "数量", "quantity"),
    "value_share": Feature(lambda d: _col(d, "line_value_share"), "占标段金额比例",
                           "share of tender value"),
    "line_total": Feature(lambda d: _col(d, "line_total_cny"), "行金额", "line total",
                          money=True),
}

#: Category names for messages; unknown categories are shown as they are.
CATEGORY_ZH: dict[str, str] = {
    "gpu_server": "GPU服务器", "gpu_card": "GPU卡", "gpu_module": "GPU模组",
    "machine_head": "机头", "cooling": "制冷", "liquid_cooling": "液冷", "switch": "交换机",
    "nic": "网卡", "storage": "存储", "rack": "机柜", "optics": "光模块", "cable": "线缆",
    "server": "服务器", "cpu_server": "通用服务器", "power": "供配电", "ups": "UPS",
    "network": "网络设备", "rack_power": "机柜及供配电", "domestic_accelerator": "国产加速卡",
    "cooling_retrofit": "液冷改造", "service": "服务", "software": "软件", "lump_sum": "总价包干项", "other": "其他",
}

LUMP_SUM = "lump_sum"


def compute_features(items: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    """Log-scale feature arrays (NaN = missing) for the named features, for all lines at once."""
    out = {}
    for name in names:
        raw = FEATURES[name].compute(items)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = np.where(np.isfinite(raw) & (raw > 0), np.log(raw), np.nan)
    return out


def item_kind(items: pd.DataFrame) -> pd.Series:
    """Normalised item name (lower case, no spaces or bracketed asides): a finer peer key."""
    if "item_name" not in items.columns:
        return pd.Series(pd.NA, index=items.index, dtype=object)
    # Names repeat a lot: normalise the distinct ones and map back (set-at-a-time, cheap).
    codes, uniques = pd.factorize(items["item_name"], use_na_sentinel=True)
    norm = pd.Series(uniques, dtype="string").str.lower()
    norm = norm.str.replace(r"[(\[（【][^)\]）】]*[)\]）】]", "", regex=True)
    norm = norm.str.replace(r"\s+", "", regex=True)
    norm = norm.where(norm.str.len() > 0).to_numpy(dtype=object, na_value=None)
    out = np.where(codes >= 0, norm[np.maximum(codes, 0)] if len(norm) else None, None)
    return pd.Series(out, index=items.index, dtype=object)


def assign_groups(
    items: pd.DataFrame, levels: list[GroupLevel], min_peers: int,
    lump_to_own_group: np.ndarray | None = None, kinds: pd.Series | None = None,
) -> pd.DataFrame:
    """Peer group of every line: ``feature_set``, ``group`` label and ``level`` index.

    Levels are tried finest first. A line takes the first level whose key columns it has and
    whose group has at least ``min_peers`` lines; at a level with ``fallback: false`` it stays
    even when the group is too small (a line with a known accelerator model is compared only
    with the same model: mixing an H100 server with 4090 servers would flag every H100). The
    last level takes every line left. Lump-sum lines (项/批) without a per-kW or per-TB price
    have no unit-price peers and form their own group, judged by their share of the tender.
    """
    n = len(items)
    category = (
        items["category"].astype(object).where(items["category"].notna(), "other")
        if "category" in items.columns
        else pd.Series(["other"] * n, dtype=object, index=items.index)
    )
    lump = np.zeros(n, dtype=bool) if lump_to_own_group is None else lump_to_own_group
    keys = items.assign(category=category,
                        item_kind=item_kind(items) if kinds is None else kinds)
    level = np.full(n, len(levels) - 1)
    placed = lump.copy()
    label = category.to_numpy(dtype=object).copy()
    for i, lv in enumerate(levels):
        if any(c not in keys.columns for c in lv.keys):
            continue  # the view lacks a key column: this level never applies
        last = i == len(levels) - 1
        # Integer group codes (-1 where a key is missing), then sizes by bincount: no strings
        # are built per line, only one label per group.
        ngroup = keys.groupby(lv.keys, dropna=True, sort=False).ngroup()
        code = np.nan_to_num(ngroup.to_numpy(dtype=float), nan=-1).astype(np.int64)
        complete = (code >= 0) & ~placed
        if not complete.any():
            continue
        size = np.bincount(code[complete], minlength=code.max() + 1)[np.maximum(code, 0)]
        take = complete & ((size >= min_peers) | (not lv.fallback) | last)
        first = pd.Series(np.arange(n)).groupby(code).first()
        first = first[first.index >= 0]
        names = keys[lv.keys].iloc[first.to_numpy()].astype(str).agg("/".join, axis=1)
        lookup = np.empty(code.max() + 1, dtype=object)
        lookup[first.index.to_numpy()] = names.to_numpy()
        label = np.where(take, lookup[np.maximum(code, 0)], label)
        level = np.where(take, i, level)
        placed |= take
    feature_set = np.where(lump, LUMP_SUM, category.to_numpy(dtype=object))
    label = np.where(lump, LUMP_SUM, label)
    return pd.DataFrame({"feature_set": feature_set, "group": label, "level": level},
                        index=items.index)
