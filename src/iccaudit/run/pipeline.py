"""The ``score`` pipeline: read -> normalise -> enrich -> detect -> store.

Each stage lives in its own module and knows only the stage before it; this module wires them
and owns the run's bookkeeping. Nothing reaches the database until every stage has succeeded,
and then the whole run is written in one transaction (:func:`iccaudit.store.write_run`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iccaudit import __version__


class PipelineError(Exception):
    """A run that cannot go on; the message is one line for the user."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(kw_only=True)
class DetectOptions:
    """Which rules and models a run uses; shared by ``score`` and ``rescore``."""

    rules_dirs: list[Path] = field(default_factory=list)
    skip_invalid: bool = False
    models: bool = True
    models_config: Path | None = None
    seed: int = 0


#: Inputs above this size are scored out of core: line items go to Parquet, the sandbox is
#: an in-memory DuckDB that spills beyond a memory limit, and the store copies from the
#: Parquet file.
#: One million lines of CSV are about 250 MB.
LARGE_RUN_BYTES = 1024**3
#: DuckDB's memory limit for the store of an out-of-core run, which writes the lines while
#: the sandbox (with its own limit) scores them: the insert streams from the Parquet file.
STORE_MEMORY_LIMIT = "1GB"
#: Inputs from this size on import the outlier detectors in a thread while enrich runs.
WARM_MODELS_BYTES = 16 * 1024**2
#: DuckDB's memory limit for the out-of-core sandbox and numbering: a quarter of the machine's
#: memory, at least 2 GB. Sorts, joins and windows spill beyond it; the peer medians (an exact
#: quantile per group) cannot, and need about 4 GB at 10 M lines; $ICCAUDIT_MEMORY_LIMIT
#: ("8GB") overrides it.
LARGE_MEMORY_LIMIT = "auto"


def _memory_limit() -> str:
    import os

    if os.environ.get("ICCAUDIT_MEMORY_LIMIT"):
        return os.environ["ICCAUDIT_MEMORY_LIMIT"]
    if LARGE_MEMORY_LIMIT != "auto":
        return LARGE_MEMORY_LIMIT
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        total = 8 * 1024**3
    return f"{max(2 * 1024**3, total // 4) // 1024**2}MB"


@dataclass(kw_only=True)
class ScoreOptions(DetectOptions):
    paths: list[Path]
    db: Path
    mapping: Path | None = None
    progress: bool = False
    #: out of core (True), in memory (False), or decided by the input size (None)
    large: bool | None = None
    #: where the out-of-core files go (default: the system's temporary folder)
    work_dir: Path | None = None


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
    timings: dict[str, float] = field(default_factory=dict)


