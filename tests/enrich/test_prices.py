"""Money columns: price per kW, reference ranges and ratios, head+module pairs, compute claims."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.enrich.conftest import line, one


def test_price_per_kw_unit_and_line_scope(sandbox):
    con = sandbox([
        # per unit: 2 CDUs of 200 kW each at 1.1 M each -> 5,500 / kW
        line("CDU", 1_100_000, quantity=2, capacity_kw=200, spec="冷板式 制冷量200kW"),
        # lump sum: the capacity is the line's -> 4 M / 800 kW = 5,000 / kW
        line("冷板式液冷系统", 4_000_000, unit="项", capacity_kw=800),
        # total wording on a per-unit line: 3 units x 1 M over 300 kW in total = 10,000 / kW
        line("浸没式液冷系统", 1_000_000, quantity=3, unit="套", capacity_kw=300,
             spec="总制冷量300kW"),
        line("液冷系统", 1_000_000),  # no capacity: no price per kW
    ])
    got = con.execute(
        "SELECT capacity_scope, price_per_kw, cooling_type, ref_basis, ref_low_cny, "
        "ref_high_cny FROM items ORDER BY item_id").fetchall()
    assert got[0] == ("unit", pytest.approx(5500), "cold_plate", "kw", 5000, 6000)
    assert got[1] == ("line", pytest.approx(5000), "cold_plate", "kw", 5000, 6000)
    assert got[2][:3] == ("line", pytest.approx(10000), "immersion")
    assert got[2][4:] == (9000, 12000)
    assert got[3][:3] == (None, None, "other")
    # the ratio uses the per-kW price
    assert one(con, "SELECT ratio_to_ref_high FROM items WHERE item_id = 1") == pytest.approx(
        5500 / 6000)


def test_retrofit_per_server(sandbox):
    con = sandbox([
        line("H100服务器冷板液冷改造", 100_000, quantity=20, unit="台"),
        line("服务器液冷改造", 5_000_000, unit="项", spec="20台H100服务器冷板改造"),
        line("液冷改造", 900_000, unit="项"),  # lump sum of unknown scope
    ])
    got = con.execute("SELECT retrofit_servers, basis_price_cny, ref_low_cny, ref_high_cny "
                      "FROM items ORDER BY item_id").fetchall()
    assert got[0] == (20, 100_000, 80_000, 120_000)
    assert got[1] == (20, 250_000, 80_000, 120_000)
    assert got[2][:2] == (None, None)


def test_server_and_card_references_and_ratios(sandbox):
    # after the H100 series' last point (2024-12: 2.35–2.45 M; its peak 2.8 M in 2024-01)
    late = {"date": dt.date(2024, 12, 15)}
    con = sandbox([
        line("GPU服务器", 2_750_000, spec="8*H100", **late),
        line("GPU服务器", 1_250_000, spec="4*H100", **late),  # reference scaled to 4 cards
        line("加速卡", 120_000, model="昇腾910B", unit="张"),
        line("GPU服务器", 2_400_000, spec="8*H200"),        # no reference for the model
        line("GPU服务器", 24_000_000, spec="8*H100", unit="批"),  # lump sum: no basis price
    ])
    rows = con.execute(
        "SELECT ref_basis, ref_low_cny, ref_high_cny, ref_peak_cny, ratio_to_ref_high, "
        "ratio_to_ref_low, ref_source FROM items ORDER BY item_id").fetchall()
    assert rows[0] == ("server", 2_350_000, 2_450_000, 2_800_000, pytest.approx(2.75 / 2.45),
                       pytest.approx(2.75 / 2.35), "S")
    assert rows[1][:4] == ("server", 1_175_000, 1_225_000, 1_400_000)
    assert rows[2][:3] == ("card", 110_000, 130_000)
    assert rows[3][:3] == ("server", None, None)
    assert rows[4][4] is None


def test_tender_totals_and_bill_arithmetic(sandbox):
    con = sandbox([
        line("GPU服务器", 2_400_000, quantity=10, spec="8*H100", total_cny=24_000_000),
        line("IB交换机", 300_000, quantity=4, total_cny=1_300_000),
        line("运维服务", 700_000, unit="项"),
        line("GPU服务器", 2_400_000, tender_id="T2", spec="8*H100"),
    ])
    got = con.execute("SELECT line_total_cny, total_diff_cny, tender_total_cny, line_value_share "
                      "FROM items ORDER BY item_id").fetchall()
    assert got[0] == (24_000_000, 0, 25_900_000, pytest.approx(24 / 25.9))
    assert got[1] == (1_200_000, 100_000, 25_900_000, pytest.approx(1.2 / 25.9))
    assert got[2][2:] == (25_900_000, pytest.approx(0.7 / 25.9))
    assert got[3][2:] == (2_400_000, 1.0)


def test_assembled_wording_on_complete_servers(sandbox):
    con = sandbox([
        line("GPU整机", 2_450_000, spec="由机头+GPU模组组装, 8*H100"),
        line("GPU整机", 2_450_000, spec="8*H100 HGX模组 原厂整机"),
    ])
    got = con.execute("SELECT spec_says_assembled FROM items ORDER BY item_id").fetchall()
    assert got == [(True,), (False,)]


def test_tender_assemblies_pairs_anonymous_head_with_module(sandbox):
    late = dt.date(2024, 12, 15)  # after the H100 series' last point: 2.35–2.45 M
    con = sandbox([dict(row, date=late) for row in [
        # T1: head names no GPU, module is H100; 10 heads, 8 modules -> 8 servers.
        line("机头", 400_000, quantity=10, tender_id="T1", spec="2*8480+ 2TB"),
        line("GPU模组", 2_100_000, quantity=8, tender_id="T1", model="HGX H100 8-GPU"),
        # T2: an assembly priced with the usual discount (legitimate).
        line("服务器机头", 420_000, quantity=5, tender_id="T2"),
        line("GPU模组", 1_800_000, quantity=5, tender_id="T2", spec="H100 8卡模组"),
        # T3: a module without any head is not a pair.
        line("GPU模组", 1_800_000, quantity=5, tender_id="T3", spec="H100"),
        # T4: a head without a module is not a pair either.
        line("机头", 400_000, quantity=5, tender_id="T4"),
    ]])
    rows = con.execute(
        "SELECT tender_id, accel_model, head_item_id, module_item_id, servers, "
        "price_per_server_cny, complete_ref_low_cny, complete_ref_high_cny, "
        "discount_vs_ref_high, expected_discount_low, expected_assembled_high_cny, excess_cny "
        "FROM tender_assemblies ORDER BY tender_id").fetchall()
    assert [r[:6] for r in rows] == [("T1", "H100", 1, 2, 8, 2_500_000),
                                     ("T2", "H100", 3, 4, 5, 2_220_000)]
    t1, t2 = rows
    assert t1[6:10] == (2_350_000, 2_450_000, pytest.approx(1 - 2.5 / 2.45), 0.05)
    assert t1[10] == pytest.approx(2_327_500)
    assert t1[11] == pytest.approx(8 * 172_500)          # conservative excess per server
    assert t2[8] == pytest.approx(1 - 2_220_000 / 2_450_000)
    assert t2[11] == 0


def test_tender_assemblies_pairs_in_line_order(sandbox):
    """Two heads and two modules of one model pair by line order, not all-with-all."""
    con = sandbox([
        line("机头", 400_000, quantity=2),
        line("机头", 410_000, quantity=3),
        line("GPU模组", 1_800_000, quantity=2, spec="HGX H800"),
        line("GPU模组", 1_700_000, quantity=3, spec="HGX H800"),
    ])
    got = con.execute("SELECT head_item_id, module_item_id, servers FROM tender_assemblies "
                      "ORDER BY head_item_id").fetchall()
    assert got == [(1, 3, 2), (2, 4, 3)]


def test_tender_compute(sandbox):
    con = sandbox([
        # 10 x 8 H800 = 80 cards x 989 TF = 79.12 PF dense; claimed 158.24 (the sparse figure)
        line("GPU服务器", 2_100_000, quantity=10, spec="8*H800", claimed_pflops=158.24),
        line("加速卡", 120_000, quantity=16, unit="张", model="昇腾910B", claimed_pflops=158.24),
        line("海光DCU K100 服务器", 600_000, quantity=2),   # no TFLOPS in the reference
        line("IB交换机", 300_000, quantity=2, spec="for H800 cluster"),  # not an accelerator
        line("机头", 400_000, quantity=2, tender_id="T2"),
    ])
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT tender_id, claimed_pflops, actual_pflops, claim_ratio, accel_lines, cards, "
        "unknown_tflops_lines, first_accel_item_id FROM tender_compute").fetchall()}
    actual = (80 * 989 + 16 * 300) / 1000
    assert rows["T1"] == (158.24, pytest.approx(actual), pytest.approx(158.24 / actual),
                          3, 80 + 16 + 16, 1, 1)
    assert rows["T2"] == (None, None, None, 0, 0, 0, None)


def test_complete_server_peers_of_a_pair_are_the_servers_within_90_days(sandbox):
    """The median and count of branded complete servers of the pair's model bought within
    90 days of it; none near: count 0 and no median."""
    import datetime as dt

    d = dt.date
    con = sandbox([
        line("机头", 400_000, quantity=2, tender_id="P1", date=d(2024, 6, 1)),
        line("GPU模组", 1_800_000, quantity=2, tender_id="P1", spec="HGX H100",
             date=d(2024, 6, 1)),
        line("机头", 400_000, quantity=2, tender_id="P2", date=d(2021, 1, 1)),
        line("GPU模组", 1_800_000, quantity=2, tender_id="P2", spec="HGX H100",
             date=d(2021, 1, 1)),
        # branded H100 8-card servers: three within 90 days of P1, one far off
        line("GPU服务器", 2_300_000, brand="浪潮", spec="8*H100", tender_id="S1",
             date=d(2024, 4, 1)),
        line("GPU服务器", 2_500_000, brand="浪潮", spec="8*H100", tender_id="S2",
             date=d(2024, 6, 1)),
        line("GPU服务器", 2_600_000, brand="浪潮", spec="8*H100", tender_id="S3",
             date=d(2024, 8, 20)),
        line("GPU服务器", 9_900_000, brand="浪潮", spec="8*H100", tender_id="S4",
             date=d(2024, 12, 1)),
    ])
    got = {r[0]: r[1:] for r in con.execute(
        "SELECT tender_id, complete_peer_count, complete_peer_median_cny "
        "FROM tender_assemblies").fetchall()}
    assert got == {"P1": (3, 2_500_000.0), "P2": (0, None)}
