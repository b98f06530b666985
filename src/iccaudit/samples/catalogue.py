"""What the generator can put in a tender: accelerators, brands, catalogue items, wording.

Plain data. Prices are CNY (元) and follow the reference book of ``docs``/``rules/reference``
(the domain digest): a model's price is interpolated between dated anchors, so the H100
server drifts from ≈2.75 M in 2024-01 to ≈2.4 M by 2024-12. Non-accelerator lines never carry
an accelerator token (H100, 4090, 910B …) so that only accelerator lines are recognised as such.
"""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

#: First and last contract date of the corpus.
START = dt.date(2023, 3, 1)
END = dt.date(2024, 12, 31)
#: BIS export rules of 2023-10-17, effective on this day.
BAN_DATE = dt.date(2023, 10, 25)
#: Models covered by the export rules (only these of our catalogue).
EXPORT_CONTROLLED = ("H100", "H800", "A800", "RTX4090")


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


#: A dated price anchor: (ISO date, CNY).
Anchor = tuple[str, int]

#: One accelerator model of :data:`GPUS` (functional form: ``from`` is a keyword).
Gpu = TypedDict("Gpu", {
    "server": str, "card": str, "tflops": float | None, "domestic": bool, "from": dt.date,
    "anchors": list[Anchor], "card_anchors": list[Anchor],
})


class Assembly(TypedDict):
    """Machine head price and HGX module text of a model bought as head + module."""

    head: int
    module: str


class Item(TypedDict):
    """One non-accelerator catalogue item of :data:`ITEMS`."""

    group: str
    names: tuple[str, ...]
    brands: tuple[str, ...]
    models: tuple[str, ...]
    specs: tuple[str, ...]
    units: tuple[str, ...]
    qty: tuple[int, int, int]
    price: int
    sigma: float
    novel: bool


class Cooling(TypedDict):
    """A liquid-cooling system of :data:`COOLING`: names and CNY per kW (low, high)."""

    names: tuple[str, ...]
    rate: tuple[int, int]


class Service(TypedDict):
    """A service line of :data:`SERVICES`: names, units and share of the equipment total."""

    names: tuple[str, ...]
    unit: tuple[str, ...]
    share: tuple[float, float]


# key: server model text (after the brand series), card model text, dense FP16 TFLOPS per card
# (None: not in the reference book), domestic, first month on sale, server price anchors,
# card price anchors (empty: not sold as single cards in our corpus).
GPUS: dict[str, Gpu] = {
    "H100": {
        "server": "(8×NVIDIA H100 SXM5 80GB)", "card": "NVIDIA H100 80GB",
        "tflops": 989.0, "domestic": False, "from": _d("2023-03-01"),
        "anchors": [("2023-03-01", 2300000), ("2023-10-01", 2700000), ("2024-01-15", 2750000),
                    ("2024-12-31", 2400000)],
        "card_anchors": [("2023-03-01", 190000), ("2023-11-01", 210000), ("2024-12-31", 200000)],
    },
    "H800": {
        "server": "(8×NVIDIA H800 SXM5 80GB)", "card": "",
        "tflops": 989.0, "domestic": False, "from": _d("2023-03-01"),
        "anchors": [("2023-03-01", 1950000), ("2023-09-01", 2100000), ("2024-03-01", 2250000),
                    ("2024-12-31", 2100000)],
        "card_anchors": [],
    },
    "A800": {
        "server": "(8×NVIDIA A800 SXM4 80GB)", "card": "NVIDIA A800 80GB",
        "tflops": 312.0, "domestic": False, "from": _d("2023-03-01"),
        "anchors": [("2023-03-01", 1250000), ("2023-10-01", 1450000), ("2024-12-31", 1420000)],
        "card_anchors": [("2023-03-01", 95000), ("2023-10-01", 108000), ("2024-12-31", 106000)],
    },
    "H20": {
        "server": "(8×NVIDIA H20 96GB)", "card": "NVIDIA H20 96GB",
        "tflops": 148.0, "domestic": False, "from": _d("2024-02-01"),
        "anchors": [("2024-02-01", 1380000), ("2024-12-31", 1220000)],
        "card_anchors": [("2024-02-01", 135000), ("2024-12-31", 115000)],
    },
    "L20": {
        "server": "(8×NVIDIA L20 48GB)", "card": "NVIDIA L20 48GB",
        "tflops": 119.5, "domestic": False, "from": _d("2024-02-01"),
        "anchors": [("2024-02-01", 680000), ("2024-12-31", 620000)],
        "card_anchors": [("2024-02-01", 78000), ("2024-12-31", 72000)],
    },
    "RTX4090": {
        "server": "(8×GeForce RTX 4090 24GB)", "card": "GeForce RTX 4090 24GB",
        "tflops": 165.0, "domestic": False, "from": _d("2023-03-01"),
        "anchors": [("2023-03-01", 240000), ("2023-12-01", 238000), ("2024-12-31", 205000)],
        "card_anchors": [("2023-03-01", 20500), ("2024-12-31", 19000)],
    },
    "Ascend910B": {
        "server": "Atlas 800T A2 (8×昇腾910B 64GB)", "card": "昇腾910B 64GB",
        "tflops": 300.0, "domestic": True, "from": _d("2023-03-01"),
        "anchors": [("2023-03-01", 1550000), ("2024-12-31", 1450000)],
        "card_anchors": [("2023-03-01", 122000), ("2024-12-31", 118000)],
    },
    "MLU370": {
        "server": "(8×寒武纪MLU370-X8)", "card": "",
        "tflops": 96.0, "domestic": True, "from": _d("2023-03-01"),
        "anchors": [("2023-03-01", 560000), ("2024-12-31", 540000)],
        "card_anchors": [],
    },
    "K100": {
        "server": "(8×海光DCU K100)", "card": "",
        "tflops": None, "domestic": True, "from": _d("2023-03-01"),
        "anchors": [("2023-03-01", 610000), ("2024-12-31", 590000)],
        "card_anchors": [],
    },
}
GPU_KEYS: tuple[str, ...] = tuple(GPUS)
NVIDIA_SERVER_GPUS = ("H100", "H800", "A800", "H20", "L20", "RTX4090")
DOMESTIC_GPUS = ("Ascend910B", "MLU370", "K100")
CARD_GPUS = tuple(k for k, v in GPUS.items() if v["card"])

