"""Recognition vocabulary of the enrich views: the Chinese and English wording of tender lines.

Developer-owned constants (RE2 syntax, matched against lower-cased text in which full-width
characters are folded to ASCII and 服务器 is rewritten to ``server``, so that 服务 can mean
"service" without matching every server). Accelerator aliases and brands are *data* and live
in ``rules/reference/``; these are the words around them.
"""

from __future__ import annotations

import re

# Category wording, checked in this order (first hit wins; see sql/macros/category.sql).
RETROFIT = r"改造|retrofit"
SERVICE = (
    r"服务|实施|运维|安装|调试|培训|维保|维护|集成|咨询|部署|技术支持|"
    r"\bservices?\b|installation|maintenance|implementation|training|consulting|o&m"
)
HEAD = r"机头|准系统|barebone|bare-bone|machine\s*head|head\s*unit"
MODULE = r"hgx|模组|gpu\s*(?:模块|板|基板|module|board|baseboard|tray)|\bmodules?\b"
NETWORK = (
    r"交换机|\bswitch(?:es)?\b|网卡|\bnics?\b|光模块|optical|transceiver|qsfp|osfp|线缆|"
    r"\bcables?\b|铜缆|光缆|光纤|跳线|\bdac\b|\baoc\b|infiniband|\bib\b|路由器|\brouters?\b|"
    r"防火墙|firewall|网络|network"
)
SERVER = r"server|整机|成套|一体机|\bnodes?\b|节点|\bdgx\b"
CARD = (
    r"显卡|加速卡|gpu\s*卡|计算卡|推理卡|训练卡|\bcards?\b|accelerator|\bgpus?\b|\bdcu\b|"
    r"算力卡|ai卡"
)
LIQUID = r"冷板|浸没|液冷|\bcdu\b|冷却液|冷量分配|coolant|cold\s*plate|immersion|liquid"
STORAGE = r"存储|storage|\bnas\b|\bsan\b|磁盘阵列|全闪|all-?flash|硬盘|\bssd\b|nvme"
RACK = (
    r"机柜|\bpdu\b|\bups\b|配电|电源|列头柜|\bracks?\b|cabinet|电池|母线|busway|"
    r"power\s*distribution"
)
#: GPU wording: a server with storage wording but also this stays a GPU server.
GPU_HINT = r"gpu|加速|算力|显卡|训练|推理|\bai\b|hgx|dgx"
#: Evidence that a server carries accelerators (else a CPU server is category other).
GPU_EVIDENCE = (
    GPU_HINT + r"|大模型|智算|(?:^|[^a-z0-9])[abhlv]\d{2,3}s?(?:$|[^a-z0-9])|mi[23]\d0|rtx|\d\s*卡|八卡|四卡|双卡|\d\s*[*×x]\s*gpu|国产|昇腾|ascend|寒武纪|"
    r"cambricon|思元|海光|hygon|\bdcu\b|\bnpu\b|nvidia|英伟达|tesla"
)

#: Units meaning one card / one piece (a line with an accelerator and no category word).
CARD_UNITS = ("张", "块", "片", "card", "cards", "pcs", "个")
#: Units of lump-sum lines: they have no unit-price peers.
LUMP_UNITS = ("项", "批", "套餐", "宗", "lot", "lots", "lump sum")

# Cooling types.
COLD_PLATE = r"冷板|cold\s*plate|direct[\s-]*to[\s-]*chip|\bdlc\b"
IMMERSION = r"浸没|immersion|浸泡"
#: Capacity stated for the whole line rather than per unit.
CAPACITY_TOTAL = r"总制冷量|总散热|总容量|总功率|总冷量|合计|total\s*capacity|in\s*total"
#: "N台" in retrofit text: how many servers a lump-sum retrofit covers.
SERVERS_COUNT = r"(\d{1,5})\s*台"

