"""The HTML report of one run: a single self-contained file that reads offline.

No network: CSS and JavaScript are inline, plots are hand-written inline SVG
(:mod:`iccaudit.report.svg`). Tender files are hostile input, so the template is rendered by
jinja2 with autoescape on, and the SVG helpers escape every string themselves.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TypedDict

import pandas as pd

from iccaudit import __version__
from iccaudit.core.schema import SEVERITY_RANK
from iccaudit.report import data as rdata
from iccaudit.report.labels import (
    FORMS,
    LABELS,
    LANGS,
    SEVERITY_NAMES,
    mechanism_name,
    reason_name,
)
from iccaudit.report.svg import StripRow, bar_chart, strip_chart

#: Rejects listed row by row in the report; the count per reason is always complete.
MAX_REJECT_ROWS = 1000
#: Tenders drawn in the bar chart (the table lists them all).
TOP_TENDERS = 20


#: Unrecognised lines listed in the report (the largest by money).
MAX_UNRECOGNISED_ROWS = 10


def money(value: float | None) -> str:
    """¥ with thousands separators; an empty string for no amount."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"¥{value:,.0f}"


def _per_kw(value: float) -> str:
    return f"¥{value:,.0f}"


def _ratio(value: float) -> str:
    return f"{value:g}×"


def write_report(db: str | Path, out: str | Path, lang: str = "zh",
                 run_id: str | None = None, include_dismissed: bool = False) -> Path:
    """Write the HTML report of a run (default: the latest complete run) to ``out``.

    Raises :class:`iccaudit.store.StoreError` (one line) when the database or run is missing.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    html = render_report(db, lang=lang, run_id=run_id, include_dismissed=include_dismissed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def render_report(db: str | Path, lang: str = "zh", run_id: str | None = None,
                  include_dismissed: bool = False) -> str:
    """The report as one HTML string. Findings reviewers dismissed or suppressed are listed,
    marked, and left out of the totals unless ``include_dismissed``."""
    import jinja2

    run = rdata.load_run(db, run_id)
    t = LABELS[lang]
    findings = rdata.headline(run.findings, include_dismissed)
    n_dismissed = int(run.findings.get("dismissed", pd.Series(dtype=bool))
                      .fillna(False).astype(bool).sum())
    context = {
        "lang": lang,
        "t": t,
        "version": __version__,
        "run": run.run,
        "run_id": run.run_id,
        "config_sha256": run.config_sha256,
        "stats": _stats(run, findings),
        "dismissed_line": (t["dismissed_counted"] if include_dismissed
                           else t["dismissed_note"]).format(n=n_dismissed)
        if n_dismissed else None,
        "suppressions": _suppressions(run),
        # a rule that could not run is an alarm; a model peer group too small to compare is
        # expected in small batches and is counted, not alarmed (details in the detectors table)
        "not_evaluated": run.rule_runs[(run.rule_runs["status"] == "not_evaluated")
                                       & ~_small_group(run.rule_runs)].to_dict("records"),
        "small_groups": int(_small_group(run.rule_runs).sum()),
        "failed_files": run.files[run.files["status"] == "error"].to_dict("records"),
        "unreconciled": run.files[~run.files["reconciles"].fillna(False).astype(bool)]
        .to_dict("records"),
        "files": run.files.to_dict("records"),
        "reject_reasons": _reject_reasons(run.rejects, lang),
        "rejects": run.rejects.head(MAX_REJECT_ROWS).to_dict("records"),
        "rejects_cut": t["rejects_cut"].format(shown=MAX_REJECT_ROWS, total=len(run.rejects))
        if len(run.rejects) > MAX_REJECT_ROWS else None,
        "by_tender": rdata.money_by(findings, "tender_id", t["unknown"]).to_dict("records"),
        "by_supplier": rdata.money_by(findings, "supplier", t["unknown"]).to_dict("records"),
        "by_mechanism": _by_mechanism(findings, lang),
        "mechanisms": sorted(findings["mechanism"].unique()) if len(findings) else [],
        "severities": [s for s in SEVERITY_RANK if s in set(findings["severity"])],
        "rows": _finding_rows(run.findings, lang),
        "rule_runs": run.rule_runs.to_dict("records"),
        "plots": _plots(db, run, lang, findings),
        "recognition": _recognition(db, run.run_id),
        "money": money,
        "mech_name": lambda m: mechanism_name(m, lang),
        "sev_name": lambda s: SEVERITY_NAMES[lang].get(s, s),
        "blank": _blank,
    }
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,  # every value from a tender file is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(**context)


def _recognition(db: str | Path, run_id: str) -> dict[str, object] | None:
    """The run's recognition coverage (run, files) and its largest unrecognised lines."""
    from iccaudit.store.coverage import coverage, gaps, has_recognition

    con = rdata.open_db(db)
    try:
        if not has_recognition(con, run_id):
            return None
        cov = coverage(con, run_id)
        shares = [c for c in cov.columns if c.startswith("share_")]
        cov[shares] = cov[shares].fillna(0.0)
        largest = gaps(con, run_id, MAX_UNRECOGNISED_ROWS, lines=True)
    finally:
        con.close()
    return {"run": cov[cov["scope"] == "run"].to_dict("records")[0],
            "files": cov[cov["scope"] == "file"].to_dict("records"),
            "largest": largest.to_dict("records")}


