"""Recognition of category, accelerator model, cards per unit and condition from wording."""

from __future__ import annotations

import pytest

from tests.enrich.conftest import batch_values, line

CATEGORY_CASES = [
    # (item name, extra fields, category, accel_model)
    ("GPU服务器", {"spec": "8*H100 SXM5 80GB"}, "gpu_server", "H100"),
    ("GPU server", {"spec": "8x NVIDIA H100 SXM5"}, "gpu_server", "H100"),
    ("AI训练服务器", {"model": "NF5688M7", "spec": "HGX H100 8-GPU"}, "gpu_server", "H100"),
    ("整机", {"spec": "H800 八卡"}, "gpu_server", "H800"),
    ("GPU服务器(含三年维保服务)", {"spec": "8卡 H20"}, "gpu_server", "H20"),
    ("设备", {"spec": "H20 8卡"}, "gpu_server", "H20"),
    ("ＧＰＵ服务器", {"spec": "８卡Ｈ１００"}, "gpu_server", "H100"),
    ("机头", {"spec": "2*Intel 8480+, 2TB内存"}, "machine_head", None),
    ("服务器（机头）", {"spec": "不含GPU"}, "machine_head", None),
    ("准系统", {}, "machine_head", None),
    ("barebone", {}, "machine_head", None),
    ("GPU模组", {"model": "HGX H100 8-GPU"}, "gpu_module", "H100"),
    ("GPU板", {"spec": "H800"}, "gpu_module", "H800"),
    ("RTX 4090 显卡", {"unit": "张"}, "gpu_card", "RTX4090"),
    ("显卡", {"model": "RTX 4090D", "unit": "张"}, "gpu_card", "RTX4090D"),
    ("GeForce RTX4090 24G", {"unit": "张"}, "gpu_card", "RTX4090"),
    ("加速卡", {"model": "H100 PCIe 80GB", "unit": "张"}, "gpu_card", "H100PCIe"),
    ("H100", {"unit": "张"}, "gpu_card", "H100"),
    ("H200服务器", {}, "gpu_server", None),
    ("昇腾910B服务器", {"model": "Atlas 800T A2"}, "domestic_accelerator", "Ascend910B"),
    ("Atlas 800T A2 训练服务器", {}, "domestic_accelerator", "Ascend910B"),
    ("寒武纪思元370加速卡", {"model": "MLU370-X8", "unit": "张"}, "domestic_accelerator",
     "MLU370"),
    ("海光DCU K100 服务器", {}, "domestic_accelerator", "K100"),
    ("冷板式液冷系统", {"spec": "制冷量800kW"}, "liquid_cooling", None),
    ("浸没式液冷机柜", {}, "liquid_cooling", None),
    ("CDU", {}, "liquid_cooling", None),
    ("cold plate liquid cooling", {}, "liquid_cooling", None),
    ("H100服务器冷板液冷改造", {}, "cooling_retrofit", "H100"),
    ("liquid cooling retrofit", {}, "cooling_retrofit", None),
    ("IB交换机", {"model": "QM9700"}, "network", None),
    ("400G光模块", {}, "network", None),
    ("ConnectX-7 网卡", {"unit": "张"}, "network", None),
    ("NIC card", {}, "network", None),
    ("InfiniBand switch", {}, "network", None),
    ("存储服务器", {}, "storage", None),
    ("全闪存储", {}, "storage", None),
    ("机柜", {}, "rack_power", None),
    ("服务器机柜", {}, "rack_power", None),
    ("42U服务器机柜", {"spec": "含PDU"}, "rack_power", None),
    ("UPS", {}, "rack_power", None),
    ("PDU", {}, "rack_power", None),
    ("运维服务", {"unit": "项"}, "service", None),
    ("安装调试", {"unit": "项"}, "service", None),
    ("installation services", {"unit": "lot"}, "service", None),
    ("办公桌", {}, "other", None),
    ("管理节点服务器", {"model": "NF5280M7"}, "other", None),     # a CPU server: no cards
    ("通用计算服务器", {"model": "2U双路机架服务器"}, "other", None),
    ("推理服务器", {"spec": "4卡"}, "gpu_server", None),
    ("DAC高速铜缆", {"model": "400G DAC 2m", "unit": "条"}, "network", None),
]