# Condition (from the condition column first, then the text).
REFURBISHED = r"翻新|refurb|renewed|再制造|整备机"
USED_CONDITION = (
    r"二手|\bused\b|拆机|pulled|pre-?owned|second[\s-]?hand|非全新|成新|"
    r"(?:^|[^0-9])[5-9][0-9]\s*新"
)
#: In free text "used" is too common ("used for training"); only unambiguous wording.
USED_TEXT = (
    r"二手|拆机|pulled|pre-?owned|second[\s-]?hand|非全新|[0-9一二三四五六七八九]成新|"
    r"(?:^|[^0-9])[5-9][0-9]\s*新|\bused\s+(?:cards?|gpus?|servers?|units?)"
)
NEW_CONDITION = r"全新|\bnew\b|brand[\s-]?new|新品|^新$|未使用|unused"
NEW_TEXT = r"全新|brand[\s-]?new|原厂新品"

#: Shell / packaging / display-sample wording (domestic_shell). 原厂包装 (factory-sealed) and
#: 含导轨 (rails included) are ordinary delivery wording and do not match.
SHELL = (
    r"外壳|空壳|壳子|仅含机箱|只含机箱|仅机箱|不含加速卡|不含gpu|不含显卡|无加速卡|样机|"
    r"展示用|展示样品|外观件|模型机|仅包装|空包装|包装盒|\bshells?\b|empty\s*chassis|dummy|"
    r"mock-?up|display\s*(?:unit|sample)|chassis\s*only|without\s*(?:accelerators?|gpus?|cards?)"
)
#: Domestic wording without a recognised model.
DOMESTIC = r"国产|昇腾|ascend|寒武纪|cambricon|思元|海光|hygon"
#: A complete server whose text says it was assembled.
ASSEMBLED = r"攒机|组装|assembled|机头\s*[+＋和及与]"

# Cards per unit: "8卡", "8 GPU", "8-GPU", "八卡"; "8*H100" / "H100*8" use the alias regex.
CARDS_PLAIN = r"(?:^|[^0-9.])(\d{1,2})\s*(?:卡|张卡|块卡|-?\s*gpus?\b|cards?\b|路gpu|个gpu)"
CARDS_CHINESE = {"十六卡": 16, "八卡": 8, "四卡": 4, "双卡": 2}
#: Largest plausible cards per unit; larger numbers are not a card count.
MAX_CARDS_PER_UNIT = 16

# Full-width ASCII (Ｈ１００, ８卡, ＊) folded to ASCII before matching; after lower().
FULLWIDTH = "０１２３４５６７８９ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ＊（）－＋／：　"
ASCII = "0123456789abcdefghijklmnopqrstuvwxyz*()-+/: "

_RE2_SPECIAL = set(r"\.^$|?*+()[]{}")


def alias_regex(alias: str) -> str:
    """RE2 fragment for one alias: literal text, any run of space/-/_ as a flexible separator."""
    parts = re.split(r"[\s\-_]+", alias.strip().lower())
    escaped = ["".join("\\" + c if c in _RE2_SPECIAL else c for c in p) for p in parts if p]
    return r"[\s\-_]*".join(escaped)


def alternation(aliases: list[str]) -> str:
    """Alternation of aliases, longest first, so RE2's leftmost-first match picks the longest."""
    unique = sorted(set(aliases), key=lambda a: (-len(re.sub(r"[\s\-_]+", "", a)), a))
    return "|".join(alias_regex(a) for a in unique)


def accel_regex(aliases: list[str]) -> str:
    """Whole-token alias match; group 1 is the alias as written.

    Token edges are non-alphanumerics, plus "8x" before an alias ("8xH100") and "x8" after it.
    """
    return r"(?:^|[^a-z0-9]|\dx)(" + alternation(aliases) + r")(?:$|[^a-z0-9]|x\d)"


def cards_times_regex(aliases: list[str]) -> str:
    """"8*H100", "8 × A800", "8x nvidia h100": group 1 is the card count."""
    return (
        r"(?:^|[^0-9.])(\d{1,2})\s*[*×x]\s*(?:nvidia\s*|英伟达\s*|geforce\s*|tesla\s*)?(?:"
        + alternation(aliases)
        + r"|gpu|加速卡|显卡)"
    )


def times_cards_regex(aliases: list[str]) -> str:
    """"H100*8", "GPU×8", "卡*8": group 1 is the card count."""
    return r"(?:" + alternation(aliases) + r"|gpu|加速卡|显卡|卡)\s*[*×]\s*(\d{1,2})(?:$|[^0-9])"
