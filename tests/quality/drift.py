"""A held-out corpus of tenders spread over 2024 while prices drift, written for measuring
issue-level quality (dated prices, capacity from the tender, peers of the same period).

Independent of ``iccaudit.samples`` (its own items, wording, prices and planting): the
market prices come from the domain notes (an 8×H100 server ≈¥2.75 M in 2024-01 falling to
≈¥2.4 M by 2024-12, linearly here; cold plate ≈¥5–6 k/kW; a 64-port NDR switch $36–50 k;
all-flash storage ¥1.5–4 k per usable TB; ConnectX-7 ¥10–20 k), with a 3 % spread between
suppliers. Planted, each labelled by file and line:

- ``head_module_split``: machine head + GPU module priced at 0.98–1.0 × the month's complete
  server; legitimate pairs at an 8–12 % discount (``legit_pair``);
- ``liquid_cooling_markup``: cold-plate systems at 2–10 × their worth, half of them stating no
  capacity (the tender's servers imply it); legitimate ones at 0.9–1.25 × (``legit_cooling``);
- ``price_outlier``: switches, NICs, storage, optics and H100 servers at 1.5–2.5 × the
  month's market price (``model_target``: what the outlier models alone should catch).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

START, END = dt.date(2024, 1, 1), dt.date(2024, 12, 1)
H100_JAN, H100_DEC = 2_750_000, 2_400_000
BRANDS = ["浪潮", "新华三", "超聚变", "宁畅", "联想"]
HEADER = ["序号", "项目编号", "货物名称", "品牌", "规格型号", "数量", "单位", "单价(元)",
          "金额(元)", "制冷量(kW)", "合同日期"]

#: kind -> (name, spec, unit, price at 2024-01, price at 2024-12, quantity range)
KINDS: dict[str, tuple[str, str, str, float, float, tuple[int, int]]] = {
    "switch": ("InfiniBand交换机", "Quantum-2 QM9700，64口NDR 400Gb/s", "台", 300_000, 290_000,
               (2, 8)),
    "nic": ("网卡", "ConnectX-7 单口400G OSFP", "块", 15_000, 14_000, (16, 128)),
    "storage": ("全闪分布式存储", "可用容量500TB，含3年维保", "套", 1_250_000, 1_200_000, (1, 3)),
    "optics": ("光模块", "400G OSFP SR4 多模", "个", 6_500, 5_200, (64, 512)),
    "rack": ("服务器机柜", "42U 600×1200，含PDU", "台", 12_000, 12_000, (10, 40)),
}


def _h100(on: pd.Series) -> np.ndarray:
    w = (pd.to_datetime(on) - pd.Timestamp(START)).dt.days / (END - START).days
    return (H100_JAN + np.clip(w, 0, None) * (H100_DEC - H100_JAN)).to_numpy()


def _drift(on: pd.Series, jan: float, dec: float) -> np.ndarray:
    w = (pd.to_datetime(on) - pd.Timestamp(START)).dt.days / (END - START).days
    return (jan + np.clip(w, 0, None) * (dec - jan)).to_numpy()


def write_drift_corpus(out: Path, seed: int = 0, tenders: int = 60,
                       spread: float = 0.03) -> pd.DataFrame:
    """Write one CSV per tender into ``out`` and return the labels (file, line_no, label);
    ``spread``: the standard deviation of suppliers' prices around the market (relative)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    days = rng.integers(3, (END - START).days + 25, tenders)
    dates = pd.Series([START + dt.timedelta(days=int(d)) for d in days])
    rows: list[pd.DataFrame] = []
    for t in range(tenders):
        on = dates[t]
        tid = f"DRIFT-{seed}-{t:03d}"
        lines: list[dict[str, object]] = []

        def add(name: str, spec: str, unit: str, qty: int, price: float, label: str = "",
                brand: str = "", kw: float | None = None,
                out: list[dict[str, object]] = lines) -> None:
            out.append({"货物名称": name, "规格型号": spec, "单位": unit, "数量": qty,
                          "单价(元)": round(price, -2), "品牌": brand, "制冷量(kW)": kw,
                          "label": label})

        market = _h100(pd.Series([on]))[0]
        servers = int(rng.integers(4, 33))
        kind = rng.random()
        if kind < 0.55:  # complete servers
            price = market * rng.normal(1, spread)
            label = ""
            if rng.random() < 0.12:
                price, label = market * rng.uniform(1.5, 2.5), "model_target"
            add("GPU服务器", "8×NVIDIA H100 SXM5 80GB，2×8480+，2TB", "台", servers, price,
                label, brand=str(rng.choice(BRANDS)))
        else:  # head + module
            head = rng.uniform(400_000, 450_000)
            if rng.random() < 0.5:
                total, label = market * rng.uniform(0.98, 1.0), "head_module_split"
            else:
                total, label = market * (1 - rng.uniform(0.08, 0.12)), "legit_pair"
            add("GPU服务器机头", "2×Xeon 8480+，2TB DDR5，含电源及8×400G网卡", "台", servers,
                head, label, brand=str(rng.choice(BRANDS)))
            add("HGX GPU模组", "HGX H100 8-GPU 80GB", "套", servers, total - head, label)
        # cooling for about half the tenders
        if rng.random() < 0.5:
            true_kw = servers * 8 * 0.7 * 1.6 * 1.2
            factor, label = rng.uniform(0.9, 1.25), "legit_cooling"
            if rng.random() < 0.4:
                factor, label = rng.uniform(2, 10), "liquid_cooling_markup"
            stated = rng.random() < 0.5
            add("冷板式液冷系统", "含CDU、二次侧管路及安装调试" if not stated else
                f"冷板式，制冷量{true_kw:.0f}kW，含CDU", "套", 1, 5_500 * true_kw * factor,
                label, kw=round(true_kw) if stated else None)
        for k in rng.choice(list(KINDS), size=int(rng.integers(2, 5)), replace=False):
            name, spec, unit, jan, dec, (lo, hi) = KINDS[k]
            price = _drift(pd.Series([on]), jan, dec)[0] * rng.normal(1, spread)
            label = ""
            if rng.random() < 0.1:
                price, label = price * rng.uniform(1.5, 2.5), "model_target"
            add(name, spec, unit, int(rng.integers(lo, hi + 1)), price, label)
        df = pd.DataFrame(lines)
        df.insert(0, "序号", range(1, len(df) + 1))
        df.insert(1, "项目编号", tid)
        df["金额(元)"] = df["数量"] * df["单价(元)"]
        df["合同日期"] = on.isoformat()
        name = f"{tid}.csv"
        df[HEADER].to_csv(out / name, index=False, encoding="utf-8")
        rows.append(pd.DataFrame({"file": name, "line_no": df["序号"].astype(str),
                                  "label": df["label"]}))
    labels = pd.concat(rows, ignore_index=True)
    return labels[labels["label"] != ""].reset_index(drop=True)