def make_run_id(started: dt.datetime, inputs: list[dict[str, str]]) -> str:
    """Sortable, readable and unique enough: UTC time plus a hash of the inputs."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:8]
    return started.strftime("%Y%m%dT%H%M%S%fZ") + "-" + digest


def _load_rules(rules_dirs: list[Path], skip_invalid: bool, warnings: list[str]):
    """Load and validate the pack; refuse invalid rules unless told to skip them (loudly)."""
    from iccaudit.core.paths import bundled_rules_dir
    from iccaudit.detect.rules.ruleset import load_ruleset, resolve_rule_dirs

    rule_dirs = resolve_rule_dirs(bundled_rules_dir(), rules_dirs)
    ruleset = load_ruleset(rule_dirs)
    if ruleset.errors:
        listing = "\n".join(str(e) for e in ruleset.errors)
        if not skip_invalid:
            raise PipelineError(
                f"{len(ruleset.errors)} rule error(s); fix them or pass --skip-invalid:\n{listing}",
                exit_code=3,
            )
        warnings.append(
            f"SKIPPING {len(ruleset.invalid_ids)} invalid rule(s) because of --skip-invalid:\n"
            + listing
        )
    return rule_dirs, ruleset


def _reads_raw(rules: list[Any]) -> bool:
    """Whether a rule reads the lines' ``raw`` JSON (the sandbox only carries it then; no
    view, runner query or model reads it)."""
    return any("raw" in r.compiled.columns_used() for r in rules
               if r.view == "items")


def _detect(items: Any, ruleset: Any, run_id: str, opts: DetectOptions,
            timings: dict[str, float], spill: Path | None = None,
            enriched: Any = None, closing: list[Any] | None = None,
            rules_found: Any = None) -> tuple[Any, Any]:
    """Enrich and detect on one batch of line items: the rules and the models side by side.

    Returns (findings, rule_runs). ``items``: an Arrow table or
    :class:`iccaudit.store.ParquetRows`; it is not referenced once the sandbox holds its copy
    (a caller that hands its rows on to the store can have their memory back as they are
    written). ``spill``: a folder for an out-of-core sandbox to spill into. ``enriched``:
    called once the sandbox is built (the pipeline starts the store then). ``closing``: when
    given, the sandbox is closed in a thread appended to it (the caller joins it), not
    before returning. ``rules_found``: called with the rules' findings (they come first in the
    findings returned) and the lines' facts (the ``line_facts`` rows to store, Arrow) as soon
    as the rules are done, while the models may still run.

    The models read only ``items``: they start scoring, on a cursor of the sandbox in a
    thread, as soon as enrich has built it, while enrich builds the other views and then the
    rules run (numpy on one core beside DuckDB and message formatting on the other). They
    need the rules' findings only at the end (a model finding on a line a rule flagged
    corroborates it) and get them through a future. Stage timings overlap.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    import pandas as pd

    from iccaudit.detect.rules.runner import run_rules
    from iccaudit.enrich import build_sandbox, line_facts
    from iccaudit.run.config import reference_dir_used

    pool = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="iccaudit-models")
            if opts.models else None)
    rules_done: Future = Future()
    scoring: list[Future] = []

    def start_models(con: Any) -> None:
        if pool is not None and not scoring:
            scoring.append(pool.submit(_models, con.cursor(), run_id, opts, timings,
                                       rules_done.result))

    con = None
    try:
        t0 = time.perf_counter()
        # out of core: an in-memory sandbox that spills into ``spill`` beyond the memory limit
        con = build_sandbox(items, reference_dir_used(),
                            memory_limit=_memory_limit() if spill is not None else None,
                            temp_directory=spill, raw=_reads_raw(ruleset.rules),
                            on_built=lambda name, c: start_models(c) if name == "items"
                            else None)
        del items  # the sandbox has its copy; the store may free the rows as it writes them
        timings["enrich_s"] = time.perf_counter() - t0
        start_models(con)  # (if enrich did not say when items was ready)
        if enriched is not None:
            enriched()
        t0 = time.perf_counter()
        findings, rule_runs = run_rules(con, ruleset.rules, run_id)
        timings["rules_s"] = time.perf_counter() - t0
        rules_done.set_result(findings)
        if rules_found is not None:  # with what the report shows, as the rules saw it
            rules_found(findings, line_facts(con, run_id))
        if scoring:
            model_findings, model_runs = scoring[0].result()
            findings = pd.concat([f for f in (findings, model_findings) if len(f)]
                                 or [findings], ignore_index=True)
            rule_runs = pd.concat([rule_runs, model_runs], ignore_index=True)
    except BaseException as exc:
        if not rules_done.done():
            rules_done.set_exception(exc)  # the models stop at their end, without them
        closing = None  # a failed run closes its sandbox before it says why
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)  # the models' cursor is closed before the sandbox
        if con is not None and closing is None:
            con.close()
        elif con is not None:
            # Freeing a large sandbox takes a while (10 M lines: 1.4 s of spill files and
            # memory): it goes on in a thread while the caller writes the findings.
            import threading

            closer = threading.Thread(target=con.close, name="iccaudit-sandbox-close")
            closer.start()
            closing.append(closer)
    return findings, rule_runs


