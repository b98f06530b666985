"""Capacities taken from the tender and the text (cooling without kW, storage, ports, power)
and prices put on one tax basis. Expected figures are worked out here from the datasheet
numbers the parameters cite (700 W per H100, a server ≈1.8× its GPUs, a 1.3 design margin),
not read back from the views."""

from __future__ import annotations

import pytest

from tests.enrich.conftest import line

H100_SERVER_KW = 8 * 0.7 * 1.8  # one 8×H100 server's draw


def _items(con, columns: str):
    return con.execute(f"SELECT {columns} FROM items ORDER BY item_id").fetchall()


def test_cooling_without_capacity_takes_the_tenders_servers(sandbox):
    con = sandbox([
        line("GPU服务器", 2_450_000, quantity=10, spec="8*H100", line_no="3"),
        line("GPU服务器", 2_450_000, quantity=6, spec="8*H100", line_no="4"),
        line("交换机", 300_000, quantity=4, line_no="5"),
        line("冷板式液冷系统", 1_000_000, unit="套", spec="含CDU及二次侧管路", line_no="6"),
        line("液冷管路", 200_000, unit="项", line_no="7"),
        # another tender: its cooling states a capacity, its servers do not matter
        line("GPU服务器", 2_450_000, quantity=10, spec="8*H100", tender_id="T2"),
        line("冷板式液冷系统", 1_100_000, unit="套", capacity_kw=200, tender_id="T2"),
        # a tender of cooling alone: nothing to price it on
        line("冷板式液冷系统", 1_100_000, unit="套", tender_id="T3"),
    ])
    rows = _items(con, "item_id, capacity_from_tender_kw, price_per_kw, capacity_scope, "
                       "capacity_source")
    cooling_kw = 16 * H100_SERVER_KW * 1.3
    for item_id in (4, 5):  # both capacity-less cooling lines cool the same load together
        got = rows[item_id - 1]
        assert got[1] == pytest.approx(cooling_kw)
        assert got[2] == pytest.approx(1_200_000 / cooling_kw)
        assert got[3] == "tender"
        assert got[4].startswith("tender servers: 128 accelerators on line(s) 3, 4 draw ≈161")
    assert rows[6][1:4] == (None, pytest.approx(1_100_000 / 200), "unit")
    assert rows[6][4] == "stated"
    assert rows[7][1:4] == (None, None, None)
    assert rows[0][1:3] == (None, None)  # servers are not cooling


@pytest.mark.parametrize(("fields", "factor", "basis"), [
    ({}, 1.0, "not stated (taken as tax-inclusive, like the reference)"),
    ({"price_includes_vat": True}, 1.0, "tax-inclusive"),
    ({"price_includes_vat": False}, 1.13, "tax-exclusive, ×1.13 (13% VAT, the equipment rate)"),
    ({"spec": "8*H100 不含税"}, 1.13, "tax-exclusive, ×1.13 (13% VAT, the equipment rate)"),
    ({"spec": "8*H100 单价未税，税率6%"}, 1.06, "tax-exclusive, ×1.06 (6% VAT, stated)"),
    ({"spec": "8*H100 含13%增值税"}, 1.0, "tax-inclusive"),
    # the header wins over the text
    ({"spec": "8*H100 不含税", "price_includes_vat": True}, 1.0, "tax-inclusive"),
])
def test_prices_compare_on_the_tax_inclusive_basis(sandbox, fields, factor, basis):
    fields = {"spec": "8*H100", **fields}
    con = sandbox([line("GPU服务器", 2_000_000, **fields)])
    (row,) = _items(con, "vat_factor, tax_basis, basis_price_cny, peer_price_cny, "
                         "line_total_cny")
    assert row[0] == pytest.approx(factor) and row[1] == basis
    assert row[2] == pytest.approx(2_000_000 * factor) == row[3]
    assert row[4] == 2_000_000  # the money billed is what was billed


@pytest.mark.parametrize(("name", "spec", "expected"), [
    ("全闪存储", "可用容量500TB，裸容量720TB", (500, "usable")),
    ("并行文件存储", "裸容量1.2PB", (1200, "raw")),
    ("分布式存储节点", "24×7.68TB NVMe SSD", (24 * 7.68, "unstated")),
    ("对象存储", "容量 100TiB", (100 * 2**40 / 1e12, "unstated")),
    # look-alikes: a server's memory is not storage, a storage line without a size has none
    ("GPU服务器", "8*H100, 2TB DDR5, 4×3.84TB NVMe", (None, None)),
    ("存储扩容服务", "", (None, None)),
])
def test_storage_capacity(sandbox, name, spec, expected):
    con = sandbox([line(name, 1_000_000, spec=spec)])
    (row,) = _items(con, "storage_tb, storage_capacity_basis")
    assert (pytest.approx(row[0]) if row[0] is not None else None, row[1]) == (
        pytest.approx(expected[0]) if expected[0] is not None else None, expected[1])


@pytest.mark.parametrize(("name", "spec", "expected"), [
    ("IB交换机", "QM9700 64端口 NDR 400G", (64, 400)),
    ("以太网交换机", "48个10G端口", (48, 10)),
    ("交换机", "64 x 400GE", (64, 400)),
    ("交换机", "400G*32", (32, 400)),
    ("管理交换机", "48口千兆", (48, None)),
    # look-alikes: an optical module's speed is not a port count
    ("光模块", "400G OSFP", (None, None)),
])
def test_network_ports_and_speed(sandbox, name, spec, expected):
    con = sandbox([line(name, 100_000, spec=spec)])
    (row,) = _items(con, "category, port_count, port_speed_gbps")
    if name != "光模块":
        assert row[0] == "network"
    assert row[1:] == expected


def test_power_of_rack_and_ups_lines(sandbox):
    con = sandbox([
        line("机柜", 50_000, spec="42U，单柜功率12kW"),
        line("UPS电源", 900_000, spec="200kVA 模块化UPS"),
        line("GPU服务器", 2_450_000, spec="8*H100, 10.2kW"),  # a server's power is not parsed
    ])
    rows = _items(con, "category, power_kw, power_kva")
    assert rows[0] == ("rack_power", 12, None)
    assert rows[1] == ("rack_power", None, 200)
    assert rows[2][1:] == (None, None)