def _blank(value: object) -> object:
    """None/NaN/NA shown as an empty cell."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def _suppressions(run: rdata.RunData) -> list[dict[str, object]]:
    s = run.suppressions
    if s is None or s.empty:
        return []
    applies = s["fingerprint"].where(s["scope"] == "line",
                                     s["supplier"].where(s["scope"] == "supplier",
                                                         s["condition"]))
    return [{str(k): v for k, v in r.items()}
            for r in s.assign(applies=applies.fillna("")).to_dict("records")]


def _stats(run: rdata.RunData, f: pd.DataFrame) -> dict[str, object]:
    """Headline figures; ``f`` the findings that count (see :func:`rdata.headline`)."""
    rr = run.rule_runs
    return {
        "listed": len(run.findings),
        "files": len(run.files),
        "rows_read": int(run.files["rows_read"].sum()),
        "line_items": int(run.files["stored_line_items"].sum()),
        "rejects": len(run.rejects),
        "non_items": int(run.files["stored_non_items"].sum()),
        "findings": len(f),
        "groups": int(f["group_id"].nunique()) if len(f) else 0,
        "money": float(f["est_excess_cny"].sum()) if len(f) else 0.0,
        "rules_ok": int(((rr["kind"] == "rule") & (rr["status"] == "ok")).sum()),
        "rules_ne": int(((rr["status"] == "not_evaluated") & ~_small_group(rr)).sum()),
    }


def _small_group(rule_runs: pd.DataFrame) -> pd.Series:
    """Model peer groups skipped for too few peers (not a failure of the detector)."""
    return ((rule_runs["kind"] == "model") & (rule_runs["status"] == "not_evaluated")
            & rule_runs["error"].fillna("").str.contains("min_peers", regex=False))


def _reject_reasons(rejects: pd.DataFrame, lang: str) -> list[dict[str, object]]:
    if rejects.empty:
        return []
    counts = rejects.groupby("reason").size().sort_values(ascending=False)
    return [{"reason": reason_name(str(r), lang), "count": int(n)} for r, n in counts.items()]


class _MechanismRow(TypedDict):
    """Money at risk of one mechanism (a row of :func:`rdata.money_by`) and its name."""

    mechanism: str
    money: float
    lines: int
    high: int
    name: str


def _by_mechanism(findings: pd.DataFrame, lang: str) -> list[_MechanismRow]:
    return [
        _MechanismRow(mechanism=r["mechanism"], money=r["money"], lines=r["lines"],
                      high=r["high"], name=mechanism_name(r["mechanism"], lang))
        for r in rdata.money_by(findings, "mechanism", "extendable").to_dict("records")
    ]


def _finding_rows(findings: pd.DataFrame, lang: str) -> list[dict[str, object]]:
    """One dict per finding row, with the display strings the template needs."""
    if findings.empty:
        return []
    t = LABELS[lang]
    f = findings
    title, message = f["title"], f["message"]
    if lang == "en":  # English text where the detector wrote one, else the Chinese original
        if "title_en" in f:
            title = f["title_en"].where(f["title_en"].notna() & (f["title_en"] != ""), title)
        if "message_en" in f:
            message = f["message_en"].where(f["message_en"].notna() & (f["message_en"] != ""),
                                            message)
    frame = pd.DataFrame({
        "source_file": f["source_file"],
        "sheet": f["source_sheet"].fillna(""),
        "row": f["source_row"].astype("Int64").astype("string").fillna(""),
        "tender": f["tender_id"],
        "line_no": f["line_no"].fillna(t["tender_level"]),
        "detector": f["detector"],
        "kind": f["kind"].map({"rule": t["rule"], "model": t["model"]}).fillna(f["kind"]),
        "mechanism": f["mechanism"],
        "mech_name": f["mechanism"].map(lambda m: mechanism_name(m, lang)),
        "severity": f["severity"],
        "sev_name": f["severity"].map(SEVERITY_NAMES[lang]).fillna(f["severity"]),
        "sev_rank": f["severity"].map(SEVERITY_RANK).fillna(-1).astype(int),
        "title": title,
        "message": message,
        "evidence": f["evidence"],
        "excess": f["est_excess_cny"].map(money),
        "excess_v": f["est_excess_cny"].fillna(-1.0),
        "score": f["score"].map("{:.2f}".format),
        "supplier": f["supplier"].fillna(""),
        "corroborating": f["corroborating"].fillna(False).astype(bool),
        "verdict": f["verdict"].fillna("") if "verdict" in f else "",
        "dismissed": f["dismissed"].fillna(False).astype(bool) if "dismissed" in f else False,
    })
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def _plots(db: str | Path, run: rdata.RunData, lang: str,
           findings: pd.DataFrame) -> list[dict[str, str | None]]:
    t = LABELS[lang]
    plots: list[dict[str, str | None]] = []

    tenders = rdata.money_by(findings, "tender_id", t["unknown"]).head(TOP_TENDERS)
    plots.append({
        "title": t["plot_tender"].format(n=TOP_TENDERS),
        "svg": bar_chart(list(tenders["tender_id"]), list(tenders["money"]),
                         title=t["plot_tender"].format(n=TOP_TENDERS), fmt=money,
                         chart_id="plot-tender") if len(tenders) else None,
        "note": None,
    })

    mechs = _by_mechanism(findings, lang)
    plots.append({
        "title": t["plot_mechanism"],
        "svg": bar_chart([m["name"] for m in mechs], [m["money"] for m in mechs],
                         title=t["plot_mechanism"], fmt=money, chart_id="plot-mechanism")
        if mechs else None,
        "note": None,
    })

    # figures the enrich views derived, as the run stored them; a run from before they were
    # stored says so instead of a plot (they are never derived again with today's book)
    why_not = None if run.facts_stored else t["predates_facts"]
    cooling = rdata.cooling_points(db, run.run_id)
    bands = rdata.cooling_bands(db, run.run_id)
    rows = []
    for kind in ("cold_plate", "immersion", "other"):
        part = cooling[cooling["cooling"] == kind]
        if kind == "other" and part.empty:
            continue  # no line of unstated type: no row for it
        rows.append(StripRow(
            label=t[kind], values=list(part["per_kw"]),
            tips=_tips(part, part["per_kw"].map(_per_kw).astype(str) + "/kW"),
            flagged=list(part["flagged"]), band=bands.get(kind)))
    plots.append({
        "title": t["plot_cooling"],
        "svg": strip_chart(rows, title=t["plot_cooling"], x_label=t["cooling_axis"], log=True,
                           fmt=_per_kw, chart_id="plot-cooling") if len(cooling) else None,
        "note": why_not,
    })

    peers = rdata.peer_points(db, run.run_id)
    rows = []
    for key, part in peers.groupby(
            ["accel", "form", peers["unit"].fillna("")], sort=True):
        accel, form, unit = (str(k) for k in key)
        # the price basis (server, card ...) repeats the form; a raw unit ("unit:台") does not
        basis = unit.removeprefix("unit:") if unit.startswith("unit:") or not unit else ""
        label = f"{accel} · {FORMS[lang].get(form, form)} · {basis}".rstrip(" ·")
        tips = _tips(part, part["unit_price_cny"].map(money) + " / "
                     + part["peer_median"].map(money))
        rows.append(StripRow(label=f"{label} (n={len(part)})", values=list(part["ratio"]),
                             tips=tips, flagged=list(part["flagged"]), box=True))
    plots.append({
        "title": t["plot_peers"],
        "svg": strip_chart(rows, title=t["plot_peers"], x_label=t["peers_axis"], log=True,
                           fmt=_ratio, chart_id="plot-peers", ref_lines=[(1.0, "median")])
        if rows else None,
        "note": why_not,
    })
    return plots


def _tips(part: pd.DataFrame, value: pd.Series) -> list[str]:
    """Tooltip text per point: file, row, tender and the value (vectorised string ops)."""
    if part.empty:
        return []
    text = (part["source_file"].astype(str) + " : " + part["source_row"].astype(str) + " · "
            + part["tender_id"].astype(str) + " · " + part["item_name"].astype(str) + " · "
            + value.astype(str))
    return list(text)
