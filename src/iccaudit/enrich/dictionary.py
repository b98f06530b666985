"""The data dictionary: every column of every public view, its DuckDB type and meaning.

The single source for the rule validator (rules may use only these columns) and for
``docs/dictionary.md`` (:func:`render_markdown`); a test checks the views against it with
DESCRIBE, so it cannot drift from the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from iccaudit.core import schema


@dataclass(frozen=True)
class Column:
    """One documented column.

    Parameters
    ----------
    type : str
        DuckDB type as DESCRIBE prints it (``VARCHAR``, ``DOUBLE``, ``VARCHAR[]`` …).
    description : str
        What the value means, in English, including how it is derived.
    description_zh : str, optional
        Short Chinese gloss for auditors.
    """

    type: str
    description: str
    description_zh: str | None = None


def _line_item_columns() -> dict[str, Column]:
    cols = {}
    for name, field in schema.LineItem.model_fields.items():
        cols[name] = Column(schema.sql_type(field.annotation), field.description or name)
    return cols


C = Column
_ITEMS_EXTRA: dict[str, Column] = {
    "text": C("VARCHAR", "lower-cased item_name | model | spec, full-width characters folded to "
              "ASCII; what the recognisers match", "匹配用文本"),
    "accel_model": C("VARCHAR", "canonical accelerator id (H100, H100PCIe, H800, A800, A100, H20, "
                     "L20, RTX4090, RTX4090D, Ascend910B, MLU370, K100 …) recognised from the "
                     "reference aliases in the text; NULL when none", "加速卡型号"),
    "accel_vendor": C("VARCHAR", "vendor of accel_model (NVIDIA, Huawei, Cambricon, Hygon)", "厂商"),
    "is_domestic": C("BOOLEAN", "domestic accelerator (国产): from the model, else from wording "
                     "(国产, 昇腾, 寒武纪, 海光 …)", "是否国产"),
    "export_controlled": C("BOOLEAN", "accel_model is under US export control", "是否受出口管制"),
    "export_control_date": C("DATE", "date the export control took effect for accel_model",
                             "管制生效日期"),
    "fp16_dense_tflops": C("DOUBLE", "dense FP16 TFLOPS per card of accel_model (reference book)",
                           "单卡FP16稠密算力"),
    "tdp_w": C("DOUBLE", "TDP per card in W of accel_model (reference book)", "单卡功耗"),
    "category": C("VARCHAR", "gpu_server, gpu_card, machine_head, gpu_module, "
                  "domestic_accelerator, liquid_cooling, cooling_retrofit, network, storage, "
                  "rack_power, service or other; from the item name (its head noun first), then "
                  "the accelerator and unit, then model/spec wording; a server with no "
                  "accelerator evidence (管理节点, 通用计算 CPU servers) is other", "品类"),
    "ref_basis": C("VARCHAR", "what the reference price is per: server, card, head, module, kw, "
                   "retrofit (per retrofitted server); NULL when there is no reference",
                   "参考价口径"),
    "cards_per_unit": C("INTEGER", "accelerator cards in one unit: parsed from 8卡, 8*H100, H100*8, "
                        "8 GPU, 8-GPU, 八卡 (1-16); for servers and modules stating none, "
                        "params: default_cards_per_unit; 1 for cards; NULL for other "
                        "categories", "每台卡数"),
    "condition_class": C("VARCHAR", "new, used, refurbished or unknown: used/refurbished wording "
                         "in the condition column or the text wins (二手/拆机/95新/9成新 → used; "
                         "翻新 → refurbished), else 全新/new → new", "新旧程度"),
    "condition_conflict": C("BOOLEAN", "the condition column says new while the text says used "
                            "or refurbished", "成色矛盾"),
    "cooling_type": C("VARCHAR", "cold_plate, immersion or other for cooling lines "
                      "(liquid_cooling, cooling_retrofit); NULL otherwise", "冷却方式"),
    "shell_wording": C("BOOLEAN", "text says shell, empty chassis, packaging or display sample "
                       "(外壳, 空壳, 仅含机箱, 不含加速卡, 样机, 展示用, 外观件 …); 原厂包装 and "
                       "含导轨 are not", "空壳/样机措辞"),
    "spec_says_assembled": C("BOOLEAN", "a complete server (gpu_server) whose text says it is "
                             "assembled (攒机, 组装, 机头+模组)", "整机实为组装"),
    "is_lump_sum": C("BOOLEAN", "unit 项/批/套餐/宗/lot or a service line: no unit-price peers, "
                     "judge as a share of the tender", "是否总价包干"),
    "line_total_cny": C("DOUBLE", "quantity × unit_price_cny", "计算合价"),
    "total_diff_cny": C("DOUBLE", "stated total_cny − line_total_cny (NULL without a stated total)",
                        "合价差额"),
    "card_count": C("DOUBLE", "quantity × cards_per_unit", "卡数"),
    "capacity_scope": C("VARCHAR", "unit when capacity_kw is per unit (the default: a spec "
                        "attribute), line when it is for the whole line (lump sum, or 总制冷量/"
                        "合计 wording); NULL without capacity", "容量口径"),
    "price_per_kw": C("DOUBLE", "liquid_cooling only: unit_price / capacity_kw (scope unit) or "
                      "quantity × unit_price / capacity_kw (scope line)", "每kW价格"),
    "retrofit_servers": C("DOUBLE", "cooling_retrofit only: servers retrofitted (quantity, or "
                          "N台 in the text of a lump-sum line)", "改造台数"),
    "purchase_date": C("DATE", "the line's date, else the earliest date of its tender",
                       "采购日期"),
    "brand_canonical": C("VARCHAR", "mainstream brand the brand column names (reference "
                         "brands.yaml), else NULL", "主流品牌"),
    "brand_tier": C("VARCHAR", "mainstream, other (a brand outside the list) or unknown (no "
                    "brand)", "品牌层级"),
    "basis_price_cny": C("DOUBLE", "the price compared with the reference: unit price (server, "
                         "card, head, module; NULL for lump sums), price_per_kw (kw), price "
                         "per retrofitted server (retrofit)", "比价口径单价"),
    "ref_low_cny": C("DOUBLE", "reference low for ref_basis and accel_model as of "
                     "ref_price_date (accelerators: prices.yaml series, linear between points; "
                     "servers and modules scaled by cards_per_unit over the reference's cards)",
                     "参考价下限"),
    "ref_high_cny": C("DOUBLE", "reference high for ref_basis and accel_model as of "
                      "ref_price_date", "参考价上限"),
    "ref_peak_cny": C("DOUBLE", "highest legitimate market price of the model's series at any "
                      "date (e.g. H100 servers in 2024-01), else ref_high_cny", "历史高点"),
    "ref_source": C("VARCHAR", "source tag of the reference range: S sourced, D derived, "
                    "E estimate ('S/D': the two points interpolated between)", "参考价来源"),
    "ref_price_date": C("DATE", "the date an accelerator line is priced at: its date, else its "
                        "tender's first date, else the run's --price-date; NULL when none "
                        "(the series' last point is used)", "参考价日期"),
    "ref_date_basis": C("VARCHAR", "where ref_price_date comes from: line date, tender date, "
                        "run price date, or 'undated: latest point'", "参考价日期来源"),
    "ref_point": C("VARCHAR", "the reference point(s) used, e.g. '2024-01→2024-12 "
                   "(interpolated)', '2023-09 (only point)', '2024-12 (latest point)'",
                   "参考价取点"),
    "ref_as_of": C("VARCHAR", "the dated reference in words, for evidence: range, date, "
                   "where the date comes from, point(s) and source", "参考价说明"),
    "capacity_from_tender_kw": C("DOUBLE", "a liquid-cooling line that states no capacity: "
                                 "the cooling its tender's accelerators need (Σ quantity × "
                                 "cards × TDP × params server_kw_per_accelerator_kw × "
                                 "cooling_capacity_factor); price_per_kw divides the tender's "
                                 "capacity-less cooling lines by it", "按本项目服务器推算制冷量"),
    "capacity_source": C("VARCHAR", "where the cooling capacity comes from: 'stated', or "
                         "'tender servers: …' naming the lines and the load", "制冷量来源"),
    "vat_factor": C("DOUBLE", "what puts the line's price on the reference's tax-inclusive "
                    "basis: 1 + VAT rate when the header or text says 不含税 (the stated rate, "
                    "else params vat_rate_equipment), else 1; basis_price_cny, price_per_kw "
                    "and peer_price_cny include it", "含税换算系数"),
    "tax_basis": C("VARCHAR", "the tax basis in words, for evidence", "计税口径"),
    "storage_tb": C("DOUBLE", "storage lines: capacity in decimal TB (usable if stated, else "
                    "raw, else drives × size, else any; TiB, PB, PiB converted)", "存储容量TB"),
    "storage_capacity_basis": C("VARCHAR", "usable, raw or unstated", "容量口径"),
    "port_count": C("DOUBLE", "network lines: ports (64口, 64 x 400G, 48个10G端口)", "端口数"),
    "port_speed_gbps": C("DOUBLE", "network lines: port speed in Gbit/s", "端口速率Gbps"),
    "power_kw": C("DOUBLE", "rack and power lines: power in kW (MW converted)", "功率kW"),
    "power_kva": C("DOUBLE", "rack and power lines: apparent power in kVA (UPS)", "容量kVA"),
    "ratio_to_ref_high": C("DOUBLE", "basis_price_cny / ref_high_cny", "与参考上限之比"),
    "ratio_to_ref_low": C("DOUBLE", "basis_price_cny / ref_low_cny", "与参考下限之比"),
    "line_value_share": C("DOUBLE", "line_total_cny / tender_total_cny", "占项目金额比例"),
    "tender_total_cny": C("DOUBLE", "Σ line_total_cny over the tender's lines", "项目总额"),
    "peer_price_cny": C("DOUBLE", "the price compared with peers: basis_price_cny, else "
                        "unit_price_cny; NULL for lump sums", "同类比价单价"),
    "peer_basis": C("VARCHAR", "the unit of peer_price_cny: ref_basis, else 'unit:' + unit",
                    "同类比价口径"),
    "after_export_control": C("BOOLEAN", "purchase_date on or after export_control_date",
                              "管制后采购"),
    "manufacture_age_days": C("BIGINT", "days from manufacture_date to purchase_date",
                              "出厂至采购天数"),
    "peer_key": C("VARCHAR", "what counts as the same product for peers: accel_model, else "
                  "the model column, else the item name (lower case, no spaces or -_/)",
                  "同类标识"),
    "recognised_by": C("VARCHAR", "what recognised the category: lexicon (rules/lexicon/), "
                       "model (the learned fallback's guess for a line the lexicon does not "
                       "recognise) or none (category other, not understood)", "识别来源"),
    "model_confidence": C("DOUBLE", "the fallback's probability for its best category, for "
                          "lines the lexicon does not recognise; NULL otherwise",
                          "模型置信度"),
    "peer_count": C("BIGINT", "lines of the batch with the same category, peer_key and "
                    "peer_basis and a positive peer price, the line itself included",
                    "同类行数(含本行)"),
    "peer_tender_count": C("BIGINT", "distinct tenders among those peers", "同类项目数"),
    "peer_median": C("DOUBLE", "median peer_price_cny of the peers", "同类中位价"),
    "ratio_to_peer_median": C("DOUBLE", "peer_price_cny / peer_median", "与同类中位价之比"),
    "mainstream_peer_count": C("BIGINT", "peers (line included) whose brand_tier is mainstream",
                               "同类主流品牌行数"),
    "mainstream_peer_median": C("DOUBLE", "median peer_price_cny of the mainstream-brand peers; "
                                "NULL without any", "同类主流品牌中位价"),
    "ratio_to_mainstream_median": C("DOUBLE", "peer_price_cny / mainstream_peer_median: an "
                                    "off-brand line near 1 is priced like tier-1",
                                    "与主流品牌中位价之比"),
    "robust_z": C("DOUBLE", "(ln price − median ln price) / (robust_z_mad_scale × MAD of ln "
                  "price) over the peers (line included); robust_z_meanad_scale × mean absolute "
                  "deviation when MAD is 0; 0 when all peers share one price; NULL when "
                  "peer_count < robust_z_min_peers (params: the three; the scales make each "
                  "deviation an estimate of σ)", "稳健z分数"),
    "peer_median_90d": C("DOUBLE", "median peer_price_cny of the peers whose purchase_date is "
                         "within the peer window of this line's (params: peer_window_days; the "
                         "name keeps the bundled 90 days; line included)", "同期同类中位价"),
    "peer_count_90d": C("BIGINT", "peers behind peer_median_90d (line included)",
                        "同期同类行数"),
    "tender_mainstream_median": C(
        "DOUBLE", "median peer_price_cny of the mainstream-brand lines with the same peer key and "
        "basis in the same tender (what the same buyer paid tier-1 makers, same date); NULL "
        "when the tender has none", "同一招标内主流品牌同类中位价"),
    "tender_mainstream_count": C("BIGINT", "mainstream lines behind tender_mainstream_median",
                                 "同一招标内主流品牌同类行数"),
}

DICTIONARY: dict[str, dict[str, Column]] = {
    "items": {**_line_item_columns(), **_ITEMS_EXTRA},
    "tender_assemblies": {
        "tender_id": C("VARCHAR", "tender of both lines"),
        "accel_model": C("VARCHAR", "the module's accelerator model (a head naming no GPU takes "
                         "it when the tender has modules of one model only)"),
        "head_item_id": C("BIGINT", "item_id of the machine-head line (机头)", "机头行"),
        "module_item_id": C("BIGINT", "item_id of the GPU-module line (GPU模组)", "模组行"),
        "head_qty": C("DOUBLE", "quantity of the head line"),
        "module_qty": C("DOUBLE", "quantity of the module line"),
        "servers": C("DOUBLE", "least(head_qty, module_qty): servers the pair assembles",
                     "组装台数"),
        "head_unit_price_cny": C("DOUBLE", "unit price of the head"),
        "module_unit_price_cny": C("DOUBLE", "unit price of the module"),
        "price_per_server_cny": C("DOUBLE", "head + module unit price", "每台合计价"),
        "complete_ref_low_cny": C("DOUBLE", "complete-server reference low for the model",
                                  "整机参考价下限"),
        "complete_ref_high_cny": C("DOUBLE", "complete-server reference high for the model",
                                   "整机参考价上限"),
        "complete_ref_peak_cny": C("DOUBLE", "highest legitimate complete-server price known "
                                   "(e.g. H100 in 2024-01), else complete_ref_high_cny",
                                   "整机历史高点"),
        "complete_ref_cny": C("DOUBLE", "the complete server's reference price for the pair: "
                              "the middle of the dated range as of purchase_date where the "
                              "model has a dated series, else complete_ref_peak_cny",
                              "整机参考价"),
        "complete_ref_basis": C("VARCHAR", "what complete_ref_cny is, in words (reference as "
                                "of a month and its point(s), or the reference peak)",
                                "整机参考价说明"),
        "purchase_date": C("DATE", "purchase_date of the module line"),
        "complete_peer_median_cny": C("DOUBLE", "median unit price of the batch's complete "
                                      "servers of the same model and card count within the peer "
                                      "window (params: peer_window_days) "
                                      "of purchase_date (not assembled, not used, not a minor "
                                      "brand); NULL without any", "同期整机中位价"),
        "complete_peer_count": C("BIGINT", "complete servers behind complete_peer_median_cny",
                                 "同期整机行数"),
        "discount_vs_ref_low": C("DOUBLE", "1 − price_per_server / complete_ref_low"),
        "discount_vs_ref_high": C("DOUBLE", "1 − price_per_server / complete_ref_high"),
        "expected_discount_low": C("DOUBLE", "usual assembly discount, low end (reference)",
                                   "正常组装折扣下限"),
        "expected_discount_high": C("DOUBLE", "usual assembly discount, high end (reference)"),
        "expected_assembled_high_cny": C("DOUBLE", "complete_ref_high × (1 − "
                                         "expected_discount_low): the most an assembly should "
                                         "cost per server"),
        "excess_cny": C("DOUBLE", "servers × max(0, price_per_server − "
                        "expected_assembled_high): a conservative overpayment", "估算多付"),
    },
    "serial_reuse": {
        "item_id": C("BIGINT", "the later line: the suspect (序列号重复)"),
        "later_tender_id": C("VARCHAR", "tender of the later line"),
        "later_date": C("DATE", "purchase_date of the later line"),
        "earlier_item_id": C("BIGINT", "the first line the serial appeared on"),
        "earlier_tender_id": C("VARCHAR", "tender of the earlier line"),
        "earlier_date": C("DATE", "purchase_date of the earlier line"),
        "days_between": C("BIGINT", "later_date − earlier_date in days"),
        "date_order_known": C("BOOLEAN", "earlier_date < later_date (false when a date is "
                              "missing or equal: order then falls back to tender_id)"),
        "shared_serials": C("BIGINT", "serial numbers the two lines share"),
        "serial": C("VARCHAR", "the smallest shared serial (upper-case letters and digits only)"),
        "serials": C("VARCHAR", "all shared serials, comma-separated"),
    },
    "duplicate_lines": {
        "item_id": C("BIGINT", "a line that has an identical twin in its tender"),
        "tender_id": C("VARCHAR", "the tender"),
        "item_name": C("VARCHAR", "item name"),
        "model": C("VARCHAR", "model"),
        "quantity": C("DOUBLE", "quantity"),
        "unit_price_cny": C("DOUBLE", "unit price"),
        "line_total_cny": C("DOUBLE", "quantity × unit price"),
        "dup_ordinal": C("BIGINT", "1 for the first of the identical lines (by item_id), 2 … for "
                         "the repeats", "重复序号"),
        "dup_count": C("BIGINT", "identical lines in the group (same tender, item name and model "
                       "ignoring case and outer spaces, quantity and unit price)"),
        "first_item_id": C("BIGINT", "item_id of the first line of the group"),
        "is_repeat": C("BOOLEAN", "dup_ordinal > 1: the repeat, the finding", "是否重复行"),
    },
    "tender_compute": {
        "tender_id": C("VARCHAR", "the tender"),
        "claimed_pflops": C("DOUBLE", "compute the tender claims (largest claimed_pflops of its "
                            "lines)", "声称算力"),
        "actual_pflops": C("DOUBLE", "Σ card_count × fp16_dense_tflops / 1000 over accelerator "
                           "lines (gpu_server, gpu_card, gpu_module, domestic_accelerator) of "
                           "known TFLOPS; a lower bound when unknown_tflops_lines > 0",
                           "实际算力"),
        "claim_ratio": C("DOUBLE", "claimed_pflops / actual_pflops (≈2 is the sparse/FP8 "
                         "headline)", "声称/实际"),
        "accel_lines": C("BIGINT", "accelerator lines of the tender"),
        "cards": C("DOUBLE", "Σ card_count of the accelerator lines"),
        "unknown_tflops_lines": C("BIGINT", "accelerator lines without a TFLOPS figure"),
        "first_accel_item_id": C("BIGINT", "smallest item_id of an accelerator line (to anchor a "
                                 "finding)"),
        "accel_item_ids": C("BIGINT[]", "item_ids of the accelerator lines that name an "
                            "accelerator (accel_model or domestic wording; a finding implicates "
                            "them all)", "加速卡行"),
    },
}


def render_markdown() -> str:
    """docs/dictionary.md, generated from DICTIONARY (a test keeps the committed file current)."""
    out = [
        "# Data dictionary",
        "",
        (
            "Generated from `iccaudit.enrich.dictionary.DICTIONARY` by "
            "`python -m iccaudit.enrich.dictionary > docs/dictionary.md`; do not edit by hand."
        ),
        (
            "Rules may use only these views and columns. Reference figures come from "
            "`rules/reference/*.yaml` (S sourced, D derived, E estimate)."
        ),
        "",
        "Choices worth knowing:",
        "",
        ("- `items` is materialised once per run (a table with the columns below); the other "
        "views read it."),
        ("- `capacity_kw` is the capacity of one unit (a spec attribute), so `price_per_kw = "
        "unit_price / capacity_kw`; for a lump sum (项/批) or when the text says the capacity is "
        "a total (总制冷量, 总散热, 合计 …) it is the line's and `price_per_kw = quantity × "
        "unit_price / capacity_kw` (`capacity_scope` says which)."),
        ("- Peers are the batch's lines with the same `category`, `peer_key` and `peer_basis`, "
        "lump sums and zero prices excluded; the line itself is included in `peer_count`, "
        "`peer_median` and `robust_z`."),
        ("- Server and module references are priced for a number of cards (a server's `cards` "
        "in accelerators.yaml, else `reference_cards_per_server`) and scale with "
        "`cards_per_unit` over it."),
        ("- `params: name` in a description is an entry of `rules/reference/params.yaml`: the "
        "views' thresholds and constants live there, not in their SQL."),
        "",
    ]
    for view, cols in DICTIONARY.items():
        out += [f"## `{view}`", "", "| column | type | description | 说明 |", "|---|---|---|---|"]
        for name, col in cols.items():
            desc = col.description.replace("|", "\\|")
            zh = (col.description_zh or "").replace("|", "\\|")
            out.append(f"| `{name}` | {col.type} | {desc} | {zh} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render_markdown(), end="")
