"""Peer statistics (checked against pandas), serial reuse, duplicate lines."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from tests.enrich.conftest import line


def _peer_reference(items: pd.DataFrame) -> pd.DataFrame:
    """Peer statistics computed independently in pandas from the SQL's documented semantics."""
    df = items[["item_id", "category", "peer_key", "peer_basis", "peer_price_cny"]].copy()
    ok = df["peer_price_cny"].notna() & (df["peer_price_cny"] > 0)
    out = pd.DataFrame({"item_id": df["item_id"]})
    out["peer_count"] = np.nan
    out["peer_median"] = np.nan
    out["robust_z"] = np.nan
    for _, g in df[ok].groupby(["category", "peer_key", "peer_basis"]):
        logp = np.log(g["peer_price_cny"].to_numpy(dtype=float))
        med = np.median(logp)
        dev = np.abs(logp - med)
        mad, meanad = np.median(dev), dev.mean()
        if len(g) < 2:
            z = np.full(len(g), np.nan)
        elif mad > 0:
            z = (logp - med) / (1.4826 * mad)
        elif meanad > 0:
            z = (logp - med) / (1.2533 * meanad)
        else:
            z = np.zeros(len(g))
        out.loc[g.index, "peer_count"] = len(g)
        out.loc[g.index, "peer_median"] = np.median(g["peer_price_cny"].to_numpy(dtype=float))
        out.loc[g.index, "robust_z"] = z
    return out


def _peer_rows() -> list[dict]:
    rng = np.random.default_rng(42)
    rows = []
    models = ["8*H100", "8*H20", "8*A800", "8*H200"]   # H200 is unknown: accel_model NULL
    for i in range(160):
        spec = models[i % 4]
        price = float(np.round(2_000_000 * np.exp(rng.normal(0, 0.15)), -3))
        rows.append(line("GPU服务器", price, spec=spec, tender_id=f"T{i % 7}",
                         brand=["浪潮", "某科技", None][i % 3]))
    for i in range(40):
        rows.append(line("加速卡", float(np.round(rng.uniform(15_000, 30_000), -2)),
                         model="RTX 4090", unit="张", tender_id=f"T{i % 5}"))
    for i in range(12):  # more than half at one price: MAD is 0, mean-AD fallback
        rows.append(line("IB交换机", 300_000 if i < 8 else 330_000 + i, tender_id=f"T{i}"))
    for i in range(3):   # all at one price: z = 0
        rows.append(line("PDU", 5_000, tender_id=f"T{i}"))
    rows.append(line("UPS", 80_000))                       # alone: z NULL
    rows.append(line("UPS", 0))                             # zero price: no peer stats
    rows.append(line("运维服务", 900_000, unit="项"))       # lump sum: no peers
    rows.append(line("GPU服务器", 2_000_000, spec="8*H100", unit="批"))   # lump sum
    for i in range(6):  # same model and category, different unit: separate peer groups
        rows.append(line("光模块", 6_000 + 100 * i, unit="个" if i % 2 else "只"))
    return rows


def test_peer_statistics_match_pandas(sandbox):
    con = sandbox(_peer_rows())
    items = con.execute("SELECT * FROM items ORDER BY item_id").df()
    ref = _peer_reference(items).set_index("item_id")
    got = items.set_index("item_id")[["peer_count", "peer_median", "robust_z"]].astype(float)
    pd.testing.assert_frame_equal(got, ref[["peer_count", "peer_median", "robust_z"]],
                                  check_dtype=False, rtol=1e-9)
    # the reference is not vacuous: every branch of the z definition is exercised
    assert got["robust_z"].abs().max() > 1
    assert (got["robust_z"] == 0).sum() >= 3
    assert got["robust_z"].isna().sum() >= 4
    # mainstream-brand yardstick: every priced line is a peer, mainstream ones also count here
    servers = items[items["peer_basis"].eq("server") & items["accel_model"].eq("H100")]
    main = servers[servers["brand_tier"].eq("mainstream")]["peer_price_cny"]
    assert (servers["mainstream_peer_count"] == len(main)).all() and len(main) > 0
    assert np.allclose(servers["mainstream_peer_median"], np.median(main))
    ratio = items["peer_price_cny"] / items["peer_median"]
    assert np.allclose(items["ratio_to_peer_median"].dropna(), ratio.dropna())


