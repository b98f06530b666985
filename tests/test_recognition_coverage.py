"""The learned fallback, recognised_by, severity_if_model, and recognition coverage as the
summary, the DuckDB view and ``iccaudit lexicon gaps`` show it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
from click.testing import CliRunner

from iccaudit.cli import cli
from iccaudit.detect.rules.ruleset import load_ruleset
from iccaudit.detect.rules.runner import run_rules
from iccaudit.enrich import build_sandbox
from iccaudit.enrich.fallback import CategoryModel
from tests.enrich.conftest import REFERENCE_DIR, frame, line

RULE = """
id: network-probe
title: probe
title_zh: 探测
mechanism: price_outlier
severity: high
severity_if_model: low
description: a test rule
rationale: a test rule
where: category = 'network'
message: {zh: "{item_name}", en: "{item_name}"}
evidence: [item_name, recognised_by]
tests:
  - {name: hit, expect: hit, row: {item_name: IB交换机, unit_price_cny: 1000}}
  - {name: miss, expect: miss, row: {item_name: GPU服务器, unit_price_cny: 1000}}
"""


def test_fallback_is_deterministic_and_admits_doubt():
    texts = ["ib交换机 64口", "400g光模块", "gpu server 8卡", "gpu server h100", "nvme 存储"]
    labels = ["network", "network", "gpu_server", "gpu_server", "storage"]
    a = CategoryModel(min_confidence=0.99).fit(texts, labels)
    b = CategoryModel(min_confidence=0.99).fit(list(reversed(texts)), list(reversed(labels)))
    got_a, conf_a = a.predict(["交换机 48口", "某某设备"])
    got_b, conf_b = b.predict(["交换机 48口", "某某设备"])
    assert conf_a.tolist() == conf_b.tolist()
    assert got_a == got_b == [None, None]  # nothing that sure on five lines
    loose = CategoryModel(min_confidence=0.0).fit(texts, labels)
    assert loose.predict(["交换机 48口"])[0] == ["network"]


def test_recognised_by_and_severity_if_model(tmp_path):
    (tmp_path / "network-probe.yaml").write_text(RULE, encoding="utf-8")
    ruleset = load_ruleset([tmp_path])
    assert not ruleset.errors, ruleset.errors
    rows = [line("IB交换机", 300_000), line("Mellanox QM9790", 300_000, spec="NDR 64口"),
            line("某某设备", 1_000)]
    con = build_sandbox(frame(rows), REFERENCE_DIR)
    got = con.execute("SELECT item_name, recognised_by, category, model_confidence IS NOT NULL "
                      "FROM items ORDER BY item_id").fetchall()
    assert got == [("IB交换机", "lexicon", "network", False),
                   ("Mellanox QM9790", "model", "network", True),
                   ("某某设备", "none", "other", True)]
    findings, _ = run_rules(con, ruleset.rules, "r1")
    by_item = dict(zip(findings["item_id"], findings["severity"], strict=True))
    assert by_item == {1: "high", 2: "low"}
    evidence = json.loads(findings.loc[findings["item_id"] == 2, "evidence"].iloc[0])
    assert evidence["recognised_by"] == "model"


def test_severity_if_model_needs_recognised_by(tmp_path):
    text = RULE.replace("where: category = 'network'",
                        "view: tender_compute\nwhere: claimed_pflops > 0")
    text = text.replace("evidence: [item_name, recognised_by]", "evidence: [tender_id]")
    text = text.replace('"{item_name}"', '"{tender_id}"')
    (tmp_path / "network-probe.yaml").write_text(text, encoding="utf-8")
    errors = load_ruleset([tmp_path]).errors
    assert any(e.code == "E103" and "severity_if_model" in e.message for e in errors)


def _tender(path: Path) -> None:
    rows = [("1", "GPU服务器", "8*H100", 2, 2_400_000), ("2", "Mellanox QM9790", "NDR 64口", 4,
            300_000), ("3", "某某设备", "", 10, 50_000), ("4", "某某设备", "", 1, 50_000)]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["序号", "货物名称", "技术参数", "数量", "单价"])
        w.writerows(rows)


def test_coverage_in_summary_view_and_gaps(tmp_path):
    _tender(tmp_path / "t.csv")
    db = tmp_path / "f.duckdb"
    runner = CliRunner()
    scored = runner.invoke(cli, ["score", str(tmp_path / "t.csv"), "--db", str(db),
                                 "--no-models", "-q", "--format", "json"])
    assert scored.exit_code == 0, scored.output
    summary = json.loads(scored.stdout)["recognition"]
    assert (summary["lines"], summary["lines_unknown"], summary["lines_model_only"]) == (4, 2, 1)
    assert summary["money_unknown_cny"] == 550_000
    assert summary["largest_unrecognised"][0]["money_cny"] == 1_200_000
    [per_file] = summary["files"]
    assert (per_file["lines"], per_file["lines_unknown"], per_file["lines_model_only"]) == (4, 2, 1)
    table = runner.invoke(cli, ["score", str(tmp_path / "t.csv"), "--db",
                                str(tmp_path / "g.duckdb"), "--no-models", "-q"])
    assert "not recognised: unknown" in table.output
    assert "2 unknown, 1 model-only of 4 lines (26.7% of its money" in table.output
    with duckdb.connect(str(db), read_only=True) as con:
        run = con.execute("SELECT scope, lines, lines_unknown, lines_model_only, money_cny, "
                          "share_money_unknown FROM recognition_coverage "
                          "WHERE scope = 'run'").fetchone()
        files = con.execute("SELECT count(*) FROM recognition_coverage "
                            "WHERE scope = 'file'").fetchone()
    assert run[:5] == ("run", 4, 2, 1, 4_800_000 + 1_200_000 + 550_000)
    assert abs(run[5] - 550_000 / 6_550_000) < 1e-12 and files == (1,)
    gaps = runner.invoke(cli, ["lexicon", "gaps", "--db", str(db), "--format", "json"])
    assert gaps.exit_code == 0, gaps.output
    listed = json.loads(gaps.output)
    assert [(g["item_name"], g["lines"], g["money_cny"]) for g in listed] == [
        ("Mellanox QM9790", 1, 1_200_000), ("某某设备", 2, 550_000)]
    table = runner.invoke(cli, ["lexicon", "gaps", "--db", str(db), "--lines"])
    assert "2 unknown and 1 model-only line(s) of 4" in table.output
    out = tmp_path / "r.html"
    reported = runner.invoke(cli, ["report", "--db", str(db), "--out", str(out), "--lang", "en"])
    assert reported.exit_code == 0, reported.output
    html = out.read_text(encoding="utf-8")
    assert ('<p id="recognition">unknown: 2 lines (50.0%), ¥550,000 (8.4%) · model-only: 1 lines '
            "(25.0%), ¥1,200,000 (18.3%)</p>") in html
    assert "Mellanox QM9790" in html