def _models(cursor: Any, run_id: str, opts: DetectOptions, timings: dict[str, float],
            rule_findings: Any) -> tuple[Any, Any]:
    """The models on their own cursor of the sandbox (run in a thread by :func:`_detect`)."""
    from iccaudit.detect.models import ModelConfigError, run_models

    t0 = time.perf_counter()
    try:
        return run_models(cursor, run_id, config=opts.models_config, seed=opts.seed,
                          rule_findings=rule_findings)
    except ModelConfigError as exc:
        raise PipelineError(str(exc), exit_code=3) from None
    finally:
        cursor.close()
        timings["models_s"] = time.perf_counter() - t0


def _numbered(items: Any, run_id: str) -> Any:
    """The line items in (file, sheet, row) order with ``run_id`` and ``item_id`` in front.

    Arrow throughout: the pandas frame of Python strings took several times the memory.
    """
    import numpy as np
    import pyarrow as pa

    from iccaudit.normalise import item_order

    order = item_order(items)
    if order is not None:  # one file comes in order already
        items = items.take(order)
    n = items.num_rows
    items = items.add_column(0, "item_id", pa.array(np.arange(1, n + 1, dtype="int64")))
    return items.add_column(0, "run_id", pa.repeat(pa.scalar(run_id, pa.string()), n))


def _run_record(run_id: str, started: dt.datetime, inputs: list[dict[str, str]],
                options: dict[str, Any], files: Any, n_items: int, n_rejects: int,
                n_non_items: int, findings: Any, rule_runs: Any) -> dict[str, Any]:
    from iccaudit.core import schema

    ok_rules = (rule_runs["kind"] == "rule") & (rule_runs["status"] == "ok")
    run = {
        "run_id": run_id,
        "started_at": started,
        "finished_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "tool_version": __version__,
        "inputs": json.dumps(inputs, ensure_ascii=False),
        "options": json.dumps(options, ensure_ascii=False),
        "files": len(files),
        "rows_read": int(files["rows_read"].sum()),
        "line_items": n_items,
        "rejects": n_rejects,
        "non_items": n_non_items,
        "findings": len(findings),
        "rules_evaluated": int(ok_rules.sum()) if len(rule_runs) else 0,
        "rules_not_evaluated": int((rule_runs["status"] == "not_evaluated").sum())
        if len(rule_runs) else 0,
        "status": "complete",
    }
    schema.Run.model_validate(run)
    return run


def _with_run(frame: Any, run_id: str) -> Any:
    frame = frame.drop(columns=["run_id"], errors="ignore").copy()
    frame.insert(0, "run_id", run_id)
    return frame