#: Machine head (机头) price and HGX module text for the models bought as head + module.
ASSEMBLY: dict[str, Assembly] = {
    "H100": {"head": 420000, "module": "HGX H100 8-GPU 模组 (SXM5 80GB)"},
    "H800": {"head": 410000, "module": "HGX H800 8-GPU 模组 (SXM5 80GB)"},
    "A800": {"head": 380000, "module": "HGX A800 8-GPU 模组 (SXM4 80GB)"},
}

#: Mainstream server makers and two product series each (series are illustrative).
MAINSTREAM: dict[str, tuple[str, str]] = {
    "浪潮": ("NF5688M7", "NF5468M7"),
    "新华三": ("R5500 G6", "R5300 G6"),
    "超聚变": ("G8600 V7", "G5500 V7"),
    "联想": ("SR680a V3", "SR670 V2"),
    "宁畅": ("X640 G50", "X660 G45"),
    "中科曙光": ("X7850H0", "X785-G30"),
    "超微": ("SYS-821GE-TNHR", "AS-4125GS-TNRT"),
    "戴尔": ("PowerEdge XE9680", "PowerEdge XE8640"),
    "宝德": ("PR8908", "PR4908W"),
}
MAINSTREAM_BRANDS: tuple[str, ...] = tuple(MAINSTREAM)
#: Brands of domestic servers per accelerator (all mainstream makers).
DOMESTIC_BRANDS: dict[str, tuple[tuple[str, str], ...]] = {
    "Ascend910B": (("华为", ""), ("华鲲振宇", "天池AT800 ")),
    "MLU370": (("浪潮", "NF5468M6 "), ("联想", "SR658H ")),
    "K100": (("中科曙光", "X640-G40 "), ("中科曙光", "W760-G30 ")),
}
#: Invented minor / white-label makers (not in the mainstream list).
MINOR: dict[str, str] = {
    "鼎算智能": "DS-G8800",
    "云擎科技": "YQ-AI880",
    "星岚数据": "XL-8GPU",
    "恒芯算力": "HX-8000A",
    "OEM白牌": "GPU-8U-Server",
    "聚能云": "JN-G8",
}
MINOR_BRANDS: tuple[str, ...] = tuple(MINOR)

