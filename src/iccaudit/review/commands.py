"""What the review commands print: precision from verdicts, the verdicts themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from iccaudit.report import data as rdata
from iccaudit.review.precision import precision


def _interval(row: pd.Series) -> str:
    if pd.isna(row["precision"]):
        return "-"
    return f"{row['precision']:.0%} [{row['ci_low']:.0%}, {row['ci_high']:.0%}]"


def print_precision(db: str | Path, fmt: str = "table") -> None:
    """Precision per rule, per mechanism and overall from reviewed findings."""
    tables = precision(db)
    if fmt == "json":
        print(json.dumps({k: v.to_dict("records") for k, v in tables.items()},
                         ensure_ascii=False, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if tables["overall"].empty:
        console.print("no reviewed findings yet: record verdicts with `iccaudit verdicts "
                      "import` or `iccaudit review`", highlight=False)
        return
    for name, title in (("rules", "precision per rule (reviewed findings)"),
                        ("mechanisms", "precision per mechanism"), ("overall", "overall")):
        table = Table(title=title)
        for col, just in (("", "left"), ("confirmed", "right"), ("dismissed", "right"),
                          ("needs info", "right"), ("n", "right"),
                          ("precision [95% Wilson]", "right")):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for _, row in tables[name].iterrows():  # a handful of rules, not line items
            table.add_row(str(row["key"]), str(row["confirmed"]), str(row["dismissed"]),
                          str(row["needs_info"]), str(row["n"]), _interval(row))
        console.print(table)


def list_verdicts(db: str | Path, history: bool = False) -> pd.DataFrame:
    """Current verdicts (or all) with the finding's detector and tender, newest first."""
    con = rdata.open_db(db)
    try:
        source = "verdicts" if history else "current_verdicts"
        return con.execute(f"""
            SELECT v.verdict_id, v.fingerprint, v.status, v.reason, v.reviewer, v.made_at,
                   v.source, f.detector, f.tender_id, f.line_no
            FROM {source} v
            LEFT JOIN (SELECT fingerprint, any_value(detector) AS detector,
                              any_value(tender_id) AS tender_id, any_value(line_no) AS line_no
                       FROM findings GROUP BY fingerprint) f USING (fingerprint)
            ORDER BY v.verdict_id DESC""").df()
    finally:
        con.close()
