"""Score every line against its peer group with the detector ensemble.

One loop per peer group (81 groups in a million generated lines), vectorised inside; never a
loop per line. Results go straight into arrays of one value per line, and the frame of lines is
built once at the end (text columns as categoricals: a million lines share a few labels).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from iccaudit.detect.models.config import ModelSettings
from iccaudit.detect.models.detectors import OutlierDetector, combine, normalise, warm_up
from iccaudit.detect.models.features import (
    FEATURES,
    LUMP_SUM,
    Groups,
    Items,
    _col,
    assign_groups,
    column_names,
    compute_features,
    encode,
    item_kind,
    num_rows,
)


class Scored:
    """What :func:`score_items` found.

    ``lines``: one row per evaluated line, by group label then item_id (item_id, group,
    feature_set, peers, score, price_feature, price_value, peer_median, median_peers, ratio,
    flagged, severity, est_excess_cny); the text columns are categoricals. Built on first
    use: the pipeline needs only :meth:`flagged_lines` (1 % of the lines), and a frame of ten
    million rows costs a second.
    ``drivers``: for flagged lines only, one row per (line, feature) with value, group median,
    robust z and whether the value was imputed.
    ``groups``: one row per peer group (group, feature_set, lines, status, error, hits,
    features, dropped).
    """

    def __init__(self, drivers: pd.DataFrame, groups: pd.DataFrame,
                 build_lines: Callable[[bool], pd.DataFrame]) -> None:
        self.drivers = drivers
        self.groups = groups
        self._build_lines = build_lines

    @cached_property
    def lines(self) -> pd.DataFrame:
        """Every evaluated line (see the class)."""
        return self._build_lines(False)

    def flagged_lines(self) -> pd.DataFrame:
        """The rows of :attr:`lines` that are flagged, built without the others."""
        return self._build_lines(True)


def _robust_z(x: np.ndarray, med: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(x - median) / scale per column (0 where the scale is 0); ``scale`` is the group's
    :func:`_robust_scale`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, (x - med) / scale, 0.0)
    return z


def _robust_scale(x: np.ndarray, med: np.ndarray) -> np.ndarray:
    """The robust spread of each column of a group: 1.4826 MAD, else 1.2533 mean absolute
    deviation (when more than half the values are the median)."""
    dev = np.abs(x - med)
    scale: np.ndarray = 1.4826 * np.median(dev, axis=0)
    return np.where(scale > 0, scale, 1.2533 * dev.mean(axis=0))


def _flagged(score: np.ndarray, ratio: np.ndarray, log_ratio: np.ndarray, scale: np.ndarray,
             settings: ModelSettings) -> np.ndarray:
    """Lines that are findings: a high ensemble score and a price above the peers; or, with
    ``price_led``, a price far above the peers both in ratio and in the group's own spread,
    at a lower score."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = (score >= settings.score_threshold) & (
            ratio >= settings.min_price_ratio)
        led = settings.price_led
        if led is not None:
            z = np.where(scale > 0, log_ratio / scale, np.inf)
            out |= (score >= led.min_score) & (ratio >= led.min_ratio) & (z >= led.min_z)
    return out


def _severity(score: np.ndarray, ratio: np.ndarray, settings: ModelSettings) -> np.ndarray:
    """Index of the first calibration row whose minimums the line meets (the last catches all)."""
    conds = [(score >= lv.min_score) & (ratio >= lv.min_ratio) for lv in settings.severity]
    return np.select(conds, np.arange(len(conds)), default=len(conds) - 1)


