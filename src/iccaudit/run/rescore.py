"""``rescore``: rules (and models) again on the line items of a stored run, without reading
files. The rule author's loop: edit a rule, rescore, look.

The new run copies the source run's files, line items, rejects and non-items under its own
run_id, so every run stays self-contained and queries on the latest run never double count.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from iccaudit.run.options import RescoreOptions, RunError, ScoreResult
from iccaudit.run.stages import Run, with_run

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def run_rescore(opts: RescoreOptions) -> ScoreResult:
    """Re-run the rules (and models) on a stored run; raise RunError with a one-line message."""
    from iccaudit.store import StoredRows

    run = Run.begin(opts)
    with run.timed("load_s"):
        source, inputs, frames, n_items, origin = _load(opts)
    run.identify(inputs)
    files = with_run(frames["files"], run.run_id)
    # the lines are copied inside the database; read only when the sandbox is built from them
    # (not when the enriched lines of an earlier rules-only re-run are reused)
    copy = StoredRows("line_items", source, run.run_id, n_items)
    lines: dict[str, Any] = {"files": files, "line_items": copy,
             "rejects": with_run(frames["rejects"], run.run_id),
             "non_items": with_run(frames["non_items"], run.run_id)}

    def items() -> pa.Table:  # Arrow: the sandbox takes it as is, at a fraction of the memory
        return run.fetch_stored(f"SELECT * FROM {copy.sql()} ORDER BY item_id")

    enriched = None
    if not opts.models:  # rules only: the enriched lines are kept and re-used (run.enriched)
        from iccaudit.run.config import reference_dir_used
        from iccaudit.run.enriched import enriched_path
        from iccaudit.run.stages import reads_raw

        enriched = enriched_path(opts.db, origin, reference_dir_used(opts.rules_dirs),
                                 opts.price_date, reads_raw(run.ruleset.rules),
                                 run.lexicon.sha256 if run.lexicon is not None else "")
    with run.store_transaction(opts.db):
        run.detect(items, after_rules=lines, enriched=enriched)
        options = {"rescore_of": source, "rules_dirs": [str(d) for d in run.rule_dirs],
                   "enriched_reused": run.enriched_reused,
                   "models": opts.models, "seed": opts.seed,
                   "price_date": opts.price_date.isoformat() if opts.price_date else None,
                   "skipped_invalid_rules": sorted(run.ruleset.invalid_ids)}
        run.finish(files, (n_items, len(frames["rejects"]), len(frames["non_items"])), options)
    return run.result(opts.db, files, [], [])


def _load(opts: RescoreOptions
          ) -> tuple[str, list[dict[str, str]], dict[str, pd.DataFrame], int, str]:
    """The source run (the latest, unless named): its id, inputs, files, rejects and
    non-items (pandas), the number of its line items, and the run that first read those
    lines (a rescore copies its source's lines: the chain of ``rescore_of`` ends at a
    ``score`` run)."""
    from iccaudit import store
    from iccaudit.core.duck import fetch_frame

    try:
        con = store.connect(opts.db, read_only=True)
    except store.StoreError as exc:
        raise RunError(str(exc)) from None
    try:
        source = opts.source_run or store.latest_run_id(con)
        rows = con.execute("SELECT inputs FROM runs WHERE run_id = ?", [source]).fetchall()
        if not rows or source is None:
            raise RunError(f"{opts.db}: no run {source!r} to rescore")
        frames = {t: fetch_frame(con, f"SELECT * FROM {t} WHERE run_id = ? ORDER BY ALL",
                                 [source])
                  for t in ("files", "rejects", "non_items")}
        n_items = con.execute("SELECT count(*) FROM line_items WHERE run_id = ?",
                              [source]).fetchall()[0][0]
        origin = _origin(con, source)
    finally:
        con.close()
    return source, json.loads(rows[0][0]), frames, n_items, origin


def _origin(con: Any, run_id: str) -> str:
    """The run whose lines ``run_id`` holds copies of (itself unless it is a rescore)."""
    seen = {run_id}
    while True:
        rows = con.execute("SELECT options FROM runs WHERE run_id = ?", [run_id]).fetchall()
        try:
            parent = json.loads(rows[0][0] or "{}").get("rescore_of") if rows else None
        except (TypeError, ValueError, AttributeError):
            parent = None
        if not isinstance(parent, str) or parent in seen:
            return run_id
        seen.add(parent)
        run_id = parent
