"""Score every line against its peer group with the detector ensemble.

One loop per peer group (tens of groups), vectorised inside; never a loop per line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from iccaudit.detect.models.config import ModelSettings
from iccaudit.detect.models.detectors import OutlierDetector, combine, normalise
from iccaudit.detect.models.features import (
    FEATURES,
    LUMP_SUM,
    assign_groups,
    compute_features,
    item_kind,
)


@dataclass
class Scored:
    """What :func:`score_items` found.

    ``lines``: one row per evaluated line (item_id, group, peers, score, price_feature,
    price_value, peer_median, ratio, flagged, severity, est_excess_cny).
    ``drivers``: for flagged lines only, one row per (line, feature) with value, group median,
    robust z and whether the value was imputed.
    ``groups``: one row per peer group (group, feature_set, lines, status, error, hits,
    features, dropped).
    """

    lines: pd.DataFrame
    drivers: pd.DataFrame
    groups: pd.DataFrame


def _robust_z(x: np.ndarray, med: np.ndarray) -> np.ndarray:
    """(x - median) / scale per column; scale = 1.4826 MAD, else 1.2533 mean abs deviation."""
    dev = np.abs(x - med)
    scale = 1.4826 * np.median(dev, axis=0)
    mean_ad = 1.2533 * dev.mean(axis=0)
    scale = np.where(scale > 0, scale, mean_ad)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, (x - med) / scale, 0.0)
    return z


def _severity(score: np.ndarray, ratio: np.ndarray, settings: ModelSettings) -> np.ndarray:
    """First calibration row whose minimums the line meets (the last row catches the rest)."""
    conds = [(score >= lv.min_score) & (ratio >= lv.min_ratio) for lv in settings.severity]
    return np.select(conds, [lv.severity for lv in settings.severity], default="low")


def score_items(items: pd.DataFrame, settings: ModelSettings, seed: int = 0) -> Scored:
    """Score the lines of an ``items``-shaped frame; see :class:`Scored` for the result."""
    fsets = {name: settings.feature_set(name) for name in settings.categories}
    wanted = sorted({f for fs in fsets.values() for f in [*fs.price_features, *fs.features]})
    feats = compute_features(items, wanted)
    lump = _lump_to_own_group(items, settings, feats)
    kind_series = item_kind(items)
    groups = assign_groups(items, settings.group_levels, settings.min_peers, lump, kind_series)
    kinds = pd.factorize(kind_series, use_na_sentinel=True)[0]  # -1 = no item name
    item_ids = items["item_id"].to_numpy()
    unit_price = pd.to_numeric(items["unit_price_cny"], errors="coerce").to_numpy(dtype=float)
    quantity = pd.to_numeric(items["quantity"], errors="coerce").to_numpy(dtype=float)

    line_parts: list[pd.DataFrame] = []
    driver_parts: list[pd.DataFrame] = []
    group_rows: list[dict] = []
    codes, labels = pd.factorize(groups["group"], sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    for g, label in enumerate(labels):
        idx = order[bounds[g]:bounds[g + 1]]
        fs_name = groups["feature_set"].iloc[idx[0]]
        fs = settings.feature_set(fs_name)
        row = {"group": label, "feature_set": fs_name, "lines": len(idx), "status": "ok",
               "error": None, "hits": 0, "features": "", "dropped": ""}
        group_rows.append(row)
        if len(idx) < settings.min_peers:
            row.update(status="not_evaluated",
                       error=f"{len(idx)} line(s) in group, fewer than min_peers "
                             f"{settings.min_peers}: not compared")
            continue
        names = list(dict.fromkeys([*fs.price_features, *fs.features]))
        cols, dropped = [], []
        for name in names:
            x = feats[name][idx]
            ok = ~np.isnan(x)
            if not ok.any():
                dropped.append(f"{name}: missing for the whole group")
            elif np.nanmax(x) == np.nanmin(x):
                dropped.append(f"{name}: constant")
            else:
                cols.append(name)
        row.update(features=",".join(cols), dropped="; ".join(dropped))
        if not cols:
            row.update(status="not_evaluated", error="no usable feature in this group")
            continue
        raw = np.column_stack([feats[c][idx] for c in cols])
        missing = np.isnan(raw)
        med = np.nanmedian(raw, axis=0)
        # Missing values take the group median (a neutral value for every detector), and the
        # evidence says so; a zero would be a made-up price.
        X = np.where(missing, med, raw)
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
        score = np.clip(combine(norm, settings.combine), 0.0, 1.0)
        z = np.where(missing, 0.0, _robust_z(X, med))

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
        local_med, local_n = _local_medians(raw, med, kinds[idx], settings.min_median_peers)
        line_med = local_med[rows, pf_safe]
        log_ratio = np.where(has_price, X[rows, pf_safe] - line_med, np.nan)
        ratio = np.exp(log_ratio)
        flagged = (score >= settings.score_threshold) & (ratio >= settings.min_price_ratio)
        pf_name = np.array(cols, dtype=object)[pf_safe]
        is_price = np.array([FEATURES[c].price for c in cols])[pf_safe] & has_price
        # Excess is only in money when the feature is proportional to the unit price: the line
        # at its peers' median would have cost unit_price / ratio per unit.
        up, q = unit_price[idx], quantity[idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = np.where(is_price & (ratio > 1), up * q * (1 - 1 / ratio), np.nan)
        row["hits"] = int(flagged.sum())
        line_parts.append(pd.DataFrame({
            "item_id": item_ids[idx], "group_no": g,
            "peers": len(idx), "score": score,
            "price_feature": np.where(has_price, pf_name, None),
            "price_value": np.where(has_price, np.exp(X[rows, pf_safe]), np.nan),
            "peer_median": np.where(has_price, np.exp(line_med), np.nan),
            "median_peers": np.where(has_price, local_n[rows, pf_safe], 0),
            "ratio": ratio, "flagged": flagged,
            "severity": _severity(score, np.nan_to_num(ratio), settings),
            "est_excess_cny": excess,
        }))
        if flagged.any():
            f_rows = np.flatnonzero(flagged)
            k = len(cols)
            driver_parts.append(pd.DataFrame({
                "item_id": np.repeat(item_ids[idx][f_rows], k),
                "feature": np.tile(np.array(cols, dtype=object), len(f_rows)),
                "value": np.where(missing[f_rows], np.nan, np.exp(raw[f_rows])).ravel(),
                "median": np.tile(np.exp(med), len(f_rows)),
                "z": z[f_rows].ravel(),
                "imputed": missing[f_rows].ravel(),
            }))
    groups_frame = pd.DataFrame(group_rows)
    if line_parts:
        lines = pd.concat(line_parts, ignore_index=True)
        # Labels once per group, not built per line.
        lines.insert(1, "group", groups_frame["group"].to_numpy(dtype=object)[lines["group_no"]])
        lines.insert(2, "feature_set",
                     groups_frame["feature_set"].to_numpy(dtype=object)[lines["group_no"]])
        lines = lines.drop(columns="group_no")
    else:
        lines = _empty_lines()
    drivers = (
        pd.concat(driver_parts, ignore_index=True) if driver_parts else
        pd.DataFrame({"item_id": pd.Series(dtype="int64"), "feature": pd.Series(dtype=object),
                      "value": pd.Series(dtype=float), "median": pd.Series(dtype=float),
                      "z": pd.Series(dtype=float), "imputed": pd.Series(dtype=bool)})
    )
    return Scored(lines=lines, drivers=drivers, groups=groups_frame)


def _lump_to_own_group(
    items: pd.DataFrame, settings: ModelSettings, feats: dict[str, np.ndarray]
) -> np.ndarray:
    """Lump-sum lines that have no price per kW / TB / card to compare: judged by share."""
    if "is_lump_sum" not in items.columns:
        return np.zeros(len(items), dtype=bool)
    lump = items["is_lump_sum"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    cats = (items["category"].astype("string").fillna("other") if "category" in items.columns
            else pd.Series("other", index=items.index))
    specific = np.zeros(len(items), dtype=bool)
    for cat in cats[lump].unique():
        fs = settings.feature_set(str(cat))
        rows = (cats == cat).to_numpy() & lump
        for name in fs.price_features:
            if name not in ("unit_price", "price_per_card", "value_share", "line_total"):
                specific |= rows & ~np.isnan(feats[name])
    return lump & ~specific & (LUMP_SUM in settings.categories)


def _local_medians(
    raw: np.ndarray, med: np.ndarray, kinds: np.ndarray, min_n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per line and feature: median of its item kind when it has >= min_n values, else group."""
    grouped = pd.DataFrame(raw).groupby(kinds)
    kmed = grouped.transform("median").to_numpy(dtype=float)
    kcnt = grouped.transform("count").to_numpy(dtype=float)
    use = (kcnt >= min_n) & (kinds >= 0)[:, None]
    total = np.broadcast_to((~np.isnan(raw)).sum(axis=0), raw.shape)
    return np.where(use, kmed, med), np.where(use, kcnt, total)


def _empty_lines() -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": pd.Series(dtype="int64"), "group": pd.Series(dtype=object),
        "feature_set": pd.Series(dtype=object), "peers": pd.Series(dtype="int64"),
        "score": pd.Series(dtype=float), "price_feature": pd.Series(dtype=object),
        "price_value": pd.Series(dtype=float), "peer_median": pd.Series(dtype=float),
        "median_peers": pd.Series(dtype="int64"),
        "ratio": pd.Series(dtype=float), "flagged": pd.Series(dtype=bool),
        "severity": pd.Series(dtype=object), "est_excess_cny": pd.Series(dtype=float),
    })