def _warm_models(opts: DetectOptions, input_bytes: int) -> Any:
    """Import and compile the outlier detectors in a thread while enrich runs.

    PyOD pulls in numba, scikit-learn and matplotlib (about 1.5 CPU-seconds here) and numba
    loads its compiled code: work that does not need the data. Enrich is DuckDB's work, done
    outside Python's GIL, so the imports only take their share of the cores there. Beside the
    ingest they also held the GIL that the normalisers' many short Arrow calls wait for
    (1 M lines: ingest 3.6 s with them, 2.3 s without; the run 0.5 s shorter). Any problem
    is left for the models stage to report.
    """
    # Only for inputs whose reading takes a while: a small or refused input would pay the
    # imports (and their memory) for nothing.
    if not opts.models or input_bytes < WARM_MODELS_BYTES:
        return None
    import threading

    def warm() -> None:
        try:
            with _gc_paused():
                from iccaudit.detect.models.config import load_settings
                from iccaudit.detect.models.detectors import warm_up

                warm_up(load_settings(opts.models_config).ensemble)
        except Exception:  # noqa: BLE001,S110 - the models stage reports it properly
            pass

    thread = threading.Thread(target=warm, name="iccaudit-warm-models", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a burst of imports, their objects frozen.

    Imports create hundreds of thousands of objects that live as long as the process, and
    each full collection walks all of them: the detectors' imports triggered three, 0.26 s
    with the GIL held (1 M lines). Afterwards :func:`gc.freeze` moves them out of the
    collector's sight for good; what the run allocates later is collected as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _input_bytes(paths: list[Path]) -> int:
    """Total size of the files under ``paths`` (what decides in memory or out of core)."""
    import os

    total = 0
    for path in map(Path, paths):
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            for root, _, names in os.walk(path):
                total += sum((Path(root) / n).stat().st_size for n in names
                             if (Path(root) / n).is_file())
    return total


def _numbered_parquet(sink: Any, run_id: str, work: Path) -> Any:
    """The staged items with ``run_id`` and ``item_id`` in (file, sheet, row) order.

    Input already in that order is numbered where it lies (``seq + 1``, read by the sandbox
    and the store); otherwise DuckDB sorts it out of core (memory limit, spilling into
    ``work``) into a new file, leaving out the files that failed.
    """
    import duckdb

    from iccaudit import store
    from iccaudit.core import schema

    cols = ", ".join(f'"{c}"' for c in schema.columns("line_items") if c not in
                     ("run_id", "item_id"))
    out = work / "line_items.parquet"
    if sink.in_order and not sink.failed:
        # already in (file, sheet, row) order: number in place, no rewrite (10 M lines: 14 s)
        return store.ParquetRows(sink.path, constants={"run_id": run_id}, item_ids_from="seq")
    item_id = "row_number() OVER (ORDER BY source_file, source_sheet NULLS FIRST, source_row)"
    con = duckdb.connect(config={"memory_limit": _memory_limit(),
                                 "temp_directory": str(work / "spill")})
    try:
        con.execute(
            f"COPY (SELECT $run_id::VARCHAR AS run_id, {item_id} AS item_id, {cols} "
            f"FROM {store.ParquetRows(sink.path).sql()} "
            "WHERE NOT list_contains($failed, source_file) ORDER BY item_id) "
            "TO $out (FORMAT parquet, COMPRESSION snappy)",
            {"run_id": run_id, "failed": sorted(sink.failed), "out": str(out)})
    finally:
        con.close()
    sink.path.unlink()
    return store.ParquetRows(out)



def run_score(opts: ScoreOptions) -> ScoreResult:
    """Run the whole pipeline and write the run; raise PipelineError with a one-line message."""
    import tempfile

    size = _input_bytes(opts.paths)
    large = opts.large if opts.large is not None else size > LARGE_RUN_BYTES
    if not large:
        return _score(opts, None, size)
    with tempfile.TemporaryDirectory(prefix="iccaudit-", dir=opts.work_dir) as work:
        return _score(opts, Path(work), size)


def _score(opts: ScoreOptions, work: Path | None, input_bytes: int) -> ScoreResult:
    """The pipeline; ``work``: a folder for out-of-core files (None: all in memory)."""
    import pandas as pd

    from iccaudit import store
    from iccaudit.normalise import IngestError, ParquetSink, ingest
    from iccaudit.run.config import snapshot

    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    warnings: list[str] = []
    timings: dict[str, float] = {}

    # Rules first: an invalid pack is refused before any file is read.
    rule_dirs, ruleset = _load_rules(opts.rules_dirs, opts.skip_invalid, warnings)
    used = snapshot(rule_dirs, models=opts.models, models_config=opts.models_config,
                    mapping=opts.mapping)

    t0 = time.perf_counter()
    sink = ParquetSink(work / "incoming.parquet") if work is not None else None
    try:
        batch = ingest(opts.paths, mapping=opts.mapping, progress=opts.progress, sink=sink)
    except IngestError as exc:
        raise PipelineError(str(exc)) from None
    timings["ingest_s"] = time.perf_counter() - t0
    if batch.n_items == 0 and batch.rejects.empty:
        detail = "; ".join(batch.errors[:3]) or (
            f"no line items in {len(batch.files)} file(s) (only header, title or blank rows)"
            if len(batch.files) else "no tender files found")
        raise PipelineError(f"nothing could be read: {detail}")

    inputs = [
        {"path": p, "sha256": h}
        for p, h in zip(batch.files["source_file"], batch.files["content_sha256"], strict=True)
    ]
    run_id = make_run_id(started, inputs)

    # Not joined: the models import the same modules once enrich has built items, and wait on
    # Python's import lock for any the thread is still importing; enrich need not wait.
    _warm_models(opts, input_bytes)
    if sink is not None:
        t0 = time.perf_counter()
        items = _numbered_parquet(sink, run_id, work)
        timings["number_s"] = time.perf_counter() - t0
    else:
        items = _numbered(batch.items_arrow, run_id)
        batch.items_arrow = None  # free the unsorted table

    n_items = len(items)
    files = _with_run(batch.files, run_id)
    # The run's transaction opens now (a database held by another process fails here, before
    # any scoring), and the lines are written in a thread while the rules and models run: the
    # write is DuckDB's work outside the GIL, and those stages leave a core mostly idle.
    try:
        writer = store.RunWriter(opts.db, memory_limit=STORE_MEMORY_LIMIT if work else None)
    except store.StoreError as exc:
        raise PipelineError(str(exc)) from None
    closing: list[Any] = []
    early: list[int] = []  # the rules' findings written before the models' (their number)
    try:
        stored = {
            "files": files,
            "line_items": items,
            "rejects": _with_run(batch.rejects, run_id),
            "non_items": _with_run(batch.non_items, run_id),
        }
        # In memory the store's write starts once enrich is done (enrich keeps both cores
        # busy, and the write frees the rows it has written). Out of core the lines are a
        # Parquet file that both read: the write runs beside enrich, which waits on its
        # spill files (10 M lines: 117 -> 111 s).
        del items  # the store's copy of the table is the only one: it frees what it has written
        parquet = stored["line_items"] if work is not None else None  # a file, not the rows
        if parquet is not None:
            writer.insert_in_background(stored)
        findings, rule_runs = _detect(
            parquet if parquet is not None else stored["line_items"], ruleset, run_id, opts,
            timings, spill=work / "spill" if work is not None else None,
            enriched=None if parquet is not None else lambda: writer.insert_in_background(stored),
            closing=closing, rules_found=lambda found, facts: (
                # written while the models finish (10 M lines: a second); theirs come last
                early.append(len(found)),
                writer.insert_in_background({"findings": found, "line_facts": facts})))
        warnings.extend(rule_runs.get("warning", pd.Series(dtype=str)).dropna())

        options = {
            "paths": [str(p) for p in opts.paths],
            "mapping": str(opts.mapping) if opts.mapping else None,
            "rules_dirs": [str(d) for d in rule_dirs],
            "models": opts.models,
            "seed": opts.seed,
            "skipped_invalid_rules": sorted(ruleset.invalid_ids),
        }
        run = _run_record(run_id, started, inputs, options, files, n_items, len(batch.rejects),
                          len(batch.non_items), findings, rule_runs)
        t0 = time.perf_counter()
        writer.insert({"runs": pd.DataFrame([run]), "run_config": used.frame(run_id),
                       "rule_runs": rule_runs, "findings": findings.iloc[sum(early):]})
        writer.commit()
    except store.StoreError as exc:
        writer.abort()
        raise PipelineError(str(exc)) from None
    except BaseException:
        writer.abort()
        raise
    finally:
        for closer in closing:  # the sandbox, closed while the findings were written
            closer.join()
    # store_s: what the run waited for the store after scoring; the lines' write itself ran
    # alongside the scoring (store_lines_s)
    timings["store_s"] = time.perf_counter() - t0
    timings["store_lines_s"] = writer.background_s
    return ScoreResult(
        run_id=run_id, db=opts.db, run=run, files=files, rule_runs=rule_runs,
        findings=findings, skipped=batch.skipped, errors=batch.errors, warnings=warnings,
        timings=timings,
    )


@dataclass(kw_only=True)
class RescoreOptions(DetectOptions):
    db: Path
    source_run: str | None = None


def run_rescore(opts: RescoreOptions) -> ScoreResult:
    """Re-run rules (and models) on the line items of a stored run, without reading files.

    The rule author's loop: edit a rule, rescore, look. The new run copies the source run's
    files, line items, rejects and non-items under its own run_id, so every run stays
    self-contained and queries on the latest run never double count.
    """
    import pandas as pd

    from iccaudit import store
    from iccaudit.run.config import snapshot

    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    warnings: list[str] = []
    timings: dict[str, float] = {}
    rule_dirs, ruleset = _load_rules(opts.rules_dirs, opts.skip_invalid, warnings)
    used = snapshot(rule_dirs, models=opts.models, models_config=opts.models_config)
    try:
        con = store.connect(opts.db, read_only=True)
    except store.StoreError as exc:
        raise PipelineError(str(exc)) from None
    try:
        source = opts.source_run or store.latest_run_id(con)
        rows = con.execute("SELECT inputs FROM runs WHERE run_id = ?", [source]).fetchall()
        row = rows[0] if rows else None
        if row is None:
            raise PipelineError(f"{opts.db}: no run {source!r} to rescore")
        t0 = time.perf_counter()
        frames = {
            t: store.fetch_frame(con, f"SELECT * FROM {t} WHERE run_id = ? ORDER BY ALL",
                                 [source])
            for t in ("files", "rejects", "non_items")
        }
        # Arrow, not pandas: the sandbox takes it as is, at a fraction of the memory
        items = store.fetch_arrow(
            con, "SELECT * FROM line_items WHERE run_id = ? ORDER BY item_id", [source])
        timings["load_s"] = time.perf_counter() - t0
    finally:
        con.close()
    inputs = json.loads(row[0])
    run_id = make_run_id(started, inputs)
    import pyarrow as pa

    items = items.set_column(items.schema.get_field_index("run_id"), "run_id",
                             pa.repeat(pa.scalar(run_id, pa.string()), items.num_rows))
    facts: dict[str, Any] = {}
    findings, rule_runs = _detect(items, ruleset, run_id, opts, timings,
                                  rules_found=lambda _, found: facts.update(line_facts=found))
    warnings.extend(rule_runs.get("warning", pd.Series(dtype=str)).dropna())
    files = _with_run(frames["files"], run_id)
    options = {"rescore_of": source, "rules_dirs": [str(d) for d in rule_dirs],
               "models": opts.models, "seed": opts.seed,
               "skipped_invalid_rules": sorted(ruleset.invalid_ids)}
    run = _run_record(run_id, started, inputs, options, files, len(items),
                      len(frames["rejects"]), len(frames["non_items"]), findings, rule_runs)
    try:
        store.write_run(opts.db, {
            "runs": pd.DataFrame([run]), "files": files, "line_items": items,
            "rejects": _with_run(frames["rejects"], run_id),
            "non_items": _with_run(frames["non_items"], run_id),
            "rule_runs": rule_runs, "findings": findings,
            "run_config": used.frame(run_id), **facts,
        })
    except store.StoreError as exc:
        raise PipelineError(str(exc)) from None
    return ScoreResult(run_id=run_id, db=opts.db, run=run, files=files, rule_runs=rule_runs,
                       findings=findings, skipped=[], errors=[], warnings=warnings,
                       timings=timings)
