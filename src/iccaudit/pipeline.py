"""The ``score`` pipeline: read -> normalise -> enrich -> detect -> store.

Each stage lives in its own module and knows only the stage before it; this module wires them
and owns the run's bookkeeping. Nothing reaches the database until every stage has succeeded,
and then the whole run is written in one transaction (:func:`iccaudit.store.write_run`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iccaudit import __version__


class PipelineError(Exception):
    """A run that cannot go on; the message is one line for the user."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class ScoreOptions:
    paths: list[Path]
    db: Path
    mapping: Path | None = None
    rules_dirs: list[Path] = field(default_factory=list)
    skip_invalid: bool = False
    models: bool = True
    models_config: Path | None = None
    seed: int = 0
    progress: bool = False


@dataclass
class ScoreResult:
    run_id: str
    db: Path
    run: dict[str, Any]
    files: Any  # DataFrame
    rule_runs: Any  # DataFrame
    findings: Any  # DataFrame
    skipped: list[tuple[str, str]]
    errors: list[str]
    warnings: list[str]


def make_run_id(started: dt.datetime, inputs: list[dict[str, str]]) -> str:
    """Sortable, readable and unique enough: UTC time plus a hash of the inputs."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:8]
    return started.strftime("%Y%m%dT%H%M%S%fZ") + "-" + digest


def run_score(opts: ScoreOptions) -> ScoreResult:
    """Run the whole pipeline and write the run; raise PipelineError with a one-line message."""
    import pandas as pd

    from iccaudit import schema, store
    from iccaudit.detect.ruleset import load_ruleset, resolve_rule_dirs
    from iccaudit.detect.runner import run_rules
    from iccaudit.enrich import build_sandbox
    from iccaudit.ingest import IngestError, ingest
    from iccaudit.paths import bundled_rules_dir, reference_dir

    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    warnings: list[str] = []

    # Rules first: an invalid pack is refused before any file is read.
    rule_dirs = resolve_rule_dirs(bundled_rules_dir(), opts.rules_dirs)
    ruleset = load_ruleset(rule_dirs)
    if ruleset.errors:
        listing = "\n".join(str(e) for e in ruleset.errors)
        if not opts.skip_invalid:
            raise PipelineError(
                f"{len(ruleset.errors)} rule error(s); fix them or pass --skip-invalid:\n{listing}",
                exit_code=3,
            )
        warnings.append(
            f"SKIPPING {len(ruleset.invalid_ids)} invalid rule(s) because of --skip-invalid:\n"
            + listing
        )

    try:
        batch = ingest(opts.paths, mapping=opts.mapping, progress=opts.progress)
    except IngestError as exc:
        raise PipelineError(str(exc)) from None
    if batch.items.empty and batch.rejects.empty:
        detail = "; ".join(batch.errors[:3]) or "no tender files found"
        raise PipelineError(f"nothing could be read: {detail}")

    inputs = [
        {"path": p, "sha256": h}
        for p, h in zip(batch.files["source_file"], batch.files["content_sha256"], strict=True)
    ]
    run_id = make_run_id(started, inputs)

    items = batch.items.sort_values(["source_file", "source_sheet", "source_row"],
                                    na_position="first", kind="stable").reset_index(drop=True)
    items.insert(0, "item_id", range(1, len(items) + 1))
    items.insert(0, "run_id", run_id)

    con = build_sandbox(items, reference_dir(bundled_rules_dir()))
    try:
        findings, rule_runs = run_rules(con, ruleset.rules, run_id)
        if opts.models:
            from iccaudit.detect.models import run_models

            model_findings, model_runs = run_models(
                con, run_id, config=opts.models_config, seed=opts.seed, rule_findings=findings
            )
            findings = pd.concat([findings, model_findings], ignore_index=True)
            rule_runs = pd.concat([rule_runs, model_runs], ignore_index=True)
    finally:
        con.close()
    warnings.extend(rule_runs.get("warning", pd.Series(dtype=str)).dropna())

    def with_run(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.insert(0, "run_id", run_id)
        return frame

    files = with_run(batch.files)
    not_evaluated = int((rule_runs["status"] == "not_evaluated").sum()) if len(rule_runs) else 0
    run = {
        "run_id": run_id,
        "started_at": started,
        "finished_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "tool_version": __version__,
        "inputs": json.dumps(inputs, ensure_ascii=False),
        "options": json.dumps(
            {
                "paths": [str(p) for p in opts.paths],
                "mapping": str(opts.mapping) if opts.mapping else None,
                "rules_dirs": [str(d) for d in rule_dirs],
                "models": opts.models,
                "seed": opts.seed,
                "skipped_invalid_rules": sorted(ruleset.invalid_ids),
            },
            ensure_ascii=False,
        ),
        "files": len(files),
        "rows_read": int(files["rows_read"].sum()),
        "line_items": len(items),
        "rejects": len(batch.rejects),
        "non_items": len(batch.non_items),
        "findings": len(findings),
        "rules_evaluated": int(((rule_runs["kind"] == "rule") & (rule_runs["status"] == "ok")).sum())
        if len(rule_runs)
        else 0,
        "rules_not_evaluated": not_evaluated,
        "status": "complete",
    }
    schema.Run.model_validate(run)
    try:
        store.write_run(
            opts.db,
            {
                "runs": pd.DataFrame([run]),
                "files": files,
                "line_items": items,
                "rejects": with_run(batch.rejects),
                "non_items": with_run(batch.non_items),
                "rule_runs": rule_runs,
                "findings": findings,
            },
        )
    except store.StoreError as exc:
        raise PipelineError(str(exc)) from None
    return ScoreResult(
        run_id=run_id, db=opts.db, run=run, files=files, rule_runs=rule_runs,
        findings=findings, skipped=batch.skipped, errors=batch.errors, warnings=warnings,
    )
