"""The review loop end to end, as auditors work: score, export to Excel, fill verdicts in the
workbook, import, score again; verdicts carried by fingerprint, dismissed findings out of the
totals, precision per rule from the reviews."""

from __future__ import annotations

import json
import re
from pathlib import Path

import openpyxl

from iccaudit.report.export import (
    FINDING_COLUMNS,
    FINGERPRINT_HEADER,
    REASON_HEADER,
    VERDICT_HEADER,
)
from tests.review.conftest import SAMPLES, iccaudit, query, summary

HEADERS = [h for _, h in FINDING_COLUMNS]


def fill(path: Path, verdicts: dict[str, tuple[str, str | None]]) -> None:
    """Type verdicts into the exported workbook as a reviewer would: by fingerprint."""
    wb = openpyxl.load_workbook(path)
    ws = wb["发现 findings"]
    fp_col = HEADERS.index(FINGERPRINT_HEADER) + 1
    for row in range(2, ws.max_row + 1):
        fp = ws.cell(row=row, column=fp_col).value
        if fp in verdicts:
            status, reason = verdicts[fp]
            ws.cell(row=row, column=HEADERS.index(VERDICT_HEADER) + 1, value=status)
            ws.cell(row=row, column=HEADERS.index(REASON_HEADER) + 1, value=reason)
    wb.save(path)


def test_score_export_review_import_rescore(db, tmp_path):
    latest = "(SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)"
    first = query(db, f"SELECT run_id FROM runs WHERE run_id = {latest}")[0][0]
    xlsx = tmp_path / "review.xlsx"
    iccaudit("export", "--db", str(db), "--xlsx", str(xlsx))

    # the workbook: fingerprint column, empty verdict column with a drop-down
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["发现 findings"]
    assert [c.value for c in ws[1]][:3] == [VERDICT_HEADER, REASON_HEADER, FINGERPRINT_HEADER]
    assert all(ws.cell(row=r, column=1).value is None for r in range(2, ws.max_row + 1))
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert lists and "confirmed,dismissed,needs-info" in lists[0].formula1
    assert str(lists[0].sqref) == f"A2:A{ws.max_row}"

    # pick findings: the two largest of one rule dismissed, others confirmed
    rows = query(db, f"""SELECT fingerprint, detector, est_excess_cny FROM findings
                         WHERE run_id = {latest} AND kind = 'rule'
                         ORDER BY est_excess_cny DESC NULLS LAST, fingerprint""")
    by_rule: dict[str, list[str]] = {}
    for fp, det, _ in rows:
        by_rule.setdefault(det, []).append(fp)
    peak = by_rule["above-reference-peak"]
    cooling = by_rule["cooling-per-kw-markup"]
    assert len(peak) >= 3 and len(cooling) >= 2
    dismissed = {peak[0]: ("dismissed", "contract price includes 5 years of service"),
                 peak[1]: ("Dismissed ", "declared refurbished, contract allows it")}
    confirmed = {fp: ("confirmed", None) for fp in [peak[2], *cooling[:2]]}
    other = next(fps[0] for det, fps in sorted(by_rule.items())
                 if det not in ("above-reference-peak", "cooling-per-kw-markup"))
    fill(xlsx, {**dismissed, **confirmed, other: ("needs-info", "need the delivery note")})
    out = iccaudit("verdicts", "import", str(xlsx), "--db", str(db), "--reviewer", "wang")
    assert re.search(r"recorded \d+ verdict\(s\)", out.stdout)
    stored = dict(query(db, "SELECT fingerprint, status FROM current_verdicts"))
    assert stored[peak[0]] == stored[peak[1]] == "dismissed"  # 'Dismissed ' normalised
    assert all(stored[fp] == "confirmed" for fp in confirmed)
    assert stored[other] == "needs-info" and len(stored) == 6
    assert query(db, "SELECT DISTINCT reviewer, run_id FROM verdicts") == [("wang", first)]

    money_dismissed = sum(m for fp, _, m in rows if fp in dismissed and m)
    before = summary(iccaudit("rescore", "--db", str(db), "--format", "json"))
    # score again from the files: a new run with new run and item ids
    again = summary(iccaudit("score", str(SAMPLES), "--db", str(db), "--quiet",
                             "--format", "json"))
    both = summary(iccaudit("rescore", "--db", str(db), "--format", "json",
                            "--include-dismissed"))
    for s in (before, again):
        assert s["dismissed_rows"] == 2 and not s["dismissed_included"]
        assert s["with_prior_verdict"] == len(stored)
    assert both["dismissed_included"]
    assert round(both["est_excess_cny"] - again["est_excess_cny"], 2) == round(money_dismissed, 2)

    # the latest run shows the prior verdicts on the same fingerprints
    carried = dict(query(db, "SELECT fingerprint, verdict FROM latest_findings "
                             "WHERE verdict IS NOT NULL"))
    assert carried == stored
    assert query(db, "SELECT count(*) FROM latest_findings WHERE dismissed")[0][0] == 2
    assert query(db, "SELECT count(DISTINCT run_id) FROM runs")[0][0] == 4

    # the report: dismissed rows listed and marked, out of the headline money
    html = tmp_path / "report.html"
    iccaudit("report", "--db", str(db), "--out", str(html), "--lang", "en")
    text = html.read_text(encoding="utf-8")
    assert "2 finding rows dismissed or suppressed" in text
    assert text.count('class=dismissed') == 2
    assert f"¥{again['est_excess_cny']:,.0f}" in text

    # precision per rule from the reviews, with Wilson intervals
    ev = json.loads(iccaudit("evaluate", "--verdicts", "--db", str(db), "--format",
                             "json").stdout)
    rule = {r["key"]: r for r in ev["rules"]}
    assert rule["above-reference-peak"]["n"] == 3
    assert abs(rule["above-reference-peak"]["precision"] - 1 / 3) < 1e-9
    assert abs(rule["above-reference-peak"]["ci_low"] - 0.0615) < 1e-3
    assert abs(rule["above-reference-peak"]["ci_high"] - 0.7923) < 1e-3
    assert rule["cooling-per-kw-markup"]["precision"] == 1.0
    mech = {r["key"]: r for r in ev["mechanisms"]}
    assert mech["price_outlier"]["dismissed"] == 2
    stats = iccaudit("rules", "stats", "--db", str(db), "--format", "json",
                     "--threshold", "0.5")
    listed = json.loads(stats.stdout)
    assert [r["detector"] for r in listed] == ["above-reference-peak"]
    assert listed[0]["dismissed_share"] > 0.5
