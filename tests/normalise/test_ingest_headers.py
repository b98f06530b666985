"""Header aliases, header units, the mapping file and the missing-columns error."""

from __future__ import annotations

import pytest

from iccaudit.normalise import IngestError, ingest
from iccaudit.normalise.headers import CANONICAL_FIELDS, interpret, load_mapping, read_title

ALIAS_FAMILIES = {
    "line_no": ["序号", "行号", "No.", "序 号"],
    "item_name": ["货物名称", "产品名称", "品目", "标的名称", "名称", "设备名称", "item", "Name",
                  "Description"],
    "brand": ["品牌", "制造商", "生产厂家", "brand", "Manufacturer", "品牌名称"],
    "model": ["规格型号", "型号", "model"],
    "spec": ["技术参数", "规格参数", "配置", "参数", "spec", "Specification"],
    "quantity": ["数量", "qty", "Quantity", "采购数量"],
    "unit": ["单位", "unit"],
    "unit_price_cny": ["单价", "含税单价", "不含税单价", "报价", "unit price", "Unit_Price",
                       "投标单价"],
    "total_cny": ["总价", "合价", "金额", "小计金额", "total", "Amount"],
    "supplier": ["供应商", "中标人", "成交供应商", "投标人", "supplier", "vendor", "供应商名称"],
    "date": ["日期", "合同日期", "签订日期", "采购日期", "date"],
    "condition": ["新旧程度", "成色", "condition"],
    "serial_numbers": ["序列号", "SN", "S/N", "serial"],
    "capacity_kw": ["制冷量", "功率", "冷量", "capacity"],
    "manufacture_date": ["生产日期", "出厂日期", "manufacture date"],
    "tender_id": ["项目编号", "招标编号", "采购项目编号", "tender id"],
    "project_name": ["项目名称"],
    "claimed_pflops": ["算力", "总算力"],
    "currency": ["币种", "Currency"],
    "buyer": ["采购人", "采购单位", "招标人", "buyer"],
}


@pytest.mark.parametrize(
    ("field", "header"), [(f, h) for f, hs in ALIAS_FAMILIES.items() for h in hs]
)
def test_alias_families(field, header):
    assert interpret(header).field == field


def test_every_canonical_field_has_an_alias_family():
    assert set(ALIAS_FAMILIES) == set(CANONICAL_FIELDS)


@pytest.mark.parametrize(
    ("header", "field", "scale", "vat"),
    [
        ("单价(元)", "unit_price_cny", 1.0, None),
        ("单价（万元）", "unit_price_cny", 1e4, None),
        ("总价(万元)", "total_cny", 1e4, None),
        ("ＵＮＩＴ ＰＲＩＣＥ（万元）", "unit_price_cny", 1e4, None),  # full-width letters
        ("含税单价", "unit_price_cny", 1.0, True),
        ("不含税单价（元）", "unit_price_cny", 1.0, False),
        ("单价【含税】", "unit_price_cny", 1.0, True),
        ("制冷量（kW）", "capacity_kw", 1.0, None),
        ("功率(MW)", "capacity_kw", 1000.0, None),
        ("总算力（EFLOPS）", "claimed_pflops", 1000.0, None),
        ("容量(TB)", None, 1.0, None),  # storage, not a power: not our capacity
        ("备注", None, 1.0, None),
    ],
)
def test_header_units_and_vat(header, field, scale, vat):
    info = interpret(header)
    assert (info.field, info.scale, info.includes_vat) == (field, scale, vat)


def test_wan_yuan_column_and_vat_on_items(files, read):
    path = files.text("t.csv", [["名称", "数量", "含税单价（万元）", "总价(万元)"],
                                ["GPU服务器", "8", "245", "1960"]])
    item = read(path).items.iloc[0]
    assert item["unit_price_cny"] == 2_450_000.0
    assert item["total_cny"] == 19_600_000.0
    assert bool(item["price_includes_vat"]) is True


def test_capacity_from_column_and_from_text(files, read):
    path = files.text("c.csv", [
        ["名称", "技术参数", "数量", "单价", "功率(MW)"],
        ["液冷A", "", "1", "100", "0.8"],
        ["液冷B", "冷板式 制冷量800kW", "1", "100", ""],
        ["液冷C", "总功率 0.5MW", "1", "100", ""],
        ["液冷D", "冷量:600千瓦", "1", "100", ""],
        ["液冷E", "单机柜功率40kW，总制冷量500 KW", "1", "100", ""],
        ["服务器", "8×H100 1000kWh", "1", "100", ""],
    ])
    caps = read(path).items["capacity_kw"].tolist()
    assert caps[:5] == [800.0, 800.0, 500.0, 600.0, 500.0]
    assert caps[5] != caps[5]  # kWh is energy, not a capacity: NaN


def test_title_block_variants():
    t = read_title("采购项目编号 HB2024-77\n项目名称：某某智算中心项目  招标编号：X\n总算力 500P")
    assert (t.tender_id, t.project_name, t.claimed_pflops) == ("HB2024-77", "某某智算中心项目", 500.0)
    t = read_title("招标编号: ZB-9 | 项目名称： | 算力中心 | 算力规模：≥1.2 EFLOPS")
    assert (t.tender_id, t.claimed_pflops) == ("ZB-9", 1200.0)


def test_mapping_file_takes_priority(files, read, tmp_path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "headers:\n  Artikel: item_name\n  Menge: quantity\n  Preis (万元): unit_price_cny\n"
        "  名称: brand\n",
        encoding="utf-8",
    )
    path = files.text("t.csv", [["Artikel", "名称", "Menge", "Preis (万元)"],
                                ["GPU Server", "浪潮", "2", "245"]])
    item = read(path, mapping=mapping).items.iloc[0]
    assert (item["item_name"], item["brand"], item["quantity"], item["unit_price_cny"]) == (
        "GPU Server", "浪潮", 2.0, 2_450_000.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("headers:\n  Artikel: item_nmae\n",
         "unknown canonical field 'item_nmae' (did you mean item_name?)"),
        ("headers: [1, 2]\n", "headers"),
        ("colums:\n  a: item_name\n", "colums"),
        ("headers: {a: [\n", "invalid YAML"),
    ],
)
def test_invalid_mapping_file_is_one_line_error(tmp_path, files, text, message):
    mapping = tmp_path / "map.yaml"
    mapping.write_text(text, encoding="utf-8")
    with pytest.raises(IngestError) as err:
        ingest([files.text("t.csv", [["a"]])], mapping=mapping)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(str(mapping))


def test_load_mapping_normalises_keys(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("headers:\n  ' Unit Cost ': unit_price_cny\n", encoding="utf-8")
    assert interpret("unit cost", load_mapping(mapping)).field == "unit_price_cny"


def test_missing_required_columns_is_a_file_error_naming_headers(files, read):
    path = files.text("t.csv", [["序号", "货物名称", "单价", "备注"], ["1", "A", "3", ""]])
    batch = read(path)
    rec = batch.files.iloc[0]
    assert rec["status"] == "error" and rec["rows_read"] == 0
    assert batch.errors == [rec["error"]]
    msg = rec["error"]
    assert str(path) in msg and "quantity" in msg and "--mapping" in msg
    assert "headers seen: 序号, 货物名称, 单价, 备注" in msg


def test_no_table_at_all_is_a_file_error(files, read):
    batch = read(files.text("t.csv", [["hello", "world"], ["1", "2"]]))
    assert batch.files.loc[0, "status"] == "error"
    assert "no line-item table found" in batch.errors[0]
    assert "headers seen: hello, world" in batch.errors[0]