SERVER_NAMES = ("GPU服务器", "AI训练服务器", "智算服务器", "GPU计算节点", "人工智能服务器")
DOMESTIC_NAMES = ("国产AI服务器", "国产算力服务器", "AI训练服务器", "智算服务器")
CARD_NAMES = ("GPU加速卡", "AI加速卡", "推理加速卡", "GPU卡")
HEAD_NAMES = ("GPU服务器机头", "机头（不含GPU模组）", "8卡服务器机头")
MODULE_NAMES = ("GPU模组", "GPU模组（HGX板）", "HGX GPU模组")
SERVER_SPECS = (
    "2×Intel Xeon Platinum 8480+，2TB DDR5，8×3.84TB NVMe，8×400G网卡",
    "2×Intel Xeon Platinum 8468，1TB DDR5，2×960GB SATA + 4×7.68TB NVMe",
    "2×AMD EPYC 9454，1.5TB DDR5，4×3.84TB NVMe，冗余电源",
    "双路CPU，2TB内存，含3年原厂维保",
)
DOMESTIC_SPECS = (
    "4×鲲鹏920 CPU，1TB内存，8×200G RoCE网口",
    "2×海光7380 CPU，1TB内存，4×3.84TB NVMe",
    "双路国产CPU，1TB内存，冗余电源",
)
#: Ordinary delivery wording on domestic lines (not a shell).
DELIVERY_WORDING = ("原厂包装", "含导轨", "原厂包装，含导轨", "含导轨及理线架，原厂包装")
#: Shell / packaging wording of the domestic_shell scheme.
SHELL_WORDING = (
    "仅含机箱，不含加速卡", "外壳", "空壳交付", "样机，展示用", "外观件", "机箱外壳（不含加速卡）",
    "展示用样机外壳",
)
CARD_SPECS = ("PCIe 5.0 x16，被动散热", "全高全长双槽", "含原厂质保3年")
HEAD_SPECS = (
    "2×Xeon Platinum 8480+，2TB DDR5，8×3.84TB NVMe；GPU模组另计",
    "含CPU、内存、硬盘、网卡及电源，GPU模组另行采购",
)
ASSEMBLED_WORDING = (
    "由机头+{module}组装", "机头与GPU模组分别采购后组装交付", "攒机：机头+{module}",
    "整机由机头及{module}集成",
)
NEW_CONDITIONS = ("全新", "全新", "全新原厂", "新")
USED_WORDS = ("二手", "翻新", "拆机", "95新", "refurbished", "二手（翻新）", "拆机件")
#: How a used line is declared when the buyer knows (look-alike: declared used, used price).
DECLARED_USED = ("二手", "二手（已声明）", "拆机", "翻新（已告知采购人）")

