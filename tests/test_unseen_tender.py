"""A tender written by hand, not by our generator: other headers, 万元 prices, wording.

Guards against rules and readers that only pass the corpus they were written against.
"""

from __future__ import annotations

import duckdb
import openpyxl
import pytest
from click.testing import CliRunner

from iccaudit.cli import cli

HEADER = ["行号", "标的名称", "生产厂家", "型号规格", "主要技术参数", "数量", "计量单位",
          "报价(万元)", "合价(万元)", "投标人", "签订日期"]
SUPPLIER, DAY = "杭州某科技有限公司", "2024年1月12日"
ROWS = [
    [1, "人工智能训练服务器", "宁畅", "X680 G55", "8×H800 SXM5 80GB，2×Xeon 8480+", "16", "台",
     "215", "3440"],
    [2, "GPU服务器机头", "超微", "SYS-821GE-TNHR 准系统", "不含GPU", "8", "台", "42", "336"],
    [3, "HGX H100 八卡模组", "NVIDIA", "HGX H100 8-GPU 80GB", "SXM5", "8", "套", "233", "1864"],
    [4, "浸没式液冷系统", "曙光数创", "C8000", "总制冷量1.2MW，含CDU及管路", "1", "套", "3000",
     "3000"],
    [5, "昇腾AI服务器", "华为", "Atlas 800T A2", "8×昇腾910B，仅含机箱外壳，展示用", "10", "台",
     "148", "1480"],
    [6, "GPU服务器（二手）", "某品牌", "8×RTX 4090", "拆机卡，成色95新", "20", "台", "23", "460"],
    [7, "浸没式液冷系统（二期）", "曙光数创", "C8000", "制冷量500kW", "1", "套", "500", "500"],
    [8, "运维服务", "—", "三年", "", "1", "项", "面议", ""],
]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unseen")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "报价明细"
    ws.append(["某市人工智能算力中心项目（一期）设备采购 分项报价表"])
    ws.merge_cells("A1:K1")
    ws.append(["招标编号：HZ-ZC-2024-0817", None, None, "报价单位：万元"])
    ws.append([])
    ws.append(HEADER)
    for r in ROWS:
        ws.append([*r, SUPPLIER, DAY])
    ws.append(["合  计", None, None, None, None, None, None, None, "10580"])
    wb.save(tmp / "分项报价表.xlsx")
    path = tmp / "f.duckdb"
    result = CliRunner().invoke(cli, ["score", str(tmp / "分项报价表.xlsx"), "--db", str(path),
                                      "-q", "--no-models"])
    assert result.exit_code == 0, result.output
    return duckdb.connect(str(path), read_only=True)


def test_every_row_accounted_for(db):
    rows_read, items, rejects, non_items = db.execute(
        "SELECT rows_read, line_items, rejects, non_items FROM files").fetchall()[0]
    assert (items, rejects) == (7, 1)  # 运维服务 at 面议 is a reject
    assert rows_read == items + rejects + non_items == 4 + len(ROWS) + 1
    assert db.execute("SELECT DISTINCT tender_id FROM line_items").fetchall() == [
        ("HZ-ZC-2024-0817",)]
    price, total, kw = db.execute(
        "SELECT unit_price_cny, total_cny, capacity_kw FROM line_items WHERE line_no = '4'"
    ).fetchall()[0]
    assert (price, total, kw) == (30_000_000, 30_000_000, 1200)


def _flagged(db) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line, mechanism in db.execute("SELECT line_no, mechanism FROM findings").fetchall():
        out.setdefault(line, set()).add(mechanism)
    return out


def test_each_scheme_is_found_on_its_line(db):
    flagged = _flagged(db)
    assert "head_module_split" in flagged["2"] and "head_module_split" in flagged["3"]
    assert "liquid_cooling_markup" in flagged["4"]  # ¥25,000/kW immersion
    assert "domestic_shell" in flagged["5"]  # 仅含机箱外壳，展示用
    assert "used_as_new" in flagged["6"]  # 拆机, 95新 at 94 % of new
    assert "supply_channel" in flagged["1"]  # H800 after 2023-10-25


def test_honest_lines_are_not_flagged_at_medium_or_above(db):
    serious = {line for (line,) in db.execute(
        "SELECT DISTINCT line_no FROM findings WHERE severity IN ('medium', 'high', 'critical')"
    ).fetchall()}
    assert "1" not in serious  # an H800 server at a normal price: only the channel risk
    assert "7" not in serious  # immersion at ¥10,000/kW is the reference