@pytest.fixture(scope="module")
def categories(reference):
    rows = [line(name, 100_000, **fields) for name, fields, _, _ in CATEGORY_CASES]
    return batch_values(reference, rows, "category, accel_model")


@pytest.mark.parametrize("case", range(len(CATEGORY_CASES)), ids=[c[0] for c in CATEGORY_CASES])
def test_category_and_model(categories, case):
    _, _, category, model = CATEGORY_CASES[case]
    assert categories[case] == (category, model)


def test_lookalikes_in_one_batch(reference):
    """Look-alikes side by side: one batch, so the alias alternation order is exercised."""
    rows = [
        line("显卡", 20_000, model="RTX 4090", unit="张"),
        line("显卡", 16_000, model="RTX 4090D", unit="张"),
        line("加速卡", 210_000, model="H100 SXM5", unit="张"),
        line("加速卡", 200_000, model="H100 PCIe", unit="张"),
        line("加速卡", 120_000, model="H20", unit="张"),
        line("加速卡", 300_000, model="H200", unit="张"),
        line("服务器", 2_000_000, spec="A800 ×8"),
        line("服务器", 2_000_000, spec="A8000"),
    ]
    got = [r[0] for r in batch_values(reference, rows, "accel_model")]
    assert got == ["RTX4090", "RTX4090D", "H100", "H100PCIe", "H20", None, "A800", None]


CARDS_CASES = [
    # (spec, item name, cards_per_unit)
    ("8*H100", "GPU服务器", 8),
    ("8×H100", "GPU服务器", 8),
    ("8 x NVIDIA H100", "GPU服务器", 8),
    ("8xH100", "GPU服务器", 8),
    ("H100*8", "GPU服务器", 8),
    ("4卡 L20", "GPU服务器", 4),
    ("8 GPU", "GPU服务器", 8),
    ("8-GPU HGX", "GPU服务器", 8),
    ("四卡", "GPU服务器", 4),
    ("2×Intel 8480+ CPU, 4×H20", "GPU服务器", 4),   # the CPU count is not a card count
    ("2*25G网卡, 512GB内存", "GPU服务器", 8),          # nothing card-like: server default 8
    ("RTX4090卡", "GPU服务器", 8),                   # "90卡" inside "4090卡" is not 90 cards
    ("64卡集群", "GPU服务器", 8),                    # beyond 16 per unit: not a card count
    ("8卡", "RTX 4090 显卡", 1),                     # a card line is one card
    (None, "GPU模组", 8),
    (None, "机头", None),
    (None, "IB交换机", None),
]


@pytest.fixture(scope="module")
def cards(reference):
    rows = [line(name, 100_000, spec=spec, quantity=3) for spec, name, _ in CARDS_CASES]
    return batch_values(reference, rows, "cards_per_unit, card_count")


@pytest.mark.parametrize("case", range(len(CARDS_CASES)),
                         ids=[f"{c[1]}:{c[0]}" for c in CARDS_CASES])
def test_cards_per_unit(cards, case):
    expected = CARDS_CASES[case][2]
    assert cards[case] == (expected, None if expected is None else 3 * expected)


CONDITION_CASES = [
    # (condition column, spec, condition_class)
    ("全新", None, "new"),
    ("new", None, "new"),
    ("二手", None, "used"),
    ("used", None, "used"),
    ("拆机", None, "used"),
    ("95新", None, "used"),
    ("9成新", None, "used"),
    ("非全新", None, "used"),
    ("翻新", None, "refurbished"),
    ("refurbished", None, "refurbished"),
    (None, "全新原装 8卡", "new"),
    (None, "二手4090拆机卡", "used"),
    (None, "成色95新", "used"),
    (None, "pulled cards", "used"),
    (None, "东莞翻新", "refurbished"),
    (None, "used for training and inference", "unknown"),   # "used" as a verb
    (None, "原厂包装", "unknown"),
    (None, None, "unknown"),
    ("全新", "二手", "used"),                                 # used wording wins
    ("全新", "PCIe 5.0 x16，被动散热（95新）", "used"),
    ("二手", "全新", "used"),
]


@pytest.fixture(scope="module")
def conditions(reference):
    rows = [line("GPU服务器 4090", 150_000, condition=c, spec=s) for c, s, _ in CONDITION_CASES]
    return [r[0] for r in batch_values(reference, rows, "condition_class")]