# Non-accelerator catalogue: key -> group (sheet), names, brands, models, specs, units,
# quantity range and step, reference unit price, log-normal spread of the price.
ITEMS: dict[str, Item] = {
    "ib_switch": {"group": "infra", "names": ("InfiniBand交换机", "IB交换机", "计算网交换机"),
                  "brands": ("NVIDIA", "英伟达"), "models": ("Quantum-2 QM9700 64口 NDR 400G",
                                                          "QM9790 64×400G NDR"),
                  "specs": ("64个400G NDR端口，含电源冗余", "非阻塞胖树组网"), "units": ("台",),
                  "qty": (2, 24, 1), "price": 310000, "sigma": 0.06, "novel": True},
    "roce_switch": {"group": "infra", "names": ("400G RoCE交换机", "参数面交换机", "以太网交换机"),
                    "brands": ("新华三", "华为", "锐捷"),
                    "models": ("S9827-128DH", "CE9860-4C-EI", "RG-S6990-128QC2XS"),
                    "specs": ("128×400G端口，支持RoCEv2", "64×400G，无损以太网"),
                    "units": ("台",), "qty": (2, 16, 1), "price": 220000, "sigma": 0.07,
                    "novel": True},
    "mgmt_switch": {"group": "infra", "names": ("管理网交换机", "带外管理交换机"),
                    "brands": ("新华三", "华为", "锐捷"),
                    "models": ("S5560X-54C-EI", "S5735-L48T4X", "RG-S5750"),
                    "specs": ("48×千兆电口+4×万兆光口",), "units": ("台",), "qty": (4, 30, 1),
                    "price": 12000, "sigma": 0.08, "novel": False},
    "nic": {"group": "infra", "names": ("网卡", "InfiniBand网卡", "400G网卡"),
            "brands": ("NVIDIA", "英伟达"), "models": ("ConnectX-7 MCX75310AAS-NEAT",
                                                    "ConnectX-7 400G单口 OSFP"),
            "specs": ("单口400G NDR，PCIe 5.0", "400Gb/s，含原厂线缆"), "units": ("张", "块"),
            "qty": (16, 512, 8), "price": 15000, "sigma": 0.08, "novel": True},
    "nic_eth": {"group": "infra", "names": ("以太网网卡", "存储网卡"),
                "brands": ("NVIDIA", "英特尔"), "models": ("ConnectX-6 Dx 双口100G",
                                                       "E810-CQDA2 双口100G"),
                "specs": ("双口100GbE",), "units": ("张", "块"), "qty": (8, 128, 8),
                "price": 6000, "sigma": 0.08, "novel": False},
    "optics": {"group": "infra", "names": ("光模块", "400G光模块", "高速光模块"),
               "brands": ("旭创", "光迅", "新易盛"),
               "models": ("400G OSFP SR4", "400G OSFP DR4", "800G OSFP 2×SR4"),
               "specs": ("多模，传输距离50m", "单模，传输距离500m"), "units": ("个", "只"),
               "qty": (64, 2048, 16), "price": 6500, "sigma": 0.10, "novel": True},
    "aoc": {"group": "infra", "names": ("有源光缆", "AOC光缆"), "brands": ("旭创", "NVIDIA"),
            "models": ("400G AOC 5m", "400G AOC 10m"), "specs": ("OSFP-OSFP",),
            "units": ("条", "根"), "qty": (32, 1024, 16), "price": 4500, "sigma": 0.10,
            "novel": False},
    "dac": {"group": "infra", "names": ("铜缆", "DAC高速铜缆"), "brands": ("NVIDIA", "安费诺"),
            "models": ("400G DAC 2m", "200G DAC 3m"), "specs": ("无源铜缆",),
            "units": ("条", "根"), "qty": (32, 512, 16), "price": 1300, "sigma": 0.10,
            "novel": False},
    "storage": {"group": "infra", "names": ("并行文件存储", "全闪存并行存储", "高性能存储"),
                "brands": ("华为", "浪潮", "中科曙光", "DDN", "焱融"),
                "models": ("OceanStor Pacific 9950", "AS13000G7", "ParaStor 300S", "AI400X2",
                           "YRCloudFile"),
                "specs": ("全闪存，按可用容量计价", "NVMe全闪，可用容量"), "units": ("TB",),
                "qty": (200, 5000, 50), "price": 2600, "sigma": 0.15, "novel": True},
    "cpu_server": {"group": "infra", "names": ("通用计算服务器", "管理节点服务器", "登录节点服务器"),
                   "brands": MAINSTREAM_BRANDS, "models": ("2U双路机架服务器", "R4900 G6",
                                                          "NF5280M7"),
                   "specs": ("2×Xeon Gold 6430，512GB内存，2×960GB SSD",),
                   "units": ("台",), "qty": (2, 40, 1), "price": 62000, "sigma": 0.08,
                   "novel": False},
    "rack": {"group": "infra", "names": ("服务器机柜", "42U机柜", "智能机柜"),
             "brands": ("图腾", "维谛", "华为"), "models": ("42U 600×1200", "47U 800×1200"),
             "specs": ("含盲板、理线器",), "units": ("台", "个"), "qty": (10, 120, 1),
             "price": 8500, "sigma": 0.08, "novel": True},
    "pdu": {"group": "infra", "names": ("智能PDU", "机柜PDU"), "brands": ("维谛", "图腾", "施耐德"),
            "models": ("32A 24位 C13/C19", "63A 三相"), "specs": ("远程监控计量",),
            "units": ("个", "条"), "qty": (20, 240, 2), "price": 3200, "sigma": 0.08,
            "novel": False},
    "ups": {"group": "infra", "names": ("UPS不间断电源", "模块化UPS"), "brands": ("维谛", "华为",
                                                                          "施耐德"),
            "models": ("400kVA 模块化", "600kVA"), "specs": ("含电池柜，后备15分钟",),
            "units": ("台", "套"), "qty": (1, 6, 1), "price": 480000, "sigma": 0.08,
            "novel": False},
    "aircon": {"group": "infra", "names": ("精密空调（风冷）", "行级空调"),
               "brands": ("维谛", "英维克", "佳力图"), "models": ("列间空调 40kW", "房间级 100kW"),
               "specs": ("风冷型，含室外机",), "units": ("台",), "qty": (2, 20, 1),
               "price": 150000, "sigma": 0.10, "novel": False},
    "software": {"group": "infra", "names": ("集群管理软件", "AI开发平台软件", "算力调度平台"),
                 "brands": ("浪潮", "华为", "中科曙光", "联想"),
                 "models": ("AIStation V5", "ModelArts Lite", "LiCO 7"),
                 "specs": ("永久授权，含3年升级",), "units": ("套",), "qty": (1, 2, 1),
                 "price": 650000, "sigma": 0.15, "novel": False},
}
#: Base-composition weights of the non-accelerator items (accelerator kinds are added apart).
ITEM_WEIGHTS: dict[str, float] = {
    "ib_switch": 3, "roce_switch": 2, "mgmt_switch": 2, "nic": 3, "nic_eth": 1.5, "optics": 3,
    "aoc": 2, "dac": 1.5, "storage": 2, "cpu_server": 2, "rack": 2, "pdu": 1.5, "ups": 1,
    "aircon": 1, "software": 0.8,
}
#: Items an unmarked "novel" price_outlier may hit (no rule prices them by reference).
NOVEL_KINDS: tuple[str, ...] = tuple(k for k, v in ITEMS.items() if v["novel"])

