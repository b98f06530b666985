"""``iccaudit lexicon gaps``: the wordings a run's lexicon did not recognise, by money."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from iccaudit import store
from iccaudit.report.data import open_db, resolve_run
from iccaudit.store.coverage import coverage, gaps, has_recognition


def lexicon_gaps(db: str | Path, run_id: str | None = None, limit: int = 20,
                 lines: bool = False) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """(run, its run-level coverage row, the unrecognised wordings or lines by money)."""
    con = open_db(db)
    try:
        run = resolve_run(con, run_id)
        if not has_recognition(con, run):
            raise store.StoreError(f"run {run!r} stored no recognition (scored before the "
                                   "lexicon): score the files again")
        cov = coverage(con, run)
        return run, cov[cov["scope"] == "run"], gaps(con, run, limit, lines=lines)
    finally:
        con.close()
