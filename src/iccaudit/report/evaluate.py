"""Recall and precision of a run's findings against a labels file.

A labels file is a CSV with columns ``file, sheet, line_no, mechanism`` (optional ``novel``,
``note``); ``file`` is the path relative to the scored folder, matched against the end of the
finding's ``source_file``. A line is identified by (file, sheet, line_no).

Definitions (per mechanism m):

* recall(m) = labelled lines of m that carry a finding of m (any severity, rule or model)
  / labelled lines of m;
* precision(m) = lines with a finding of m that are labelled m / lines with a finding of m;
* overall precision at severity >= S = lines with any finding of severity >= S that carry any
  label / lines with any finding of severity >= S. This is the auditor's question: "is the line
  I am asked to look at really a problem?";
* each figure comes with its 95 % Wilson interval and the number of lines behind it, so
  that a figure from 20 lines is not read like one from 2,000;
* novel recall = labelled lines marked ``novel=1`` (schemes no rule covers) that carry any
  finding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iccaudit.core.schema import MECHANISMS, SEVERITY_RANK

#: z of a two-sided 95 % interval.
Z95 = 1.959963984540054


def share(successes: int, n: int) -> float | None:
    """``successes / n``; None when ``n`` is 0 (nothing to measure, not 0 %)."""
    return successes / n if n else None


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95 % by default); None when ``n`` is 0.

    Unlike the normal approximation it stays inside [0, 1] and is honest for small ``n``:
    10/10 gives [0.72, 1.0], 1000/1000 gives [0.996, 1.0].
    """
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)  # exact ends, not 0.9999999
    return lo, hi


@dataclass
class MechanismScore:
    mechanism: str
    labelled: int
    flagged: int
    true_positives: int

    @property
    def recall(self) -> float | None:
        return share(self.true_positives, self.labelled)

    @property
    def precision(self) -> float | None:
        return share(self.true_positives, self.flagged)

    @property
    def recall_ci(self) -> tuple[float, float] | None:
        """95 % Wilson interval of the recall (over ``labelled`` lines)."""
        return wilson(self.true_positives, self.labelled)

    @property
    def precision_ci(self) -> tuple[float, float] | None:
        """95 % Wilson interval of the precision (over ``flagged`` lines)."""
        return wilson(self.true_positives, self.flagged)


@dataclass
class Evaluation:
    run_id: str
    min_severity: str
    mechanisms: list[MechanismScore]
    overall_flagged: int
    overall_true: int
    novel_labelled: int
    novel_found: int
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def overall_precision(self) -> float | None:
        return share(self.overall_true, self.overall_flagged)

    @property
    def novel_recall(self) -> float | None:
        return share(self.novel_found, self.novel_labelled)

    @property
    def overall_precision_ci(self) -> tuple[float, float] | None:
        return wilson(self.overall_true, self.overall_flagged)

    @property
    def novel_recall_ci(self) -> tuple[float, float] | None:
        return wilson(self.novel_found, self.novel_labelled)

    def get(self, mechanism: str) -> MechanismScore:
        for m in self.mechanisms:
            if m.mechanism == mechanism:
                return m
        raise KeyError(mechanism)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "min_severity": self.min_severity,
            "overall_precision": self.overall_precision,
            "overall_precision_ci95": self.overall_precision_ci,
            "overall_flagged_lines": self.overall_flagged,
            "novel_recall": self.novel_recall,
            "novel_recall_ci95": self.novel_recall_ci,
            "novel_labelled": self.novel_labelled,
            "by_kind": self.by_kind,
            "mechanisms": [
                {
                    "mechanism": m.mechanism,
                    "labelled": m.labelled,
                    "flagged": m.flagged,
                    "true_positives": m.true_positives,
                    "recall": m.recall,
                    "recall_ci95": m.recall_ci,
                    "recall_n": m.labelled,
                    "precision": m.precision,
                    "precision_ci95": m.precision_ci,
                    "precision_n": m.flagged,
                }
                for m in self.mechanisms
            ],
        }


def read_labels(path: Path) -> Any:
    """The labels CSV as a DataFrame of text columns; a clear error when columns are missing."""
    import pandas as pd

    labels = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = {"file", "line_no", "mechanism"} - set(labels.columns)
    if missing:
        raise ValueError(
            f"{path}: labels file lacks column(s) {sorted(missing)}; "
            f"it has {list(labels.columns)}"
        )
    if "sheet" not in labels:
        labels["sheet"] = ""
    if "novel" not in labels:
        labels["novel"] = "0"
    unknown = sorted(set(labels["mechanism"]) - set(MECHANISMS))
    if unknown:
        raise ValueError(f"{path}: unknown mechanism(s) {unknown}")
    labels["file"] = labels["file"].str.replace("\\", "/", regex=False)
    return labels[["file", "sheet", "line_no", "mechanism", "novel"]]


def evaluate_db(db: Path, labels_path: Path, run_id: str | None = None,
                min_severity: str = "medium") -> Evaluation:
    """Evaluate one run (default: the latest) of the database against the labels."""
    from iccaudit import store

    labels = read_labels(labels_path)
    con = store.connect(db, read_only=True)
    try:
        run_id = run_id or store.latest_run_id(con)
        if run_id is None:
            raise store.StoreError(f"{db}: no complete run to evaluate")
        return evaluate_con(con, labels, run_id, min_severity)
    finally:
        con.close()


