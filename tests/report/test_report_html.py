"""The HTML report: every finding, both languages, hostile values escaped, plots, run choice."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from iccaudit import store
from iccaudit.report.html import write_report
from iccaudit.report.svg import bar_chart
from tests.report.dbfactory import (
    FORMULA_TENDER,
    HOSTILE_FILE,
    HOSTILE_MESSAGE,
    RUN_NEW,
    RUN_OLD,
)


class Collector(HTMLParser):
    """Parses the report like a browser would: tags with attributes, script text, data."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def parse(path: Path) -> Collector:
    c = Collector()
    c.feed(path.read_text(encoding="utf-8"))
    return c


def latest_findings(db: Path) -> pd.DataFrame:
    con = store.connect(db, read_only=True)
    try:
        run_id = store.latest_run_id(con)
        return con.execute("SELECT * FROM findings WHERE run_id = ?", [run_id]).df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def zh_report(fixture_db, tmp_path_factory) -> Path:
    """The fixture database's latest run in Chinese, rendered once for the module."""
    return write_report(fixture_db, tmp_path_factory.mktemp("zh") / "r.html")


@pytest.fixture(scope="module")
def en_report(fixture_db, tmp_path_factory) -> Path:
    return write_report(fixture_db, tmp_path_factory.mktemp("en") / "r.html", lang="en")


def rows_of(doc: Collector) -> list[dict]:
    return [a for t, a in doc.tags if t == "tr" and "data-mech" in a]


def test_report_contains_every_finding(any_db, tmp_path):
    out = write_report(any_db, tmp_path / "r.html")
    doc = parse(out)
    findings = latest_findings(any_db)
    rows = rows_of(doc)
    assert len(rows) == len(findings)
    assert sorted(r["data-mech"] for r in rows) == sorted(findings["mechanism"])
    assert sorted(r["data-sev"] for r in rows) == sorted(findings["severity"])
    body = dict(doc.tags)["body"]
    assert int(body["data-findings"]) == len(findings)
    text = "".join(doc.text)
    for name in set(findings["source_file"]):
        assert name in text  # every source file is named (unescaped text after parsing)


def test_report_is_self_contained(zh_report):
    html = zh_report.read_text(encoding="utf-8")
    # no external resource of any kind: nothing to load from the network or the disk
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html)
    assert "@import" not in html and "<link" not in html
    assert '"Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC"' in html


def test_chinese_and_english(zh_report, en_report, fixture_db, tmp_path):
    zh = zh_report.read_text(encoding="utf-8")
    en = en_report.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in zh and '<html lang="en">' in en
    assert "发现明细" in zh and "涉嫌超额金额" in zh and "液冷虚高" in zh
    assert "Findings" in en and "Money at risk" in en
    assert "liquid cooling quoted far above market" in en
    assert "发现明细" not in en and "液冷虚高" not in en
    # English messages where detectors wrote them, the Chinese original otherwise
    assert "Liquid cooling overpriced" in en and "Liquid cooling overpriced" not in zh
    assert "液冷单价虚高" in zh and "液冷单价虚高" not in en
    assert "机头+模组拆分计价" in en  # no English text stored for the split pair
    assert "&lt;script&gt;alert(&#39;en&#39;)" in en and "<script>alert(" not in en
    with pytest.raises(ValueError, match="lang"):
        write_report(fixture_db, tmp_path / "x.html", lang="fr")


def test_hostile_values_are_escaped(zh_report):
    html = zh_report.read_text(encoding="utf-8")
    doc = parse(zh_report)
    # exactly one script element: ours; the data's <script> and <b> arrive as text
    assert [t for t, _ in doc.tags].count("script") == 1
    assert "<script>alert(" not in html and "<script>document.title" not in html
    assert "&lt;script&gt;alert(&#39;file&#39;)&lt;/script&gt;" in html
    text = "".join(doc.text)
    assert HOSTILE_MESSAGE in text and HOSTILE_FILE in text and FORMULA_TENDER in text
    assert "GPU服务器 <b>bold</b>" in text  # the item name in a plot tooltip, as text
    svg_titles = re.findall(r"<title>(.*?)</title>", html)
    assert any("&lt;script&gt;" in t for t in svg_titles)


def test_not_evaluated_rules_and_failed_files_are_prominent(zh_report):
    doc = parse(zh_report)
    html = zh_report.read_text(encoding="utf-8")
    alerts = html.split('id="alerts"', 1)[1].split("</section>", 1)[0]
    assert "serial-reuse" in alerts and "Binder Error" in alerts
    assert "d/broken.xlsx: cannot read" in alerts
    # the alert box comes before the summary, the tables and the findings
    assert html.index('id="alerts"') < html.index('id="summary"') < html.index('id="findings"')
    assert any(t == "table" and a.get("id") == "not-evaluated" for t, a in doc.tags)


def test_reconciliation_and_rejects(en_report):
    html = en_report.read_text(encoding="utf-8")
    recon = html.split('id="reconciliation"', 1)[1].split("</table>", 1)[0]
    assert recon.count("<tr") == 1 + 4  # header + one row per file
    assert recon.count("✓ reconciles") == 3
    reasons = html.split('id="reject-reasons"', 1)[1].split("</table>", 1)[0]
    assert "price_missing" in reasons and "quantity_unparseable" in reasons
    rejects = html.split('id="rejects"', 1)[1].split("</table>", 1)[0]
    assert "单价 &#39;面议&#39; is not a price" in rejects