def test_peer_groups_separate_models_units_and_lump_sums(sandbox):
    con = sandbox(_peer_rows())
    got = dict(con.execute(
        "SELECT coalesce(peer_key, '-') || '/' || category || '/' || coalesce(peer_basis, '-'),"
        " max(peer_count) FROM items GROUP BY 1").fetchall())
    assert got["H100/gpu_server/server"] == 40
    assert got["gpuserver/gpu_server/server"] == 40   # H200: unknown model, keyed by name
    assert got["RTX4090/gpu_card/card"] == 40
    assert got["光模块/network/unit:个"] == 3 and got["光模块/network/unit:只"] == 3
    assert got["ib交换机/network/unit:台"] == 12
    assert got["pdu/rack_power/unit:台"] == 3          # a PDU is not a UPS's peer
    assert got["运维服务/service/-"] is None             # lump sums have no peers


def test_serial_reuse_orders_by_date(sandbox):
    con = sandbox([
        # the later tender is listed first: ordering must follow dates, not line order
        line("GPU服务器", 220_000, tender_id="B", date=dt.date(2024, 5, 1),
             serial_numbers=["SN-0001", "sn 0002", "SN-9999"]),
        line("GPU服务器", 220_000, tender_id="A", date=dt.date(2023, 8, 1),
             serial_numbers=["SN-0001", "SN-0002"]),
        line("GPU服务器", 220_000, tender_id="C", date=dt.date(2024, 9, 1),
             serial_numbers=["SN-0001"]),
        # same serial twice in one tender is not reuse across tenders
        line("显卡", 20_000, tender_id="D", unit="张", serial_numbers=["GPU12345"]),
        line("显卡", 20_000, tender_id="D", unit="张", serial_numbers=["GPU12345"]),
        # placeholders are not serials
        line("显卡", 20_000, tender_id="E", unit="张", serial_numbers=["N/A", "无"]),
        line("显卡", 20_000, tender_id="F", unit="张", serial_numbers=["N/A", "无"]),
    ])
    got = con.execute(
        "SELECT item_id, later_tender_id, earlier_item_id, earlier_tender_id, days_between, "
        "date_order_known, shared_serials, serial, serials FROM serial_reuse "
        "ORDER BY item_id").fetchall()
    assert got == [
        (1, "B", 2, "A", (dt.date(2024, 5, 1) - dt.date(2023, 8, 1)).days, True, 2, "SN0001",
         "SN0001,SN0002"),
        (3, "C", 2, "A", (dt.date(2024, 9, 1) - dt.date(2023, 8, 1)).days, True, 1, "SN0001",
         "SN0001"),
    ]


def test_duplicate_lines(sandbox):
    con = sandbox([
        line("GPU服务器", 2_400_000, model="NF5688M7", quantity=10),
        line("GPU服务器 ", 2_400_000, model="nf5688m7", quantity=10),  # case and spaces differ
        line("GPU服务器", 2_400_000, model="NF5688M7", quantity=10),
        line("GPU服务器", 2_400_000, model="NF5688M7", quantity=11),   # quantity differs
        line("GPU服务器", 2_400_000, model="NF5688M7", quantity=10, tender_id="T2"),
        line("机头", 400_000), line("机头", 400_000),                  # model NULL twice
    ])
    got = con.execute("SELECT item_id, dup_ordinal, dup_count, first_item_id, is_repeat "
                      "FROM duplicate_lines ORDER BY item_id").fetchall()
    assert got == [(1, 1, 3, 1, False), (2, 2, 3, 1, True), (3, 3, 3, 1, True),
                   (6, 1, 2, 6, False), (7, 2, 2, 6, True)]


def test_views_work_on_an_empty_batch(sandbox):
    con = sandbox([])
    for view in ("items", "tender_assemblies", "serial_reuse", "duplicate_lines",
                 "tender_compute"):
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] == 0, view
