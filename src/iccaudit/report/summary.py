"""The closing summary of ``iccaudit score``: a table for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any

from iccaudit.core.schema import SEVERITIES


def summary_dict(result: Any, include_dismissed: bool = False) -> dict[str, Any]:
    """Everything the summary shows, as plain JSON-able data.

    Findings reviewers dismissed (on the same fingerprint, in any earlier run) or suppressed
    are left out of the counts and the money unless ``include_dismissed``; how many there
    were is said beside."""
    from iccaudit.report.data import review_marks

    all_findings = result.findings
    marks = review_marks(result.db, result.run_id)
    dismissed_ids = set(marks.loc[marks["dismissed"], "finding_id"])
    findings = all_findings
    if dismissed_ids and not include_dismissed and len(all_findings):
        findings = all_findings[~all_findings["finding_id"].isin(dismissed_ids)]
    by_sev = {s: 0 for s in SEVERITIES}
    if len(findings):
        counts = findings.groupby("severity")["group_id"].nunique()
        by_sev.update({str(k): int(v) for k, v in counts.items()})
    rule_runs = result.rule_runs
    not_eval = []
    if len(rule_runs):
        ne = rule_runs[rule_runs["status"] == "not_evaluated"]
        not_eval = [
            {"detector": d, "kind": k, "error": e}
            for d, k, e in zip(ne["detector"], ne["kind"], ne["error"], strict=True)
        ]
    excess = 0.0
    if len(findings) and "est_excess_cny" in findings:
        excess = float(findings["est_excess_cny"].fillna(0).sum())
    files = result.files
    return {
        "run_id": result.run_id,
        "db": str(result.db),
        "files": len(files),
        "files_with_errors": int((files["status"] == "error").sum()),
        "files_skipped": int((files["status"] == "skipped").sum()),
        "rows_read": int(result.run["rows_read"]),
        "line_items": int(result.run["line_items"]),
        "rejects": int(result.run["rejects"]),
        "non_items": int(result.run["non_items"]),
        "findings": int(findings["group_id"].nunique()) if len(findings) else 0,
        "finding_rows": len(findings),
        "findings_by_severity": by_sev,
        "est_excess_cny": round(excess, 2),
        "with_prior_verdict": int(marks["verdict"].notna().sum()),
        "dismissed_rows": len(dismissed_ids),
        "dismissed_included": bool(include_dismissed),
        "rules_evaluated": int(result.run["rules_evaluated"]),
        "not_evaluated": not_eval,
        "skipped_files": [{"path": p, "reason": r} for p, r in result.skipped],
        "errors": list(result.errors),
        "warnings": list(result.warnings),
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "recognition": getattr(result, "coverage", None) or {},
    }


def print_summary(result: Any, fmt: str = "table", include_dismissed: bool = False) -> None:
    """Print the summary to stdout (table or json); warnings and errors go to stderr."""
    data = summary_dict(result, include_dismissed=include_dismissed)
    if fmt == "json":
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    out = Console()
    err = Console(stderr=True)
    for line in data["errors"]:
        err.print(f"[red]error:[/red] {line}", markup=True, highlight=False, soft_wrap=True)
    for line in data["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)
    for item in data["skipped_files"]:
        err.print(f"skipped: {item['path']} ({item['reason']})", highlight=False, soft_wrap=True)

    table = Table(title=f"iccaudit run {data['run_id']}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("files", f"{data['files']} ({data['files_with_errors']} with errors"
                  + (f", {data['files_skipped']} skipped)" if data["files_skipped"] else ")"))
    table.add_row("rows read", f"{data['rows_read']:,}")
    table.add_row("line items", f"{data['line_items']:,}")
    table.add_row("rejects", f"{data['rejects']:,}")
    table.add_row("non-items (titles, headers, blanks, totals)", f"{data['non_items']:,}")
    table.add_row("rules evaluated", f"{data['rules_evaluated']}")
    rules_ne = sum(1 for ne in data["not_evaluated"] if ne["kind"] == "rule")
    table.add_row("rules NOT evaluated", f"[bold red]{rules_ne}[/bold red]" if rules_ne else "0")
    table.add_row("model peer groups not compared",
                  str(sum(1 for ne in data["not_evaluated"] if ne["kind"] == "model")))
    for sev in reversed(SEVERITIES):
        table.add_row(f"findings: {sev}", f"{data['findings_by_severity'][sev]:,}")
    table.add_row("est. money at risk (CNY)", f"¥{data['est_excess_cny']:,.0f}")
    if data["with_prior_verdict"]:
        table.add_row("finding rows with a prior verdict", f"{data['with_prior_verdict']:,}")
        table.add_row("dismissed or suppressed rows" + (" (counted above)" if include_dismissed
                                                        else " (not counted above)"),
                      f"{data['dismissed_rows']:,}")
    cov = data["recognition"]
    if cov.get("lines"):
        money = cov["money_cny"] or 1.0
        for label, n, m in (("unknown", cov["lines_unknown"], cov["money_unknown_cny"]),
                            ("model-only", cov["lines_model_only"],
                             cov["money_model_only_cny"])):
            table.add_row(f"not recognised: {label}",
                          f"{n:,} ({n / cov['lines']:.1%} of lines, {m / money:.1%} of money)")
    out.print(table)
    for f in cov.get("files", []):
        share = f["share_money_not_lexicon"] or 0.0
        err.print(f"coverage: {f['source_file']}: {f['lines_unknown']} unknown, "
                  f"{f['lines_model_only']} model-only of {f['lines']} lines "
                  f"({share:.1%} of its money not recognised by the lexicon)",
                  highlight=False, soft_wrap=True)
    for line in cov.get("largest_unrecognised", []):
        err.print(f"not recognised ({line['recognised_by']}): {line['source_file']} line "
                  f"{line['line_no']} {line['item_name']!r} ¥{line['money_cny']:,.0f} "
                  "(iccaudit lexicon gaps lists them all)", highlight=False, soft_wrap=True)
    # Rules not evaluated are each a problem to fix; small model peer groups are expected in
    # small batches, so they are counted here and listed in the rule_runs table.
    for ne in data["not_evaluated"]:
        if ne["kind"] == "rule":
            err.print(f"[bold red]rule NOT evaluated:[/bold red] {ne['detector']}: {ne['error']}",
                      highlight=False, soft_wrap=True)
    groups = [ne for ne in data["not_evaluated"] if ne["kind"] == "model"]
    if groups:
        err.print(f"models: {len(groups)} peer group(s) too small or unusable, not compared "
                  "(SELECT * FROM rule_runs WHERE kind = 'model' AND status = 'not_evaluated')",
                  highlight=False, soft_wrap=True)
    out.print(f"written to {data['db']}", highlight=False)
    sys.stdout.flush()