def score_items(items: Items, settings: ModelSettings, seed: int = 0) -> Scored:
    """Score the lines of an ``items``-shaped Arrow table or frame; see :class:`Scored`."""
    n = num_rows(items)
    fsets = {name: settings.feature_set(name) for name in settings.categories}
    wanted = sorted({f for fs in fsets.values() for f in [*fs.price_features, *fs.features]})
    feats = compute_features(items, wanted)
    lump = _lump_to_own_group(items, settings, feats)
    kinds = item_kind(items)
    item_ids = (items.column("item_id") if isinstance(items, pa.Table)
                else items["item_id"]).to_numpy()
    groups = assign_groups(items, settings.group_levels, settings.min_peers, lump, kinds,
                           item_ids)
    unit_price = _col(items, "unit_price_cny")
    quantity = _col(items, "quantity")
    near_peers = _col(items, "peer_count_90d")
    del items  # everything below works on the arrays; the caller may have handed it over

    # One slot per line in group order (slot k is line groups.order[k]), filled group by
    # group with slices: the lines frame comes out grouped, with no reordering at the end.
    evaluated = np.zeros(n, dtype=bool)
    score = np.full(n, np.nan)
    pf_code = np.full(n, -1, dtype=np.int64)  # index into FEATURE_NAMES, -1 = no price feature
    price_value = np.full(n, np.nan)
    peer_median = np.full(n, np.nan)
    median_peers = np.zeros(n, dtype=np.int64)
    ratio = np.full(n, np.nan)
    excess = np.full(n, np.nan)
    flag = np.zeros(n, dtype=bool)
    feature_names = list(FEATURES)

    def score_group(g: int) -> tuple[dict[str, object], pd.DataFrame | None]:
        """Score group ``g`` into its slots; its rule_runs row and drivers (flagged lines)."""
        label = groups.labels[g]
        span = slice(groups.bounds[g], groups.bounds[g + 1])
        idx = groups.order[span]
        fs_name = groups.feature_set[g]
        fs = settings.feature_set(fs_name)
        row = {"group": label, "feature_set": fs_name, "lines": len(idx), "status": "ok",
               "error": None, "hits": 0, "features": "", "dropped": ""}
        if len(idx) < settings.min_peers:
            row.update(status="not_evaluated",
                       error=f"{len(idx)} line(s) in group, fewer than min_peers "
                             f"{settings.min_peers}: not compared")
            return row, None
        names = list(dict.fromkeys([*fs.price_features, *fs.features]))
        cols, dropped, columns = [], [], []
        for name in names:
            x = feats[name][idx]
            ok = ~np.isnan(x)
            if not ok.any():
                dropped.append(f"{name}: missing for the whole group")
            elif np.nanmax(x) == np.nanmin(x):
                dropped.append(f"{name}: constant")
            else:
                cols.append(name)
                columns.append(x)
        row.update(features=",".join(cols), dropped="; ".join(dropped))
        if not cols:
            row.update(status="not_evaluated", error="no usable feature in this group")
            return row, None
        raw = np.column_stack(columns)
        del columns
        missing = np.isnan(raw)
        any_missing = missing.any(axis=0)
        # nanmedian copies and partitions around NaN: only worth it for columns with gaps.
        med = np.median(raw, axis=0)
        if any_missing.any():
            med[any_missing] = np.nanmedian(raw[:, any_missing], axis=0)
        # Missing values take the group median (a neutral value for every detector), and the
        # evidence says so; a zero would be a made-up price.
        X = np.where(missing, med, raw) if any_missing.any() else raw
        norm = [
            normalise(
                OutlierDetector(
                    detector=name, contamination=settings.contamination, random_state=seed,
                    params=settings.detector_params.get(name),
                ).fit(X).decision_scores_,
                settings.normalise,
            )
            for name in settings.ensemble
        ]
        g_score = np.clip(combine(norm, settings.combine), 0.0, 1.0)

        # The price feature of each line: the first of the preference list it actually has.
        price_cols = [cols.index(p) for p in fs.price_features if p in cols]
        pf = np.full(len(idx), -1)
        for j in reversed(price_cols):
            pf = np.where(~missing[:, j], j, pf)
        has_price = pf >= 0
        pf_safe = np.where(has_price, pf, 0)
        rows = np.arange(len(idx))
        # The peer median of a line: the lines of the same item kind in its group when there
        # are enough of them (a 12 k management switch is not compared with the median of a
        # group that also holds 310 k InfiniBand switches), else the whole group.
        local_med, local_n = _local_medians(raw, med, kinds.codes[idx], settings.min_median_peers)
        # a relative price feature (price / same-period peer median) is its own ratio
        relative = np.array([FEATURES[c].relative for c in cols])[pf_safe] & has_price
        line_med = np.where(relative, 0.0, local_med[rows, pf_safe])
        line_n = np.where(relative, np.nan_to_num(near_peers[idx]).astype(np.int64),
                          local_n[rows, pf_safe])
        g_log_ratio = np.where(has_price, X[rows, pf_safe] - line_med, np.nan)
        g_ratio = np.exp(g_log_ratio)
        scale = _robust_scale(X, med)  # the group's spread: the price-led test and the z values
        flagged = _flagged(g_score, g_ratio, g_log_ratio, scale[pf_safe], settings)
        is_price = np.array([FEATURES[c].price for c in cols])[pf_safe] & has_price
        # Excess is only in money when the feature is proportional to the unit price: the line
        # at its peers' median would have cost unit_price / ratio per unit.
        with np.errstate(invalid="ignore", divide="ignore"):
            g_excess = np.where(is_price & (g_ratio > 1),
                                unit_price[idx] * quantity[idx] * (1 - 1 / g_ratio), np.nan)
        row["hits"] = int(flagged.sum())
        evaluated[span] = True
        score[span] = g_score
        col_codes = np.array([feature_names.index(c) for c in cols])
        pf_code[span] = np.where(has_price, col_codes[pf_safe], -1)
        price_value[span] = np.where(has_price, np.exp(X[rows, pf_safe]), np.nan)
        peer_median[span] = np.where(has_price, np.exp(line_med), np.nan)
        median_peers[span] = np.where(has_price, line_n, 0)
        ratio[span] = g_ratio
        excess[span] = g_excess
        flag[span] = flagged
        if not flagged.any():
            return row, None
        f_rows = np.flatnonzero(flagged)
        k = len(cols)
        # The robust scale needs the whole group; the z values only the flagged lines.
        z = np.where(missing[f_rows], 0.0, _robust_z(X[f_rows], med, scale))
        return row, pd.DataFrame({
            "item_id": np.repeat(item_ids[idx][f_rows], k),
            "feature": np.tile(np.array(cols, dtype=object), len(f_rows)),
            "value": np.where(missing[f_rows], np.nan, np.exp(raw[f_rows])).ravel(),
            "median": np.tile(np.exp(med), len(f_rows)),
            "z": z.ravel(),
            "imputed": missing[f_rows].ravel(),
        })

    # One thread: fitting groups in two threads was 1.6x faster on small arrays but 1.6x
    # slower at ten million lines (two big groups' sorts fight over memory bandwidth and the
    # second core that DuckDB and the other stages share).
    warm_up(settings.ensemble)  # first import / JIT here, not inside the first group's timing
    done = [score_group(g) for g in range(len(groups.labels))]
    group_rows = [row for row, _ in done]
    driver_parts = [drv for _, drv in done if drv is not None]
    groups_frame = pd.DataFrame(group_rows, columns=[
        "group", "feature_set", "lines", "status", "error", "hits", "features", "dropped"])
    slot_ids = item_ids[groups.order]

    def build_lines(flagged_only: bool) -> pd.DataFrame:
        keep = evaluated & flag if flagged_only else evaluated
        return _lines_frame(keep, slot_ids, groups, score, pf_code, feature_names,
                            price_value, peer_median, median_peers, ratio, excess, settings)

    drivers = (
        pd.concat(driver_parts, ignore_index=True) if driver_parts else
        pd.DataFrame({"item_id": pd.Series(dtype="int64"), "feature": pd.Series(dtype=object),
                      "value": pd.Series(dtype=float), "median": pd.Series(dtype=float),
                      "z": pd.Series(dtype=float), "imputed": pd.Series(dtype=bool)})
    )
    return Scored(drivers=drivers, groups=groups_frame, build_lines=build_lines)