@pytest.mark.parametrize("case", range(len(CONDITION_CASES)),
                         ids=[f"{c[0]}:{c[1]}" for c in CONDITION_CASES])
def test_condition_class(conditions, case):
    assert conditions[case] == CONDITION_CASES[case][2]


def test_condition_conflict(reference):
    rows = [line("加速卡", 100_000, condition="全新", spec="95新", unit="张"),
            line("加速卡", 100_000, condition="全新", spec="原厂包装", unit="张"),
            line("加速卡", 100_000, condition="二手", spec="拆机", unit="张"),
            line("加速卡", 100_000, condition=None, spec="翻新", unit="张")]
    got = [r[0] for r in batch_values(reference, rows, "condition_conflict")]
    assert got == [True, False, False, False]


SHELL_CASES = [
    ("外壳", True),
    ("空壳，不含加速卡", True),
    ("仅含机箱", True),
    ("展示用样机", True),
    ("外观件", True),
    ("empty chassis, display sample", True),
    ("原厂包装，含导轨", False),
    ("8卡 昇腾910B 含电源", False),
]


@pytest.fixture(scope="module")
def shells(reference):
    rows = [line("昇腾910B服务器", 300_000, spec=spec) for spec, _ in SHELL_CASES]
    return batch_values(reference, rows, "shell_wording, is_domestic")


@pytest.mark.parametrize("case", range(len(SHELL_CASES)), ids=[c[0] for c in SHELL_CASES])
def test_shell_wording(shells, case):
    assert shells[case] == (SHELL_CASES[case][1], True)


BRAND_CASES = [
    ("浪潮", "mainstream", "Inspur"),
    ("Inspur 浪潮信息", "mainstream", "Inspur"),
    ("超聚变", "mainstream", "xFusion"),
    ("新华三H3C", "mainstream", "H3C"),
    ("中科曙光", "mainstream", "Sugon"),
    ("SUPERMICRO", "mainstream", "Supermicro"),
    ("宝德", "mainstream", "PowerLeader"),
    ("深圳某某科技", "other", None),
    ("白牌", "other", None),
    ("", "unknown", None),
    (None, "unknown", None),
]


@pytest.fixture(scope="module")
def brands(reference):
    rows = [line("GPU服务器", 2_400_000, brand=b, spec="8*H100") for b, _, _ in BRAND_CASES]
    return batch_values(reference, rows, "brand_tier, brand_canonical")


@pytest.mark.parametrize("case", range(len(BRAND_CASES)), ids=[str(c[0]) for c in BRAND_CASES])
def test_brand_tier(brands, case):
    assert brands[case] == BRAND_CASES[case][1:]


LUMP_CASES = [
    ("项", "液冷系统集成", True),
    ("批", "线缆", True),
    ("套餐", "运维", True),
    ("台", "运维服务", True),     # a service is a lump sum whatever its unit
    ("套", "GPU服务器", False),
    ("台", "GPU服务器", False),
    (None, "GPU服务器", False),
]


def test_lump_sum(reference):
    rows = [line(name, 500_000, unit=unit) for unit, name, _ in LUMP_CASES]
    got = [r[0] for r in batch_values(reference, rows, "is_lump_sum")]
    assert got == [c[2] for c in LUMP_CASES]


def test_domestic_export_control_and_dates(sandbox):
    import datetime as dt

    rows = [
        line("GPU服务器", 2_100_000, spec="8*H800", date=dt.date(2023, 11, 2),
             manufacture_date=dt.date(2021, 5, 1)),
        line("GPU服务器", 2_100_000, spec="8*H800", date=dt.date(2023, 10, 24)),
        line("GPU服务器", 1_300_000, spec="8*H20", date=None, tender_id="T9"),
        line("IB交换机", 300_000, date=dt.date(2024, 3, 1), tender_id="T9"),
    ]
    got = sandbox(rows).execute(
        "SELECT export_controlled, after_export_control, manufacture_age_days, purchase_date "
        "FROM items ORDER BY item_id").fetchall()
    assert got[0] == (True, True, (dt.date(2023, 11, 2) - dt.date(2021, 5, 1)).days,
                      dt.date(2023, 11, 2))
    assert got[1][:2] == (True, False)
    # a line without a date takes its tender's date; H20 is not controlled
    assert got[2] == (False, None, None, dt.date(2024, 3, 1))
