"""Capacities and tax wording read from a line's folded text (lower case, full-width folded):
the patterns the ``_text_capacity`` and ``_text_class`` steps match, by name (``$name``).

Each capacity is read only on lines of its category, where the unit means what the rule
author expects: TB on storage lines (a server's "2TB DDR5" is memory), ports × speed on
network lines, kW/kVA on rack and power lines. The numbers are converted to one unit per
quantity: TB (decimal; TiB × 1.0995, PB × 1000, PiB × 1125.9), Gbit/s, kW, kVA.
"""

from __future__ import annotations

_NUM = r"(\d+(?:\.\d+)?)"
_TB_UNIT = r"\s*(tib|tb|pib|pb)(?:[^a-z]|$)"

#: storage capacity labelled usable (可用 / 有效 / usable …), raw (裸 / 原始 / raw), a product
#: of drives (24×7.68TB), or any capacity; group 1 the number, group 2 the unit (group 3 in
#: the product, whose group 1 is the drive count).
STORAGE_USABLE = r"(?:可用|有效|usable|net)[^0-9|]{0,10}" + _NUM + _TB_UNIT
STORAGE_RAW = r"(?:裸|原始|raw)[^0-9|]{0,10}" + _NUM + _TB_UNIT
STORAGE_PRODUCT = r"(\d+)\s*(?:块|个|片)?\s*[x×*]\s*" + _NUM + _TB_UNIT
STORAGE_ANY = _NUM + _TB_UNIT
#: ports and speed of a network line, tried in this order; each gives (ports, Gbit/s):
#: "400g*32", "400g 64口" (speed first), "64 x 400ge", "64口400g", "48个10g端口",
#: "64端口 ndr 400g" (ports first); a port count alone: "32口"
_G = r"\s*g(?:e|b|bps)?"
_PORTS = r"\s*(?:个)?\s*(?:口|端口|ports?)"
SPEED_X_PORTS = r"(\d+)" + _G + r"\s*[x×*]\s*(\d+)"
SPEED_PORTS = r"(\d+)" + _G + r"[^0-9|]{0,12}?(\d+)" + _PORTS
PORTS_X_SPEED = r"(\d+)\s*[x×*]\s*(\d+)" + _G + r"(?:[^a-z0-9]|$)"
PORTS_SPEED = r"(\d+)" + _PORTS + r"[^0-9|]{0,12}?(\d+)" + _G + r"(?:[^a-z0-9]|$)"
PORTS_OF_SPEED = r"(\d+)\s*个\s*(\d+)" + _G + r"\s*(?:口|端口|ports?)"
PORTS_ONLY = r"(\d+)" + _PORTS
#: power of a rack, UPS or power line
POWER_KW = _NUM + r"\s*(?:kw|千瓦)(?:[^a-z]|$)"
POWER_KVA = _NUM + r"\s*(?:kva|千伏安)(?:[^a-z]|$)"
POWER_MW = _NUM + r"\s*(?:mw|兆瓦)(?:[^a-z]|$)"

#: tax wording of a line: excluded (不含税, 未税, 税前, excl. vat) before included (含税 …)
VAT_EXCLUDED = r"不含税|未含税|未税|税前|除税|excl(?:uding|\.)?\s*(?:vat|tax)|net of (?:vat|tax)"
VAT_INCLUDED = r"含税|含增值税|含\d+(?:\.\d+)?%\s*(?:增值税|税)|incl(?:uding|\.)?\s*(?:vat|tax)"
#: a stated VAT rate: "税率13%", "13%增值税", "vat 6%"; group 1 the per cent
VAT_RATE = r"(?:税率|增值税率|vat|tax)\s*[:：]?\s*(\d+(?:\.\d+)?)\s*%|(\d+(?:\.\d+)?)\s*%\s*(?:增值税|税率|税|vat)"

#: name -> pattern, the ``$name`` values the SQL reads
PATTERNS: dict[str, str] = {
    name.lower(): value for name, value in dict(globals()).items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
}