# Liquid cooling. Rates per kW: cold plate 5-6 k, immersion ≈10 k (reference book).
COOLING: dict[str, Cooling] = {
    "cold_plate": {"names": ("冷板式液冷系统", "冷板式液冷设备（含CDU及二次侧管路）",
                             "冷板液冷基础设施"),
                   "rate": (5000, 6000)},
    "immersion": {"names": ("浸没式液冷系统", "单相浸没式液冷机柜系统", "浸没式液冷设备"),
                  "rate": (9300, 10700)},
}
COOLING_BRANDS = ("英维克", "曙光数创", "申菱环境", "高澜股份", "维谛")
RETROFIT_NAMES = ("GPU服务器冷板式液冷改造", "整机液冷改造（冷板式）", "冷板液冷改造")
RETROFIT_SPECS = ("8卡GPU整机冷板改造，含冷板、快接头及漏液检测", "按台改造，含原厂保修延续")
RETROFIT_PRICE = (92000, 108000)
#: Templates of capacity in spec text, by unit.
CAPACITY_KW_TEXT = ("制冷量{kw}kW", "额定制冷量：{kw}kW", "总制冷量 {kw} kW", "散热能力{kw}KW")
CAPACITY_MW_TEXT = ("制冷量{mw}MW", "{mw}MW", "总散热能力{mw}MW")

# Lump-sum services: share of the tender's equipment total.
SERVICES: dict[str, Service] = {
    "integration": {"names": ("系统集成服务", "集成实施服务"), "unit": ("项",),
                    "share": (0.01, 0.025)},
    "install": {"names": ("安装调试服务", "部署调试及上架服务"), "unit": ("项", "批"),
                "share": (0.004, 0.01)},
    "maintenance": {"names": ("三年运维服务", "原厂延保服务（3年）"), "unit": ("项", "年"),
                    "share": (0.01, 0.03)},
    "training": {"names": ("技术培训服务",), "unit": ("项",), "share": (0.0005, 0.002)},
}

CITIES = ("庆阳", "乌兰察布", "中卫", "贵安", "和林格尔", "韶关", "芜湖", "克拉玛依", "哈密",
          "昌吉", "雅安", "宜宾", "张掖", "酒泉", "怀来", "天府", "长沙", "合肥")
PROJECT_TEMPLATES = (
    "{city}智算中心一期GPU服务器采购项目", "{city}市人工智能计算中心算力设备采购",
    "{city}东数西算智算中心建设项目（设备包）", "{city}城市算力中心算力扩容项目",
    "{city}智算中心液冷算力集群采购项目", "{city}人工智能公共算力平台设备采购",
)
SUPPLIERS = (
    "北京智算科技有限公司", "上海云峰信息技术有限公司", "深圳市鼎盛数据系统有限公司",
    "杭州数联算力科技有限公司", "成都天府云计算有限公司", "南京恒通信息工程有限公司",
    "广州星云数据科技有限公司", "西安博算信息技术有限公司", "武汉光谷智算科技有限公司",
    "天津海河算力服务有限公司",
)
REJECT_ITEMS = (
    ("备品备件", "批", "面议"), ("光模块备件", "个", "0qty"), ("延保服务（可选）", "项", "面议"),
    ("机柜冷通道封闭", "套", "0qty"), ("运维工具包", "套", "面议"),
)
NOTES = (
    "备注：以上报价均为含税价，含运输、安装及三年原厂质保。",
    "备注：数量以最终验收为准。",
    "说明：本清单金额单位以表头为准，交付地点为项目现场。",
)
