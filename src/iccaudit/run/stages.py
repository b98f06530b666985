"""The Run: one ``score`` or ``rescore`` from its rules to its commit, in one place.

A run carries its settings, the rules and configuration it uses, what each stage gave back,
its counts and timings, and the store's open transaction. :mod:`.score` and :mod:`.rescore`
drive it top-down::

    run = Run.begin(opts)              # the rule pack checked, the configuration read
    run.identify(inputs)               # the run id
    with run.store_transaction(db):    # a database held by another process fails here
        run.detect(items, ...)         # enrich; the rules and the models side by side
        run.finish(...)                # the run's record, then COMMIT

Three things share the two cores while a run detects: the rules on the sandbox connection,
the models on a cursor of it in a thread (from the moment ``items`` exists; they draft their
findings while the rules run, and complete them with the rules' findings, which a model
finding corroborates, at their end), and the store writing the run's lines in a thread.

No stage holds all the findings' text in Python: each rule's findings are staged in a temp
table of the sandbox as the rule finishes (an out-of-core sandbox spills it), and the run
keeps only who found what and how much (:data:`~iccaudit.detect.rules.runner.LEAN_COLUMNS`:
for the models' corroboration and the summary). Once the rules are done, the lines' facts and
then the staged findings are written (one insert streamed from the sandbox) while the models
finish; theirs come last. A large sandbox is freed in a thread while the last rows are
written. Stage timings are each stage's own, so they overlap.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from iccaudit import __version__
from iccaudit.run.config import (
    ConfigSnapshot,
    fallbacks,
    lexicon_dir_used,
    models_config_used,
    reference_dir_used,
    snapshot,
)
from iccaudit.run.options import DetectOptions, RunError, ScoreResult, make_run_id
from iccaudit.run.resources import memory_limit, sandbox_memory_limit

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

    from iccaudit.detect.models.findings import ModelFindings
    from iccaudit.detect.rules.model import Rule, RuleSet
    from iccaudit.enrich.lexicon import Lexicon
    from iccaudit.enrich.sandbox import LineSource
    from iccaudit.store import RunWriter


class Run:
    """One run: see the module's docstring for the order its stages are called in."""

    def __init__(self, opts: DetectOptions, rule_dirs: list[Path], ruleset: RuleSet,
                 config: ConfigSnapshot, warnings: list[str],
                 lexicon: Lexicon | None = None) -> None:
        self.opts = opts
        self.lexicon = lexicon
        self.started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.rule_dirs = rule_dirs
        self.ruleset = ruleset
        self.config = config
        self.warnings = warnings
        self.timings: dict[str, float] = {}
        self.coverage: dict[str, Any] = {}
        self.run_id = ""
        self.inputs: list[dict[str, str]] = []
        self.findings: pd.DataFrame | None = None
        self.rule_runs: pd.DataFrame | None = None
        self.record: dict[str, Any] = {}
        self._writer: RunWriter | None = None
        self._lean: pd.DataFrame | None = None  # the rules' findings: who and how much
        self._model_lean: pd.DataFrame | None = None  # the models' findings, as LEAN_COLUMNS
        self._closers: list[threading.Thread] = []
        #: whether the rules ran on an enriched sandbox kept by an earlier rules-only re-run
        self.enriched_reused = False

    # ------------------------------------------------------------------ the stages in order

    @classmethod
    def begin(cls, opts: DetectOptions, mapping: Path | None = None,
              rates: Path | None = None) -> Run:
        """Load and check the rule pack (an invalid pack is refused before any file is read,
        unless ``skip_invalid``, loudly) and read the configuration the run will use."""
        from iccaudit.core.paths import bundled_rules_dir
        from iccaudit.detect.rules.ruleset import load_ruleset, resolve_rule_dirs

        warnings: list[str] = []
        rule_dirs = resolve_rule_dirs(bundled_rules_dir(), opts.rules_dirs)
        ruleset = load_ruleset(rule_dirs)
        if ruleset.errors:
            listing = "\n".join(str(e) for e in ruleset.errors)
            if not opts.skip_invalid:
                raise RunError(f"{len(ruleset.errors)} rule error(s); fix them or pass "
                               f"--skip-invalid:\n{listing}", exit_code=3)
            warnings.append(f"SKIPPING {len(ruleset.invalid_ids)} invalid rule(s) because of "
                            f"--skip-invalid:\n{listing}")
        from iccaudit.enrich.lexicon import LexiconError
        from iccaudit.enrich.lexicon_check import load_lexicon

        try:  # nothing is scored with a half-loaded lexicon
            lexicon = load_lexicon(lexicon_dir_used(opts.rules_dirs))
        except LexiconError as exc:
            raise RunError(f"{exc}\n(iccaudit rules validate lists the problems)",
                           exit_code=3) from None
        config = snapshot(rule_dirs, models=opts.models, models_config=opts.models_config,
                          mapping=mapping, rates=rates, user_dirs=opts.rules_dirs)
        warnings += fallbacks(opts.rules_dirs, models=opts.models, config=opts.models_config)
        return cls(opts, rule_dirs, ruleset, config, warnings, lexicon)

    def identify(self, inputs: list[dict[str, str]]) -> None:
        """Name the run after its start and its inputs (path and SHA-256 of each file)."""
        self.inputs = inputs
        self.run_id = make_run_id(self.started, inputs)

    @contextlib.contextmanager
    def store_transaction(self, db: Path, memory_limit: str | None = None) -> Iterator[None]:
        """The run's one transaction, open while it detects. Any failure, Ctrl-C included,
        rolls it back (a database file the run created is removed)."""
        from iccaudit import store

        try:
            self._writer = store.RunWriter(db, memory_limit=memory_limit)
        except store.StoreError as exc:
            raise RunError(str(exc)) from None
        try:
            yield
        except store.StoreError as exc:
            self._writer.abort()
            raise RunError(str(exc)) from None
        except BaseException:
            self._writer.abort()
            raise
        finally:
            for closer in self._closers:  # the sandbox, freed while the last rows were written
                closer.join()

    def fetch_stored(self, sql: str, params: object = None) -> pa.Table:
        """A query's result on the store inside the run's transaction (the rows of an
        earlier run), once the queued writes are done."""
        assert self._writer is not None, "store_transaction() first"
        return self._writer.fetch_arrow(sql, params)

    def write_in_background(self, tables: dict[str, Any]) -> None:
        """Hand ``tables`` to the store's writer thread; it takes them over (each leaves the
        dict as its write begins, an Arrow table's batches let go once written)."""
        assert self._writer is not None, "store_transaction() first"
        self._writer.insert_in_background(tables)

    def detect(self, items: LineSource | Callable[[], LineSource], *,
               spill: Path | None = None,
               once_copied: dict[str, Any] | None = None,
               after_rules: dict[str, Any] | None = None,
               enriched: Path | None = None, sandbox_file: Path | None = None) -> None:
        """Enrich ``items`` (Arrow, or the Parquet rows of an out-of-core run), then run the
        rules and the models side by side; sets :attr:`findings` and :attr:`rule_runs`.

        ``items`` may be a function giving them, called only when the sandbox is built from
        them (a rules-only re-run that reuses its enriched lines never reads them).
        ``spill``: the folder an out-of-core sandbox spills into. ``once_copied``: tables the
        store writes from the moment the sandbox has its copy of the lines, beside enrich (in
        memory, the lines themselves: the write frees the rows as it goes, while enrich builds
        its largest table), then the line facts once enrich is done. ``after_rules``: tables the
        store writes once the rules are done (a rescore's copy of its lines, made inside the
        database: the rule pack then runs alone, as a rule author's re-run measures it). The
        caller keeps no other reference to ``items``: the sandbox has its copy once built.
        ``enriched`` (rules
        only): the kept sandbox of :mod:`iccaudit.run.enriched`, opened when it exists, else
        built there (and kept once the run succeeded). ``sandbox_file``: a new database file
        (in a folder the caller removes) to build the sandbox in, instead of memory: its
        tables are stored compressed (1 M lines: peak 3.9 -> 3.1 GB for 0.85 s more of
        enrich; out of core, 10 M lines: a fraction spills, rules 110 -> 76 s and models
        126 -> 93 s in monitored runs).
        """
        from concurrent.futures import Future, ThreadPoolExecutor

        import pandas as pd

        from iccaudit.detect.rules.runner import run_rules_staged
        from iccaudit.enrich import Sandbox
        from iccaudit.enrich.facts import recognition_summary

        models = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="iccaudit-models")
                  if self.opts.models else None)
        rules_done: Future[pd.DataFrame] = Future()
        scoring: Future[tuple[ModelFindings, pa.RecordBatchReader, pd.DataFrame]] | None = None
        sandbox = None
        kept: duckdb.DuckDBPyConnection | None = None
        building: Path | None = None
        failed = True
        try:
            t0 = time.perf_counter()
            if enriched is not None and models is None and enriched.exists():
                from iccaudit.run.enriched import open_enriched

                try:
                    kept = open_enriched(enriched)  # enriched before: nothing to build
                except Exception as exc:  # noqa: BLE001 - any unreadable file is rebuilt
                    self.warnings.append(f"{enriched}: kept enriched lines unreadable "
                                         f"({str(exc).splitlines()[0][:200]}); enriched again")
                    enriched.unlink(missing_ok=True)
            if kept is not None:
                con = kept
                self.enriched_reused = True
            else:
                if enriched is not None and models is None:
                    from iccaudit.run.enriched import building_path

                    building = building_path(enriched)
                database = building or sandbox_file
                if callable(items):
                    items = items()
                limit = (memory_limit() if spill is not None
                         else sandbox_memory_limit(len(items)) if database is not None
                         else None)
                sandbox = Sandbox(items, reference_dir_used(self.opts.rules_dirs),
                                  memory_limit=limit,
                                  temp_directory=spill, raw=reads_raw(self.ruleset.rules),
                                  price_date=self.opts.price_date, database=database,
                                  lexicon=self.lexicon)
                del items  # the sandbox has its copy; the store may free the rows as it writes
                if once_copied is not None:
                    # beside enrich, not after it: 1 M lines, 40 % flagged, peak 2.80 -> 2.62
                    # GB (medians of four pairs), wall and CPU unchanged
                    self.write_in_background(once_copied)
                if models is not None:  # the models read only items: they start once it exists
                    cursor = sandbox.build_until("items").cursor()
                    scoring = models.submit(self._models, cursor, rules_done.result)
                con = sandbox.finish()
            self.timings["enrich_s"] = time.perf_counter() - t0
            self.coverage = recognition_summary(con)
            if once_copied is not None:
                if kept is not None:  # nothing was copied: not written above
                    self.write_in_background(once_copied)
                # in memory, the lines' facts are written right after them, beside the
                # rules (1 M lines: 0.7 s the run no longer waits for at its end). Out of
                # core, once the rules are done (below), as the lines' write takes longer.
                self.write_in_background(self._facts(con))
            t0 = time.perf_counter()
            # each rule's findings are staged in the sandbox as they are made (it spills, a
            # Python frame would not); the run keeps who and how much (the models'
            # corroboration, the counts), never all their text
            lean, rule_runs, staged = run_rules_staged(con, self.ruleset.rules, self.run_id)
            self.timings["rules_s"] = time.perf_counter() - t0
            rules_done.set_result(lean)
            if after_rules is not None:
                self.write_in_background(after_rules)
            try:
                if once_copied is None:
                    # written while the models finish (10 M lines: a second); theirs last
                    self.write_in_background(self._facts(con))
                self._write_staged(staged)
            finally:
                staged.close()  # its temp table with it
            self._lean = lean
            if scoring is not None:
                found, found_rows, model_runs = scoring.result()
                try:  # streamed from the sandbox, where they are staged, after the rules'
                    assert self._writer is not None
                    self._writer.insert({"findings": found_rows})
                    self._model_lean = found.lean
                finally:
                    found.close()
                rule_runs = pd.concat([rule_runs, model_runs], ignore_index=True)
            failed = False
        except BaseException as exc:
            if not rules_done.done():
                rules_done.set_exception(exc)  # the models stop at their end, without them
            raise
        finally:
            if models is not None:
                models.shutdown(wait=True)  # the models' cursor is closed before the sandbox
                if (scoring is not None and scoring.done() and not scoring.cancelled()
                        and scoring.exception() is None):
                    scoring.result()[0].close()  # not read when a later step failed
            if kept is not None:
                kept.close()
            if sandbox is not None and building is not None:
                sandbox.con.close()  # the file is complete once closed: then it is kept
                if failed:
                    building.unlink(missing_ok=True)
                elif enriched is not None:
                    building.replace(enriched)
            elif sandbox is not None:
                self._close(sandbox.con, now=failed)
        self.rule_runs = rule_runs
        self.warnings.extend(rule_runs.get("warning", pd.Series(dtype=str)).dropna())

    def _facts(self, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        """The ``line_facts`` and ``line_recognition`` rows of the built sandbox ``con``, for
        the store: each a function giving a reader of them, on its own cursor of ``con``
        (made here, closed once they are read), called when its write begins. The rows
        exist a batch at a time, as they are written (1 M lines: 220 MB of Arrow, 10 M lines
        2.2 GB, never at once)."""
        from iccaudit.enrich.facts import line_facts_reader, line_recognition_reader

        def read(rows: Callable[..., pa.RecordBatchReader]
                 ) -> Callable[[], pa.RecordBatchReader]:
            cursor = con.cursor()

            def reader() -> pa.RecordBatchReader:
                try:
                    return rows(cursor, self.run_id, done=cursor.close)
                except BaseException:
                    cursor.close()
                    raise

            return reader

        return {"line_facts": read(line_facts_reader),
                "line_recognition": read(line_recognition_reader)}

    def _write_staged(self, staged: duckdb.DuckDBPyConnection) -> None:
        """Write the rules' staged findings to the store in one insert streamed from the
        sandbox (one insert, not one per rule: DuckDB writes its row groups as they fill
        instead of at the commit)."""
        from iccaudit.detect.rules.runner import STAGED_FINDINGS

        assert self._writer is not None
        reader = staged.sql(f'SELECT * FROM "{STAGED_FINDINGS}"').to_arrow_reader(
            self._STAGED_BATCH)
        self._writer.insert({"findings": reader})

    #: Rows per Arrow batch of the staged findings streamed to the store.
    _STAGED_BATCH = 122_880

    def finish(self, files: pd.DataFrame, counts: tuple[int, int, int],
               options: dict[str, Any], tables: dict[str, Any] | None = None) -> None:
        """Write the run's record, its configuration, the rule runs (and ``tables``), then
        commit (the findings are written by :meth:`detect`). ``counts``: line items, rejects,
        non-items."""
        import pandas as pd

        assert self._writer is not None and self.rule_runs is not None
        # what the summary counts (who and how much, as stored): no text of the findings
        models = self._model_lean
        self.findings = self._lean if models is None or not len(models) else pd.concat(
            [self._lean, models], ignore_index=True)
        self.record = self._run_record(files, counts, options)
        t0 = time.perf_counter()
        self._writer.insert({
            "runs": pd.DataFrame([self.record]), "run_config": self.config.frame(self.run_id),
            "rule_runs": self.rule_runs, **(tables or {})})
        self._writer.commit()
        # store_s: what the run waited for the store after scoring; the lines' write itself
        # ran alongside the scoring (store_lines_s)
        self.timings["store_s"] = time.perf_counter() - t0
        self.timings["store_lines_s"] = self._writer.background_s

    def result(self, db: Path, files: pd.DataFrame, skipped: list[tuple[str, str]],
               errors: list[str]) -> ScoreResult:
        assert self.findings is not None and self.rule_runs is not None
        return ScoreResult(run_id=self.run_id, db=db, run=self.record, files=files,
                           rule_runs=self.rule_runs, findings=self.findings, skipped=skipped,
                           errors=errors, warnings=self.warnings, timings=self.timings,
                           coverage=self.coverage)

    # ------------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time a stage into :attr:`timings` (``name``, in seconds)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - t0

    def _models(self, cursor: duckdb.DuckDBPyConnection,
                rule_findings: Callable[[], pd.DataFrame],
                ) -> tuple[ModelFindings, pa.RecordBatchReader, pd.DataFrame]:
        """The models on their own cursor of the sandbox (in a thread, see :meth:`detect`);
        their findings are staged on it (closing them closes it). (findings, a reader of
        them, rule_runs): the reader's query is started here, so that its sort and the
        findings' evidence are made while the rules' findings are written (1 M lines, 40 %
        flagged: 0.4 s)."""
        from iccaudit.detect.models import ModelConfigError, run_models_staged

        t0 = time.perf_counter()
        try:
            config = models_config_used(self.opts.models_config, self.opts.rules_dirs)
            found, rule_runs = run_models_staged(cursor, self.run_id, config=config,
                                                 seed=self.opts.seed,
                                                 rule_findings=rule_findings)
            return found, found.reader(self._STAGED_BATCH), rule_runs
        except BaseException as exc:
            cursor.close()  # on success it is closed with the findings staged on it
            if isinstance(exc, ModelConfigError):
                raise RunError(str(exc), exit_code=3) from None
            raise
        finally:
            self.timings["models_s"] = time.perf_counter() - t0

    def _close(self, con: duckdb.DuckDBPyConnection, now: bool) -> None:
        """Close the sandbox: at once after a failure (before the run says why); else in a
        thread joined at the end of the transaction, since freeing a large sandbox takes a
        while (10 M lines: 1.4 s of spill files and memory) and the findings can be written
        meanwhile."""
        if now:
            con.close()
            return
        closer = threading.Thread(target=con.close, name="iccaudit-sandbox-close")
        closer.start()
        self._closers.append(closer)

    def _run_record(self, files: pd.DataFrame, counts: tuple[int, int, int],
                    options: dict[str, Any]) -> dict[str, Any]:
        from iccaudit.core import schema

        assert self.findings is not None and self.rule_runs is not None
        rule_runs = self.rule_runs
        ok_rules = (rule_runs["kind"] == "rule") & (rule_runs["status"] == "ok")
        n_items, n_rejects, n_non_items = counts
        run = {
            "run_id": self.run_id,
            "started_at": self.started,
            "finished_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            "tool_version": __version__,
            "inputs": json.dumps(self.inputs, ensure_ascii=False),
            "options": json.dumps(options, ensure_ascii=False),
            "files": len(files),
            "rows_read": int(files["rows_read"].sum()),
            "line_items": n_items,
            "rejects": n_rejects,
            "non_items": n_non_items,
            "findings": len(self.findings),
            "rules_evaluated": int(ok_rules.sum()) if len(rule_runs) else 0,
            "rules_not_evaluated": int((rule_runs["status"] == "not_evaluated").sum())
            if len(rule_runs) else 0,
            "status": "complete",
        }
        schema.Run.model_validate(run)
        return run


def reads_raw(rules: list[Rule]) -> bool:
    """Whether a rule reads the lines' ``raw`` JSON (the sandbox only carries it then; no
    view, runner query or model reads it)."""
    return any("raw" in r.compiled.columns_used() for r in rules if r.view == "items")


def with_run(frame: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """``frame`` with ``run_id`` as its first column."""
    frame = frame.drop(columns=["run_id"], errors="ignore").copy()
    frame.insert(0, "run_id", run_id)
    return frame
