"""A hand-made findings database for the report tests (and anyone who needs one).

``build_fixture_db`` writes two runs with :func:`iccaudit.store.write_run` from frames that
follow :mod:`iccaudit.core.schema` (every row is validated by the pydantic models first), covering
what the report must show: several tenders, suppliers, mechanisms and severities, a rule that
was not evaluated, rejects with reasons, a broken file, a rule and a model finding on the same
line (the model one corroborating, without money), a tender-level finding with no line, and
hostile text (``<script>``, formula prefixes) in file names, messages and suppliers.

The latest run stores its lines' facts (derived by the real enrich views with the bundled
reference book) and its configuration, as ``score`` does; the old run stores neither, like a
run written before those tables existed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from iccaudit import store
from iccaudit.core import schema

REPO = Path(__file__).resolve().parents[2]


HOSTILE_FILE = "c/<script>alert('file')</script>.csv"
HOSTILE_MESSAGE = "<script>document.title='pwned'</script> price 9x peers"
FORMULA_TENDER = "=HYPERLINK(\"http://evil\",\"x\")"
FORMULA_SUPPLIER = "@SUM(A1:A9)"
SUPPLIER = "华信智算科技有限公司"  # the supplier docs/sql.md uses as its example

RUN_OLD = "20240101T000000000000Z-aaaaaaaa"
RUN_NEW = "20240201T000000000000Z-bbbbbbbb"


def _item(item_id, source_file, row, tender, line_no, name, qty, unit, price, *, sheet=None,
          brand=None, model=None, spec=None, supplier=SUPPLIER, capacity_kw=None):
    return {
        "item_id": item_id, "source_file": source_file, "source_sheet": sheet, "source_row": row,
        "tender_id": tender, "project_name": f"{tender} 智算中心项目", "line_no": str(line_no),
        "item_name": name, "brand": brand, "model": model, "spec": spec, "quantity": qty,
        "unit": unit, "unit_price_cny": price, "total_cny": qty * price, "supplier": supplier,
        "date": dt.date(2024, 3, 1), "condition": "全新", "serial_numbers": [],
        "capacity_kw": capacity_kw, "manufacture_date": None, "price_includes_vat": True,
        "claimed_pflops": None, "raw": json.dumps({"货物名称": name}, ensure_ascii=False),
    }


def _items() -> list[dict]:
    a, b, c = "a/tender_A.xlsx", "b/tender_B.csv", HOSTILE_FILE
    return [
        _item(1, a, 5, "ZB-2024-001", 1, "GPU服务器", 4, "台", 2_450_000.0, sheet="清单",
              brand="浪潮", model="NF5688M7 H100"),
        _item(2, a, 6, "ZB-2024-001", 2, "GPU服务器", 4, "台", 2_480_000.0, sheet="清单",
              brand="浪潮", model="NF5688M7 H100"),
        _item(3, a, 7, "ZB-2024-001", 3, "冷板式液冷系统", 1, "套", 20_000_000.0, sheet="清单",
              spec="制冷量800kW", capacity_kw=800.0),
        _item(4, a, 8, "ZB-2024-001", 4, "浸没式液冷设备", 1, "套", 5_200_000.0, sheet="清单",
              spec="制冷量500kW", capacity_kw=500.0),
        _item(5, a, 9, "ZB-2024-001", 5, "冷板式液冷CDU", 2, "台", 600_000.0, sheet="清单",
              spec="制冷量100kW", capacity_kw=100.0),
        _item(6, a, 10, "ZB-2024-001", 6, "GPU服务器", 2, "台", 2_400_000.0, sheet="清单",
              brand="超聚变", model="G8600 H100"),
        _item(7, a, 11, "ZB-2024-001", 7, "RTX 4090 服务器", 10, "台", 230_000.0, sheet="清单"),
        _item(8, a, 12, "ZB-2024-001", 8, "RTX 4090 服务器", 10, "台", 228_000.0, sheet="清单"),
        _item(9, b, 3, "ZB-2024-002", 1, "机头", 8, "台", 450_000.0, supplier="鼎盛数据有限公司"),
        _item(10, b, 4, "ZB-2024-002", 2, "GPU模组 HGX H100 8-GPU", 8, "套", 2_100_000.0,
              supplier="鼎盛数据有限公司"),
        _item(11, b, 5, "ZB-2024-002", 3, "GPU服务器", 2, "台", 2_500_000.0,
              model="H100", supplier="鼎盛数据有限公司"),
        _item(12, b, 6, "ZB-2024-002", 4, "RTX 4090 服务器", 5, "台", 225_000.0,
              supplier="鼎盛数据有限公司"),
        _item(13, b, 7, "ZB-2024-002", 5, "交换机", 2, "台", 300_000.0,
              supplier="鼎盛数据有限公司"),
        _item(14, c, 2, FORMULA_TENDER, 1, "GPU服务器 <b>bold</b>", 1, "台", 9_000_000.0,
              model="H100", supplier=FORMULA_SUPPLIER),
        _item(15, c, 3, FORMULA_TENDER, 2, "=1+1", 1, "台", 1.0, supplier=FORMULA_SUPPLIER),
    ]


#: English title/message of some findings; the others have none (older detectors).
ENGLISH = {
    "f-cool": ("Liquid cooling overpriced", "cold plate CNY 25,000/kW, reference 5,000-6,000"),
    "f-hostile": ("Price outlier", "<script>alert('en')</script> 3.6x the peer median"),
}


def _finding(run_id, finding_id, group_id, item, detector, kind, mechanism, severity, score,
             excess, title, message, evidence):
    row = {
        "run_id": run_id, "finding_id": finding_id, "group_id": group_id,
        "item_id": None if item is None else item["item_id"],
        "source_file": item["source_file"] if item else "b/tender_B.csv",
        "source_sheet": item["source_sheet"] if item else None,
        "source_row": item["source_row"] if item else None,
        "tender_id": item["tender_id"] if item else "ZB-2024-002",
        "line_no": item["line_no"] if item else None,
        "detector": detector, "kind": kind, "mechanism": mechanism, "severity": severity,
        "score": score, "est_excess_cny": excess, "title": title, "message": message,
        "evidence": json.dumps(evidence, ensure_ascii=False),
        "title_en": ENGLISH.get(finding_id, (None, None))[0],
        "message_en": ENGLISH.get(finding_id, (None, None))[1],
    }
    schema.Finding.model_validate(row)
    return row


def _findings(run_id: str, items: list[dict], *, old: bool = False) -> list[dict]:
    it = {i["item_id"]: i for i in items}
    rows = [
        _finding(run_id, "f-cool", "g-cool", it[3], "cooling-cold-plate-per-kw", "rule",
                 "liquid_cooling_markup", "high", 0.95, 15_600_000.0, "液冷单价虚高",
                 "冷板式液冷 ¥25,000/kW, 参考 ¥5,000-6,000/kW",
                 {"price_per_kw": 25000.0, "reference_high": 6000.0}),
        _finding(run_id, "f-cool-ecod", "g-cool-ecod", it[3], "ecod", "model",
                 "liquid_cooling_markup", "medium", 0.81, None, "模型异常: 液冷单价",
                 "ECOD 异常分 0.81", {"corroborates": ["f-cool"], "decision_score": 12.3}),
        _finding(run_id, "f-split-1", "g-split", it[9], "head-module-split", "rule",
                 "head_module_split", "critical", 0.9, 400_000.0, "机头+模组拆分计价",
                 "机头 + 模组 ¥2,550,000/台 ≥ 整机 ¥2,450,000", {"pair": [9, 10]}),
        _finding(run_id, "f-split-2", "g-split", it[10], "head-module-split", "rule",
                 "head_module_split", "critical", 0.9, None, "机头+模组拆分计价",
                 "机头 + 模组 ¥2,550,000/台 ≥ 整机 ¥2,450,000", {"pair": [9, 10]}),
        _finding(run_id, "f-capacity", "g-capacity", None, "capacity-claim", "rule",
                 "capacity_mismatch", "low", 0.5, None, "算力虚报",
                 "声称 500 PFLOPS, 实购 16 PFLOPS", {"claimed": 500, "bought": 16}),
    ]
    if not old:
        rows += [
            _finding(run_id, "f-hostile", "g-hostile", it[14], "iforest", "model",
                     "price_outlier", "medium", 0.7, 6_500_000.0, "价格异常",
                     HOSTILE_MESSAGE, {"peer_median": 2_450_000.0}),
            _finding(run_id, "f-formula", "g-formula", it[15], "bill-arithmetic", "rule",
                     "bill_arithmetic", "info", 0.2, 0.0, "=金额不符",
                     "-1+1 数量×单价与总价不符", {"note": "=cmd|' /C calc'!A0"}),
        ]
    else:
        rows.append(
            _finding(run_id, "f-dup-old", "g-dup-old", it[12], "dup-identical-line", "rule",
                     "duplicate_line", "medium", 0.6, 225_000.0, "重复计价", "同一行重复",
                     {}))
    return rows


def _files(run_id: str) -> list[dict]:
    rows = [
        {"source_file": "a/tender_A.xlsx", "format": "xlsx", "encoding": None, "sheets": 1,
             "rows_read": 12, "line_items": 8, "rejects": 1, "non_items": 3, "status": "ok", "error": None},
        {"source_file": "b/tender_B.csv", "format": "csv", "encoding": "gb18030", "sheets": 1,
             "rows_read": 8, "line_items": 5, "rejects": 1, "non_items": 2, "status": "ok", "error": None},
        {"source_file": HOSTILE_FILE, "format": "csv", "encoding": "utf-8", "sheets": 1,
             "rows_read": 3, "line_items": 2, "rejects": 0, "non_items": 1, "status": "ok", "error": None},
        {"source_file": "d/broken.xlsx", "format": "xlsx", "encoding": None, "sheets": 0,
             "rows_read": 0, "line_items": 0, "rejects": 0, "non_items": 0, "status": "error",
             "error": "d/broken.xlsx: cannot read: File is not a zip file"},
    ]
    for i, r in enumerate(rows):
        r.update(run_id=run_id, content_sha256=f"{i:064d}")
        schema.FileRecord.model_validate(r)
    return rows


def _rejects(run_id: str) -> list[dict]:
    rows = [
        {"source_file": "a/tender_A.xlsx", "source_sheet": "清单", "source_row": 13,
             "reason": "price_missing", "column": "单价", "detail": "单价 '面议' is not a price",
             "raw": json.dumps({"单价": "面议"}, ensure_ascii=False)},
        {"source_file": "b/tender_B.csv", "source_sheet": None, "source_row": 8,
             "reason": "quantity_unparseable", "column": "数量", "detail": "数量 '若干' is not a number",
             "raw": json.dumps({"数量": "若干"}, ensure_ascii=False)},
    ]
    for r in rows:
        r["run_id"] = run_id
        schema.Reject.model_validate(r)
    return rows


def _non_items(run_id: str) -> list[dict]:
    spec = [("a/tender_A.xlsx", "清单", [(1, "title"), (4, "header"), (14, "total")]),
            ("b/tender_B.csv", None, [(1, "title"), (2, "header")]),
            (HOSTILE_FILE, None, [(1, "header")])]
    rows = [{"run_id": run_id, "source_file": f, "source_sheet": s, "source_row": r, "kind": k, "text": k}
            for f, s, entries in spec for r, k in entries]
    for r in rows:
        schema.NonItem.model_validate(r)
    return rows


def _rule_runs(run_id: str) -> list[dict]:
    rows = [
        {"detector": "cooling-cold-plate-per-kw", "kind": "rule", "status": "ok", "rows_evaluated": 15,
             "rows_applicable": 3, "hits": 1},
        {"detector": "head-module-split", "kind": "rule", "status": "ok", "rows_evaluated": 15,
             "rows_applicable": 2, "hits": 2},
        {"detector": "capacity-claim", "kind": "rule", "status": "ok", "rows_evaluated": 15,
             "rows_applicable": 3, "hits": 1},
        {"detector": "bill-arithmetic", "kind": "rule", "status": "ok", "rows_evaluated": 15,
             "rows_applicable": 15, "hits": 1},
        {"detector": "serial-reuse", "kind": "rule", "status": "not_evaluated",
             "error": "Binder Error: column 'serials' not found <in view serial_reuse>"},
        {"detector": "ecod", "kind": "model", "status": "ok", "rows_evaluated": 15, "hits": 1},
        {"detector": "iforest", "kind": "model", "status": "ok", "rows_evaluated": 15, "hits": 1,
             "warning": "fewer than 20 lines: scores are rough"},
    ]
    for r in rows:
        r["run_id"] = run_id
        schema.RuleRun.model_validate(r)
    return rows


def build_fixture_db(path: Path) -> Path:
    """Write the two hand-made runs (old, then latest) to a DuckDB file at ``path``."""
    for run_id, started, old in ((RUN_OLD, dt.datetime(2024, 1, 1), True),
                                 (RUN_NEW, dt.datetime(2024, 2, 1), False)):
        items = [dict(i, run_id=run_id) for i in _items()]
        for i in items:
            schema.LineItem.model_validate(i)
        findings = _findings(run_id, items, old=old)
        files, rejects, non_items = _files(run_id), _rejects(run_id), _non_items(run_id)
        rule_runs = _rule_runs(run_id)
        run = {
            "run_id": run_id, "started_at": started, "finished_at": started + dt.timedelta(seconds=3),
            "tool_version": "0.1.0", "inputs": "[]", "options": "{}", "files": len(files),
            "rows_read": sum(f["rows_read"] for f in files), "line_items": len(items),
            "rejects": len(rejects), "non_items": len(non_items), "findings": len(findings),
            "rules_evaluated": 4, "rules_not_evaluated": 1, "status": "complete",
        }
        schema.Run.model_validate(run)
        tables = {
            "runs": pd.DataFrame([run]), "files": pd.DataFrame(files),
            "line_items": pd.DataFrame(items), "rejects": pd.DataFrame(rejects),
            "non_items": pd.DataFrame(non_items), "rule_runs": pd.DataFrame(rule_runs),
            "findings": pd.DataFrame(findings),
        }
        if not old:
            tables.update(stored_facts(run_id, tables["line_items"]))
        store.write_run(path, tables)
    return path


def stored_facts(run_id: str, line_items: pd.DataFrame) -> dict[str, object]:
    """The ``line_facts``, ``line_recognition`` and ``run_config`` rows ``score`` would store
    for these lines with the bundled rule pack."""
    from iccaudit.core.paths import bundled_rules_dir
    from iccaudit.detect.rules.ruleset import resolve_rule_dirs
    from iccaudit.enrich import build_sandbox, line_facts
    from iccaudit.enrich.facts import line_recognition
    from iccaudit.run.config import reference_dir_used, snapshot

    con = build_sandbox(line_items, reference_dir_used())
    try:
        facts = line_facts(con, run_id)
        recognition = line_recognition(con, run_id)
    finally:
        con.close()
    used = snapshot(resolve_rule_dirs(bundled_rules_dir(), []), models=True, models_config=None)
    return {"line_facts": facts, "line_recognition": recognition,
            "run_config": used.frame(run_id)}