def _lines_frame(
    keep: np.ndarray, item_ids: np.ndarray, groups: Groups, score: np.ndarray,
    pf_code: np.ndarray, feature_names: list[str], price_value: np.ndarray,
    peer_median: np.ndarray, median_peers: np.ndarray, ratio: np.ndarray,
    excess: np.ndarray, settings: ModelSettings,
) -> pd.DataFrame:
    """The ``keep`` lines as one frame; labels as categoricals over the few distinct ones.

    Every array is in group order (slot k is line ``groups.order[k]``).
    """
    ev = np.flatnonzero(keep)
    code = np.repeat(np.arange(len(groups.labels)), np.diff(groups.bounds))[ev]
    sizes = np.diff(groups.bounds)
    fs_cats = sorted(set(groups.feature_set.tolist()))
    fs_code = pd.Index(fs_cats).get_indexer(groups.feature_set)
    sc, rt = score[ev], ratio[ev]
    sev = _severity(sc, np.nan_to_num(rt), settings)
    sev_names = list(dict.fromkeys(lv.severity for lv in settings.severity))
    sev_code = np.array([sev_names.index(lv.severity) for lv in settings.severity])
    flagged = (sc >= settings.score_threshold) & (rt >= settings.min_price_ratio)
    # copy=False: the arrays are ours and fresh; pandas would copy every column again.
    return pd.DataFrame(copy=False, data={
        "item_id": item_ids[ev],
        "group": _categorical(code, groups.labels.tolist(), validate=False),
        "feature_set": _categorical(fs_code[code], fs_cats),
        "peers": sizes[code].astype(np.int64),
        "score": sc,
        "price_feature": _categorical(pf_code[ev], feature_names),
        "price_value": price_value[ev], "peer_median": peer_median[ev],
        "median_peers": median_peers[ev], "ratio": rt, "flagged": flagged,
        "severity": _categorical(sev_code[sev], sev_names),
        "est_excess_cny": excess[ev],
    })