def test_money_is_not_counted_twice(zh_report):
    html = zh_report.read_text(encoding="utf-8")
    tenders = html.split('id="money-tender"', 1)[1].split("</table>", 1)[0]
    # the cooling line has a rule finding (15.6 M) and a corroborating model finding (none)
    assert "¥15,600,000" in tenders
    assert "¥22,500,000" in html.split('id="summary"', 1)[1].split("</div>\n\n", 1)[0]
    mech = html.split('id="money-mechanism"', 1)[1].split("</table>", 1)[0]
    assert mech.index("liquid_cooling_markup") < mech.index("price_outlier")


def test_plots_are_inline_svg(zh_report):
    html = zh_report.read_text(encoding="utf-8")
    for chart in ("plot-tender", "plot-mechanism", "plot-cooling", "plot-peers"):
        assert f'<svg xmlns="http://www.w3.org/2000/svg" id="{chart}"' in html
    cooling = html.split('id="plot-cooling"', 1)[1].split("</svg>", 1)[0]
    assert cooling.count("<circle") == 3  # two cold plate lines, one immersion line
    assert cooling.count('class="pt fl"') == 1  # the flagged one
    assert cooling.count('class="band"') == 2  # cold plate and immersion reference bands
    peers = html.split('id="plot-peers"', 1)[1].split("</svg>", 1)[0]
    assert "H100" in peers and "RTX 4090" in peers
    assert peers.count('class="pt fl"') >= 1  # the ¥9 M H100 server


def test_run_choice_and_errors(fixture_db, tmp_path):
    old = write_report(fixture_db, tmp_path / "old.html", run_id=RUN_OLD)
    assert "dup-identical-line" in old.read_text(encoding="utf-8")
    new = write_report(fixture_db, tmp_path / "new.html", run_id=RUN_NEW)
    assert "dup-identical-line" not in new.read_text(encoding="utf-8")
    with pytest.raises(store.StoreError, match="no run 'nope'"):
        write_report(fixture_db, tmp_path / "x.html", run_id="nope")
    with pytest.raises(store.StoreError, match="no such database"):
        write_report(tmp_path / "missing.duckdb", tmp_path / "x.html")
    duckdb.connect(str(tmp_path / "other.duckdb")).close()
    with pytest.raises(store.StoreError, match="not an iccaudit"):
        write_report(tmp_path / "other.duckdb", tmp_path / "x.html")


def test_empty_run_renders(tmp_path):
    db = tmp_path / "empty.duckdb"
    run = {"run_id": "r0", "started_at": dt.datetime(2024, 5, 1), "finished_at": None,
               "tool_version": "0.1.0", "inputs": "[]", "options": "{}", "status": "complete"}
    store.write_run(db, {"runs": pd.DataFrame([run])})
    html = write_report(db, tmp_path / "r.html", lang="en").read_text(encoding="utf-8")
    assert "No lines of this run to plot." in html
    assert 'data-findings="0"' in html and "Every rule ran" in html


def test_cli_report_writes_and_fails_in_one_line(fixture_db, tmp_path):
    from iccaudit.cli import cli

    runner = CliRunner()
    out = tmp_path / "cli.html"
    res = runner.invoke(cli, ["report", "--db", str(fixture_db), "--out", str(out),
                              "--lang", "en"])
    assert res.exit_code == 0, res.output
    assert out.exists() and "Findings" in out.read_text(encoding="utf-8")
    res = runner.invoke(cli, ["report", "--db", str(tmp_path / "none.duckdb"),
                              "--out", str(out)])
    assert res.exit_code == 1
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_bar_chart_escapes_labels():
    svg = bar_chart(["<img src=x onerror=alert(1)>", "正常"], [2.0, 1.0], title="t&t",
                    fmt=str, chart_id='"x')
    assert "<img" not in svg and "&lt;img" in svg and "t&amp;t" in svg
    assert 'id="&quot;x"' in svg


def test_small_model_peer_groups_are_a_note_not_an_alarm(samples_db, tmp_path):
    con = store.connect(samples_db, read_only=True)
    try:
        run_id = store.latest_run_id(con)
        small = con.execute(
            """SELECT count(*) FROM rule_runs WHERE run_id = ? AND kind = 'model'
               AND status = 'not_evaluated' AND error LIKE '%min_peers%'""", [run_id]
        ).fetchall()[0][0]
        failed_rules = con.execute(
            "SELECT count(*) FROM rule_runs WHERE run_id = ? AND kind = 'rule' "
            "AND status = 'not_evaluated'", [run_id]).fetchall()[0][0]
    finally:
        con.close()
    assert small > 0 and failed_rules == 0  # the bundled corpus is small: some groups are
    out = write_report(samples_db, tmp_path / "r.html", lang="en")
    html = out.read_text(encoding="utf-8")
    assert 'id="not-evaluated"' not in html
    note = html.split('id="small-groups">', 1)[1].split("</p>", 1)[0]
    assert f"{small} peer group(s)" in note