def evaluate_con(con: Any, labels: Any, run_id: str, min_severity: str) -> Evaluation:
    """Set-at-a-time evaluation in DuckDB: findings are matched to labels by file suffix."""
    con.register("_labels", labels)
    try:
        # Map every finding line to its (file, sheet, line_no) key relative to the labels' root.
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _finding_lines AS
            WITH roots AS (SELECT DISTINCT file FROM _labels)
            SELECT
                coalesce(r.file, replace(f.source_file, '\\', '/')) AS file,
                coalesce(f.source_sheet, '') AS sheet,
                f.line_no, f.mechanism, f.kind, f.severity
            FROM findings f
            LEFT JOIN roots r
              ON replace(f.source_file, '\\', '/') = r.file
              OR ends_with(replace(f.source_file, '\\', '/'), '/' || r.file)
            WHERE f.run_id = ?
            """,
            [run_id],
        )
        rows = con.execute(
            """
            WITH lab AS (SELECT DISTINCT file, sheet, line_no, mechanism FROM _labels),
                 flg AS (SELECT DISTINCT file, sheet, line_no, mechanism FROM _finding_lines)
            SELECT m.mechanism,
                   (SELECT count(*) FROM lab WHERE lab.mechanism = m.mechanism) AS labelled,
                   (SELECT count(*) FROM flg WHERE flg.mechanism = m.mechanism) AS flagged,
                   (SELECT count(*) FROM flg JOIN lab USING (file, sheet, line_no, mechanism)
                     WHERE flg.mechanism = m.mechanism) AS tp
            FROM (SELECT unnest(?::VARCHAR[]) AS mechanism) m
            """,
            [list(MECHANISMS)],
        ).fetchall()
        sev_ok = [s for s, r in SEVERITY_RANK.items() if r >= SEVERITY_RANK[min_severity]]
        overall = con.execute(
            """
            WITH flg AS (SELECT DISTINCT file, sheet, line_no FROM _finding_lines
                         WHERE list_contains(?::VARCHAR[], severity)),
                 lab AS (SELECT DISTINCT file, sheet, line_no FROM _labels)
            SELECT (SELECT count(*) FROM flg),
                   (SELECT count(*) FROM flg JOIN lab USING (file, sheet, line_no))
            """,
            [sev_ok],
        ).fetchall()[0]
        novel = con.execute(
            """
            WITH nov AS (SELECT DISTINCT file, sheet, line_no FROM _labels WHERE novel = '1'),
                 flg AS (SELECT DISTINCT file, sheet, line_no FROM _finding_lines)
            SELECT (SELECT count(*) FROM nov),
                   (SELECT count(*) FROM nov JOIN flg USING (file, sheet, line_no))
            """
        ).fetchall()[0]
        kinds = con.execute(
            """
            WITH lab AS (SELECT DISTINCT file, sheet, line_no FROM _labels)
            SELECT kind, count(*) AS lines,
                   count(*) FILTER (WHERE lab.file IS NOT NULL) AS labelled
            FROM (SELECT DISTINCT file, sheet, line_no, kind FROM _finding_lines) f
            LEFT JOIN lab USING (file, sheet, line_no)
            GROUP BY kind ORDER BY kind
            """
        ).fetchall()
    finally:
        con.unregister("_labels")
    scores = [MechanismScore(m, int(lab), int(flg), int(tp)) for m, lab, flg, tp in rows
              if lab or flg]
    return Evaluation(
        run_id=run_id,
        min_severity=min_severity,
        mechanisms=scores,
        overall_flagged=int(overall[0]),
        overall_true=int(overall[1]),
        novel_labelled=int(novel[0]),
        novel_found=int(novel[1]),
        by_kind={k: {"lines": int(n), "labelled": int(lab)} for k, n, lab in kinds},
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _with_ci(x: float | None, ci: tuple[float, float] | None, n: int) -> str:
    """"95.0% [88.1–98.3] n=40": the figure, its 95 % Wilson interval and its lines."""
    if x is None or ci is None:
        return f"- n={n}"
    return f"{x:.1%} [{ci[0]:.1%}–{ci[1]:.1%}] n={n}"


def print_evaluation(ev: Evaluation, fmt: str = "table") -> None:
    """Print an evaluation as a table or JSON."""
    if fmt == "json":
        print(json.dumps(ev.to_dict(), ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"evaluation of run {ev.run_id}")
    for col, just in [("mechanism", "left"), ("labelled", "right"), ("flagged", "right"),
                      ("true pos.", "right"), ("recall [95% CI] n", "right"),
                      ("precision [95% CI] n", "right")]:
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for m in ev.mechanisms:
        table.add_row(m.mechanism, str(m.labelled), str(m.flagged), str(m.true_positives),
                      _with_ci(m.recall, m.recall_ci, m.labelled),
                      _with_ci(m.precision, m.precision_ci, m.flagged))
    console = Console()
    console.print(table)
    console.print(
        f"overall precision at severity >= {ev.min_severity}: "
        f"{_with_ci(ev.overall_precision, ev.overall_precision_ci, ev.overall_flagged)} "
        f"({ev.overall_true}/{ev.overall_flagged} lines)",
        highlight=False,
    )
    console.print(
        f"novel schemes (no rule) found: "
        f"{_with_ci(ev.novel_recall, ev.novel_recall_ci, ev.novel_labelled)} "
        f"({ev.novel_found}/{ev.novel_labelled} lines)",
        highlight=False,
    )
    for kind, d in ev.by_kind.items():
        console.print(f"{kind} findings: {d['lines']} lines, {d['labelled']} labelled",
                      highlight=False)