def _categorical(codes: np.ndarray, categories: Sequence[str],
                 validate: bool = True) -> pd.Categorical:
    """``pd.Categorical.from_codes`` (its stubs take an Index of categories; pandas any list)."""
    out: pd.Categorical = pd.Categorical.from_codes(  # type: ignore[call-overload]
        codes, categories=categories, validate=validate)
    return out


def _lump_to_own_group(
    items: Items, settings: ModelSettings, feats: dict[str, np.ndarray]
) -> np.ndarray:
    """Lump-sum lines that have no price per kW / TB / card to compare: judged by share."""
    n = num_rows(items)
    if "is_lump_sum" not in column_names(items):
        return np.zeros(n, dtype=bool)
    lump = np.nan_to_num(_col(items, "is_lump_sum"), nan=0.0) != 0
    if not lump.any() or LUMP_SUM not in settings.categories:
        return np.zeros(n, dtype=bool)
    cats = encode(items, "category") if "category" in column_names(items) else None
    specific = np.zeros(n, dtype=bool)
    # One pass per category that has lump-sum lines (few), not per line.
    cat_codes = cats.codes if cats is not None else np.full(n, -1)
    for c in np.unique(cat_codes[lump]):
        cat = str(cats.values[c]) if cats is not None and c >= 0 else "other"
        fs = settings.feature_set(cat)
        rows = (cat_codes == c) & lump
        for name in fs.price_features:
            if name not in ("unit_price", "price_per_card", "value_share", "line_total"):
                specific |= rows & ~np.isnan(feats[name])
    own: np.ndarray = lump & ~specific
    return own


def _local_medians(
    raw: np.ndarray, med: np.ndarray, kinds: np.ndarray, min_n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per line and feature: median of its item kind when it has >= min_n values, else group.

    Returns (medians, counts) of shape ``raw.shape``; broadcast views when the group holds a
    single item kind (the kind's median is then the group's).
    """
    present = (~np.isnan(raw)).sum(axis=0)
    total = np.broadcast_to(present, raw.shape)
    if len(kinds) and kinds[0] >= 0 and (kinds == kinds[0]).all():
        # One kind: its median and count are the group's (same values, no group-by).
        return np.broadcast_to(med, raw.shape), total
    local = pd.factorize(kinds)[0]
    grouped = pd.DataFrame(raw).groupby(local, sort=False)
    kmed = grouped.median().to_numpy(dtype=float)
    kcnt = grouped.count().to_numpy(dtype=float)
    # groupby(sort=False) orders the kinds by first appearance, like factorize's codes.
    kmed, kcnt = kmed[local], kcnt[local]
    use = (kcnt >= min_n) & (kinds >= 0)[:, None]
    return np.where(use, kmed, med), np.where(use, kcnt, total)
