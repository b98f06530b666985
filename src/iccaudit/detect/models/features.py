"""Features of a line for the outlier models, and the peer groups the lines are compared in.

Every feature is the log of a positive quantity (prices are multiplicative: a 3x mark-up is
the same distance from the median for a ¥20 k NIC and a ¥2 M server). A value that is absent,
zero or negative is *missing* (NaN), never zero; the scorer imputes it with the group median
and records that in the evidence.

The models read the items as a narrow Arrow table (:func:`iccaudit.detect.models.read_items`);
a pandas frame with the same columns is accepted too (tests, the benchmark). Text columns are
never turned into one Python string per line: a peer key is an integer code per line plus its
few distinct values, so peer groups cost a handful of numpy passes at any size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


class GroupLevel(Protocol):
    """What grouping needs of a peer-group level (``config.GroupLevel`` is one): its key
    columns, and whether a line whose group is too small falls back to the next level. A
    protocol, so that the settings may name features without features importing settings."""

    @property
    def keys(self) -> list[str]: ...

    @property
    def fallback(self) -> bool: ...

#: What the model functions accept as items: a narrow Arrow table or a pandas frame.
Items = pa.Table | pd.DataFrame


def column_names(items: Items) -> list[str]:
    """Column names of an Arrow table or a pandas frame."""
    return list(items.column_names if isinstance(items, pa.Table) else items.columns)


def num_rows(items: Items) -> int:
    """Row count of an Arrow table or a pandas frame."""
    return items.num_rows if isinstance(items, pa.Table) else len(items)


def _col(items: Items | _Columns, name: str) -> np.ndarray:
    """A numeric column as float (NaN = missing), all-NaN when the items do not have it."""
    if isinstance(items, _Columns):
        return items[name] if name in items else np.full(items.n, np.nan)
    if name not in column_names(items):
        return np.full(num_rows(items), np.nan)
    if isinstance(items, pa.Table):
        col = items.column(name)
        t = col.type
        if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t):
            floats: np.ndarray = pc.cast(col, pa.float64()).to_numpy()  # nulls become NaN
            return floats
        series = col.to_pandas()
    else:
        series = items[name]
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        quotient: np.ndarray = a / b
    return quotient


def _cards_per_unit(items: Items | _Columns) -> np.ndarray:
    cpu = _col(items, "cards_per_unit")
    # Fall back to the line's card count over its quantity when cards_per_unit is not given.
    return np.where(np.isnan(cpu), _div(_col(items, "card_count"), _col(items, "quantity")), cpu)


def _price_per_kw(items: Items | _Columns) -> np.ndarray:
    ppk = _col(items, "price_per_kw")
    if not np.isnan(ppk).all():
        return ppk
    return _div(_col(items, "unit_price_cny"), _col(items, "capacity_kw"))


#: Near peers (same kind within the peer window) a same-period ratio needs besides the line
#: itself: with one other line the median is half the line's own price.
MIN_NEAR_PEERS = 3


def _ratio_to_near_peers(items: Items | _Columns) -> np.ndarray:
    ratio = _div(_col(items, "peer_price_cny"), _col(items, "peer_median_90d"))
    return np.where(_col(items, "peer_count_90d") >= MIN_NEAR_PEERS, ratio, np.nan)


@dataclass(frozen=True)
class Feature:
    """One feature: how to compute it and how to name it in a finding.

    ``price`` marks features proportional to the line's unit price (so an excess over the
    peer median converts to money); ``money`` marks values shown as ¥; ``mechanism`` names a
    more specific mechanism when this feature is the one that shows the line above its peers.
    ``columns`` are the item columns ``compute`` reads.
    """

    compute: Callable[[Items | _Columns], np.ndarray]
    zh: str
    en: str
    price: bool = False
    money: bool = False
    mechanism: str | None = None
    columns: tuple[str, ...] = ()
    #: already a ratio to peers (its peers' median is 1 by construction): a line's ratio is
    #: its value, not its value over the group's median of it
    relative: bool = False


#: Feature catalogue (names used in models.yaml). All are used on the log scale.
FEATURES: dict[str, Feature] = {
    "unit_price": Feature(lambda d: _col(d, "unit_price_cny"), "单价", "unit price",
                          price=True, money=True, columns=("unit_price_cny",)),
    "price_per_card": Feature(lambda d: _div(_col(d, "unit_price_cny"), _cards_per_unit(d)),
                              "每卡单价", "price per card", price=True, money=True,
                              columns=("unit_price_cny", "cards_per_unit", "card_count",
                                       "quantity")),
    "price_per_kw": Feature(_price_per_kw, "每千瓦单价", "price per kW", price=True, money=True,
                            mechanism="liquid_cooling_markup",
                            columns=("price_per_kw", "unit_price_cny", "capacity_kw")),
    "price_per_tb": Feature(lambda d: _div(_col(d, "unit_price_cny"), _col(d, "storage_tb")),
                            "每TB单价", "price per TB", price=True, money=True,
                            columns=("unit_price_cny", "storage_tb")),
    "ratio_to_ref": Feature(lambda d: _col(d, "ratio_to_ref_high"), "单价/参考价",
                            "price / reference", price=True, columns=("ratio_to_ref_high",)),
    "ratio_to_peer": Feature(lambda d: _col(d, "ratio_to_peer_median"), "单价/中位数",
                             "price / peer median", price=True,
                             columns=("ratio_to_peer_median",)),
    # the same kind bought within the peer window (params peer_window_days) of the line:
    # market drift within a year is not mistaken for mark-up, nor hides one
    "ratio_to_near_peers": Feature(_ratio_to_near_peers, "单价/同期中位数",
                                   "price / same-period peer median", price=True,
                                   columns=("peer_price_cny", "peer_median_90d",
                                            "peer_count_90d"), relative=True),
    "quantity": Feature(lambda d: _col(d, "quantity"), "数量", "quantity",
                        columns=("quantity",)),
    "value_share": Feature(lambda d: _col(d, "line_value_share"), "占标段金额比例",
                           "share of tender value", columns=("line_value_share",)),
    "line_total": Feature(lambda d: _col(d, "line_total_cny"), "行金额", "line total",
                          money=True, columns=("line_total_cny",)),
}

#: Category names for messages; unknown categories are shown as they are.
CATEGORY_ZH: dict[str, str] = {
    "gpu_server": "GPU服务器", "gpu_card": "GPU卡", "gpu_module": "GPU模组",
    "machine_head": "机头", "cooling": "制冷", "liquid_cooling": "液冷", "switch": "交换机",
    "nic": "网卡", "storage": "存储", "rack": "机柜", "optics": "光模块", "cable": "线缆",
    "server": "服务器", "cpu_server": "通用服务器", "power": "供配电", "ups": "UPS",
    "network": "网络设备", "rack_power": "机柜及供配电", "domestic_accelerator": "国产加速卡",
    "cooling_retrofit": "液冷改造", "service": "服务", "software": "软件",
    "lump_sum": "总价包干项", "other": "其他",
}

LUMP_SUM = "lump_sum"


class _Columns(dict[str, np.ndarray]):
    """Numeric item columns as float arrays, each converted once (features share columns)."""

    def __init__(self, items: Items, names: set[str]) -> None:
        present = set(column_names(items))
        super().__init__({c: _col(items, c) for c in sorted(names & present)})
        self.n = num_rows(items)


def compute_features(items: Items, names: list[str]) -> dict[str, np.ndarray]:
    """Log-scale feature arrays (NaN = missing) for the named features, for all lines at once."""
    columns = _Columns(items, {c for name in names for c in FEATURES[name].columns})
    out: dict[str, np.ndarray] = {}
    for name in names:
        raw = FEATURES[name].compute(columns)
        # log where positive and finite, NaN elsewhere: one pass, no temporary of logs
        ok = (raw > 0) & (raw < np.inf)
        out[name] = np.log(raw, out=np.full(len(raw), np.nan), where=ok)
    return out


@dataclass(frozen=True)
class Codes:
    """A text column as an integer code per line (-1 = missing) and its distinct values."""

    codes: np.ndarray
    values: np.ndarray


def encode(items: Items, name: str) -> Codes:
    """Dictionary-encode one column (set-at-a-time: Arrow or pandas hashing, no row loop)."""
    if isinstance(items, pa.Table):
        col = items.column(name)
        enc: pa.DictionaryArray | None
        if pa.types.is_dictionary(col.type):
            enc = cast(pa.DictionaryArray, col.unify_dictionaries().combine_chunks())
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            enc = col.combine_chunks().dictionary_encode()
        else:
            enc = None
        if enc is not None:
            codes = enc.indices.fill_null(-1).to_numpy().astype(np.int64)
            return Codes(codes, enc.dictionary.to_numpy(zero_copy_only=False).astype(object))
        series = col.to_pandas()
    else:
        series = items[name]
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    # Labels are text: the peer-group names join the key values with "/".
    return Codes(codes.astype(np.int64), np.asarray(uniques, dtype=object).astype(str))


def item_kind(items: Items) -> Codes:
    """Normalised item name (lower case, no spaces or bracketed asides): a finer peer key."""
    if "item_name" not in column_names(items):
        return Codes(np.full(num_rows(items), -1, dtype=np.int64), np.array([], dtype=object))
    names = encode(items, "item_name")
    # Names repeat a lot: normalise the distinct ones and map back (set-at-a-time, cheap).
    norm = pd.Series(names.values, dtype="string").str.lower()
    norm = norm.str.replace(r"[(\[（【][^)\]）】]*[)\]）】]", "", regex=True)
    norm = norm.str.replace(r"\s+", "", regex=True)
    norm = norm.where(norm.str.len() > 0)
    kind_of_name, kinds = pd.factorize(norm, use_na_sentinel=True)
    lut = np.append(kind_of_name.astype(np.int64), -1)  # index -1 (no name) -> no kind
    return Codes(lut[names.codes], np.asarray(kinds, dtype=object))


def _category(items: Items) -> Codes:
    """Category codes, a missing category being ``other`` (like an unknown one)."""
    if "category" not in column_names(items):
        return Codes(np.zeros(num_rows(items), dtype=np.int64), np.array(["other"], dtype=object))
    cat = encode(items, "category")
    if (cat.codes >= 0).all():
        return cat
    values = list(cat.values)
    other = values.index("other") if "other" in values else len(values)
    if other == len(values):
        values.append("other")
    return Codes(np.where(cat.codes >= 0, cat.codes, other), np.array(values, dtype=object))


def _combine(keys: list[Codes]) -> np.ndarray:
    """One dense code per distinct combination of key codes (-1 when a key is missing).

    Codes are numbered in order of first appearance (pandas factorize without sorting), which
    :func:`_first_rows` relies on.
    """
    valid = keys[0].codes >= 0
    comb = np.maximum(keys[0].codes, 0)
    span = len(keys[0].values) + 1
    for k in keys[1:]:
        valid &= k.codes >= 0
        radix = len(k.values) + 1
        if span * radix >= 2**62:  # re-densify before the mixed-radix number could overflow
            comb = pd.factorize(comb)[0].astype(np.int64)
            span = int(comb.max()) + 1
        comb = comb * radix + np.maximum(k.codes, 0)
        span *= radix
    out = np.full(len(comb), -1, dtype=np.int64)
    out[valid] = pd.factorize(comb[valid])[0]
    return out


def _first_rows(code: np.ndarray) -> np.ndarray:
    """Row of the first appearance of each code 0..max, for codes numbered by appearance."""
    prev_max = np.maximum.accumulate(np.concatenate([[-1], code[:-1]]))
    return np.flatnonzero(code > prev_max)


def id_order(ids: np.ndarray) -> np.ndarray | None:
    """Positions of ``ids`` in ascending order, or None when they already are in order."""
    n = len(ids)
    if n < 2 or (ids[1:] >= ids[:-1]).all():
        return None
    lo = ids.min()
    if ids.max() - lo + 1 == n:
        # Ids numbered 1..n by the store: a counting sort, checked (a duplicate leaves a hole).
        order = np.zeros(n, dtype=np.int64)
        order[ids - lo] = np.arange(n)
        if (ids[order] == np.arange(lo, lo + n)).all():
            return order
    return np.argsort(ids, kind="stable")


@dataclass(frozen=True)
class Groups:
    """Peer group of every line.

    Attributes
    ----------
    code : ndarray of int64, one per line
        Index into ``labels``.
    labels : ndarray of str
        Group labels (``category/key/...``), sorted.
    feature_set : ndarray of str, one per group
        Feature set of the group's first line: its category, or ``lump_sum``.
    level : ndarray of int, one per line
        Index of the group level the line was placed at.
    order, bounds : ndarray of int
        Lines sorted by group, then by ``item_ids`` when given (else by position); group ``g``
        is ``order[bounds[g]:bounds[g + 1]]``.
    """

    code: np.ndarray
    labels: np.ndarray
    feature_set: np.ndarray
    level: np.ndarray
    order: np.ndarray
    bounds: np.ndarray


def assign_groups(
    items: Items, levels: Sequence[GroupLevel], min_peers: int,
    lump_to_own_group: np.ndarray | None = None, kinds: Codes | None = None,
    item_ids: np.ndarray | None = None,
) -> Groups:
    """Peer group of every line; see :class:`Groups`.

    Levels are tried finest first. A line takes the first level whose key columns it has and
    whose group has at least ``min_peers`` lines; at a level with ``fallback: false`` it stays
    even when the group is too small (a line with a known accelerator model is compared only
    with the same model: mixing an H100 server with 4090 servers would flag every H100). The
    last level takes every line left. Lump-sum lines (项/批) without a per-kW or per-TB price
    have no unit-price peers and form their own group, judged by their share of the tender.
    """
    n = num_rows(items)
    present = set(column_names(items))
    category = _category(items)
    keys: dict[str, Codes] = {"category": category}
    lump = np.zeros(n, dtype=bool) if lump_to_own_group is None else lump_to_own_group
    # Label candidates: per level, the label of each taken key combination; a line points at
    # one candidate (offset + code). Identical labels from different levels are one group,
    # as when the labels themselves were grouped.
    candidates: list[np.ndarray] = [category.values, np.array([LUMP_SUM], dtype=object)]
    offset = len(category.values) + 1
    pointer = np.where(lump, len(category.values), category.codes).astype(np.int64)
    level = np.full(n, len(levels) - 1)
    placed = lump.copy()
    for i, lv in enumerate(levels):
        for k in lv.keys:
            if k not in keys and (k in present or k == "item_kind"):
                keys[k] = (kinds if kinds is not None else item_kind(items)) \
                    if k == "item_kind" else encode(items, k)
        if any(k not in keys for k in lv.keys):
            continue  # the items lack a key column: this level never applies
        last = i == len(levels) - 1
        # Only the lines no finer level took: most lines are placed by the first levels.
        rest = np.flatnonzero(~placed)
        if not len(rest):
            break
        sub = ([keys[k] for k in lv.keys] if len(rest) == n else
               [Codes(keys[k].codes[rest], keys[k].values) for k in lv.keys])
        code = _combine(sub)
        complete = code >= 0
        if not complete.any():
            continue
        size = np.bincount(code[complete])
        take = complete & ((size[np.maximum(code, 0)] >= min_peers) | (not lv.fallback) | last)
        first = _first_rows(code)
        parts = [pd.Series(k.values[k.codes[first]], dtype=object) for k in sub]
        # A list of Series is a valid ``others`` (pandas docs); the stubs only list list[str].
        names = (parts[0].str.cat(parts[1:], sep="/")  # type: ignore[arg-type]
                 if len(parts) > 1 else parts[0])
        candidates.append(names.to_numpy(dtype=object))
        taken = rest[take]
        pointer[taken] = offset + code[take]
        level[taken] = i
        offset += len(first)
        placed[taken] = True
    labels_of, labels = pd.factorize(np.concatenate(candidates), sort=True)
    code = labels_of[pointer]
    # Keep the labels some line has, renumbered in sorted order.
    used = np.bincount(code, minlength=len(labels)) > 0
    code = (np.cumsum(used) - 1)[code]
    # Lines of a group in item_id order: what the detectors see does not depend on the order
    # the view returned the rows in. A radix sort of small codes after one sort by id.
    by_id = id_order(item_ids) if item_ids is not None else None
    small = code.astype(np.int16 if len(labels) < 2**15 else np.int64)
    order = (np.argsort(small, kind="stable") if by_id is None
             else by_id[np.argsort(small[by_id], kind="stable")])
    bounds = np.searchsorted(code[order], np.arange(int(used.sum()) + 1))
    fs_line = np.where(lump, len(category.values), category.codes)
    fs_values = np.append(category.values, LUMP_SUM)
    return Groups(code=code, labels=np.asarray(labels, dtype=object)[used],
                  feature_set=fs_values[fs_line[order[bounds[:-1]]]], level=level,
                  order=order, bounds=bounds)
