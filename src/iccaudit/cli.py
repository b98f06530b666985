"""Command-line interface. Thin: it parses, calls into the modules, and prints.

Heavy modules (pandas, duckdb, pyod) are imported inside the commands, so that
``iccaudit --help`` and ``iccaudit rules validate`` start fast.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, ClassVar, NoReturn

import click

if TYPE_CHECKING:
    import pandas as pd

from iccaudit import __version__

#: Exit codes scripts can trust.
EXIT_OK = 0
EXIT_ERROR = 1  # nothing could be read, bad database, internal error turned into one line
EXIT_USAGE = 2  # click's own usage errors
EXIT_INVALID_RULES = 3  # rule validation or rule tests failed
EXIT_FLOOR = 4  # evaluate: a quality floor was not met

DEFAULT_DB = "findings.duckdb"


class UserError(click.ClickException):
    """A one-line error for the user; never a traceback."""

    #: click reads the exit code from the exception's class; :func:`_fail` raises a subclass
    #: for any other code.
    exit_code: ClassVar[int] = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"iccaudit: error: {self.format_message()}", err=True)


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Stop the command with a one-line error and exit ``code``."""

    class _Error(UserError):
        exit_code = code

    raise _Error(message)


def _default_rules_dirs() -> list[Path]:
    from iccaudit.core.paths import bundled_rules_dir

    return [bundled_rules_dir()]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="iccaudit")
def cli() -> None:
    """Find procurement fraud in intelligent-computing-centre (智算中心) tender files.

    \b
    Example:
      iccaudit samples --out data/samples --seed 7
      iccaudit score data/samples/tenders --db findings.duckdb --report report.html
      iccaudit evaluate --labels data/samples/labels.csv --db findings.duckdb
    """


#: score and rescore: the date undated tenders are priced at (--price-date)
_price_date_opt = click.option(
    "--price-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
    help="Date (YYYY-MM-DD) at which lines of undated tenders are priced against the dated "
         "reference book (default: each price series' latest point).")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True,
              help="DuckDB file to write the run to (created if missing).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file mapping unknown headers to canonical fields.")
@click.option("--rates", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Dated rate table (CSV: currency,date,cny_per_unit) converting amounts in "
                   "other currencies (OCDS) to yuan; without it they keep their currency.")
@click.option("--rules", "rules_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Rule folder to use (repeatable). Replaces a bundled folder of the same name, "
                   "otherwise adds to the bundled pack.")
@click.option("--skip-invalid", is_flag=True,
              help="Skip invalid rules (listed loudly) instead of refusing to run.")
@click.option("--no-models", is_flag=True, help="Run the rules only, not the outlier models.")
@click.option("--models-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Detector settings YAML (default: the bundled models.yaml).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed of the models; same inputs and seed give the same findings.")
@_price_date_opt
@click.option("--report", "report_path", type=click.Path(path_type=Path),
              help="Also write the HTML report of this run to PATH.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the report.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Summary output: a table for people, JSON for scripts.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--out-of-core/--in-memory", "large", default=None,
              help="Keep line items on disk (Parquet, a DuckDB sandbox that spills) or in "
                   "memory. Default: out of core when the inputs exceed 1 GB.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the out-of-core files (default: the temporary folder).")
@click.option("--include-dismissed", is_flag=True,
              help="Count findings reviewers dismissed or suppressed in the totals too.")
def score(paths: tuple[Path, ...], db: Path, mapping: Path | None, rates: Path | None,
          rules_dirs: tuple[Path, ...],
          skip_invalid: bool, no_models: bool, models_config: Path | None, seed: int,
          price_date: dt.datetime | None, report_path: Path | None, lang: str, fmt: str,
          quiet: bool, large: bool | None, work_dir: Path | None,
          include_dismissed: bool) -> None:
    """Read tender files, run the rules and models, and write findings to a DuckDB file.

    PATHS are files (CSV, TSV, XLSX, Parquet, JSON, JSONL, DOCX, PDF with a text layer,
    HTML, OCDS JSON) or folders, scanned recursively.
    Exits 0 when the run completed, with or without findings.

    \b
    Example:
      iccaudit score data/samples/tenders --db findings.duckdb
      iccaudit score 采购清单.xlsx --mapping map.yaml --format json
    """
    from iccaudit.report.summary import print_summary
    from iccaudit.run import RunError, ScoreOptions, run_score

    opts = ScoreOptions(
        paths=list(paths), db=db, mapping=mapping, rates=rates, rules_dirs=list(rules_dirs),
        skip_invalid=skip_invalid, models=not no_models, models_config=models_config,
        seed=seed, progress=not quiet and fmt == "table", large=large, work_dir=work_dir,
        price_date=price_date.date() if price_date else None,
    )
    try:
        result = run_score(opts)
    except RunError as exc:
        _fail(str(exc), exc.exit_code)
    print_summary(result, fmt, include_dismissed=include_dismissed)
    if report_path is not None:
        from iccaudit.report.html import write_report

        write_report(db, report_path, lang=lang, run_id=result.run_id,
                     include_dismissed=include_dismissed)
        if fmt == "table":
            click.echo(f"report written to {report_path}")


@cli.command()
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--run", "run_id", default=None, help="Run whose line items to rescore "
              "(default: the latest).")
@click.option("--rules", "rules_dirs", multiple=True, type=click.Path(path_type=Path),
              help="Rule folder to use (repeatable), as for `score`.")
@click.option("--skip-invalid", is_flag=True, help="Skip invalid rules (listed loudly).")
@click.option("--no-models", "--rules-only", "no_models", is_flag=True,
              help="Run the rules only. The enriched lines are kept in DB.enriched/ and "
                   "re-used by the next rules-only re-run of the same lines and reference.")
@click.option("--models-config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@_price_date_opt
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--include-dismissed", is_flag=True,
              help="Count findings reviewers dismissed or suppressed in the totals too.")
def rescore(db: Path, run_id: str | None, rules_dirs: tuple[Path, ...], skip_invalid: bool,
            no_models: bool, models_config: Path | None, seed: int,
            price_date: dt.datetime | None, fmt: str, include_dismissed: bool) -> None:
    """Re-run rules and models on a stored run's line items, without reading files again.

    The rule author's loop: edit a rule, rescore, look. Writes a new, self-contained run.

    \b
    Example:
      iccaudit rescore --db findings.duckdb --no-models --rules rules/liquid_cooling_markup
    """
    from iccaudit.report.summary import print_summary
    from iccaudit.run import RescoreOptions, RunError, run_rescore

    try:
        result = run_rescore(RescoreOptions(
            db=db, source_run=run_id, rules_dirs=list(rules_dirs), skip_invalid=skip_invalid,
            models=not no_models, models_config=models_config, seed=seed,
            price_date=price_date.date() if price_date else None))
    except RunError as exc:
        _fail(str(exc), exc.exit_code)
    print_summary(result, fmt, include_dismissed=include_dismissed)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder to write the tenders/ folder and labels.csv into.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--tenders", type=int, default=16, show_default=True,
              help="Number of tender files of the small corpus.")
@click.option("--rows", type=int, default=None,
              help="Instead of the corpus, write one large CSV of about N line items.")
def samples(out: Path, seed: int, tenders: int, rows: int | None) -> None:
    """Write a labelled, deterministic corpus of tender files with injected schemes.

    \b
    Example:
      iccaudit samples --out /tmp/corpus --seed 11
      iccaudit samples --out /tmp/big --rows 200000
    """
    from iccaudit.samples import write_corpus, write_large_csv

    if rows is not None:
        path = write_large_csv(out, rows=rows, seed=seed)
        click.echo(f"wrote {path}")
    else:
        info = write_corpus(out, seed=seed, tenders=tenders)
        click.echo(f"wrote {info['files']} tender files and {info['labels']} labels to {out}")


@cli.group()
def rules() -> None:
    """List, validate, test and explain rules.

    \b
    Example:
      iccaudit rules validate
      iccaudit rules test rules/liquid_cooling_markup
      iccaudit rules explain cooling-per-kw-markup
    """


_rules_opt = click.option("--rules", "rules_dirs", multiple=True, type=click.Path(path_type=Path),
                          help="Rule folder (repeatable); default: the bundled pack.")


@rules.command("list")
@_rules_opt
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
              default="table", show_default=True)
def rules_list(rules_dirs: tuple[Path, ...], fmt: str) -> None:
    """List the rules, one line each.

    \b
    Example:
      iccaudit rules list --format markdown
    """
    from iccaudit.detect.rules.commands import list_rules

    raise SystemExit(list_rules(list(rules_dirs) or _default_rules_dirs(), fmt))


@rules.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def rules_validate(paths: tuple[Path, ...]) -> None:
    """Check rule files; print every error as file:line:col: message.

    \b
    Example:
      iccaudit rules validate rules/liquid_cooling_markup/cooling-per-kw-markup.yaml
    """
    from iccaudit.detect.rules.commands import validate_rules

    raise SystemExit(validate_rules(list(paths) or _default_rules_dirs()))


@rules.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def rules_test(paths: tuple[Path, ...]) -> None:
    """Run every rule's in-file tests (expect: hit / miss).

    \b
    Example:
      iccaudit rules test rules/used_as_new
    """
    from iccaudit.detect.rules.commands import test_rules

    raise SystemExit(test_rules(list(paths) or _default_rules_dirs()))


@rules.command("explain")
@click.argument("rule_id")
@_rules_opt
def rules_explain(rule_id: str, rules_dirs: tuple[Path, ...]) -> None:
    """Print a rule's description and the SQL it compiles to.

    \b
    Example:
      iccaudit rules explain dup-identical-line
    """
    from iccaudit.detect.rules.commands import explain_rule

    raise SystemExit(explain_rule(rule_id, list(rules_dirs) or _default_rules_dirs()))


@rules.command("stats")
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="List rules whose share of dismissed reviewed findings exceeds this.")
@click.option("--min-reviewed", type=click.IntRange(1), default=3, show_default=True,
              help="Only rules with at least this many confirmed or dismissed findings.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def rules_stats(db: Path, threshold: float, min_reviewed: int, fmt: str) -> None:
    """Rules whose findings reviewers dismiss more often than the threshold: for their
    authors to tighten (or to turn the dismissals into suppressions).

    \b
    Example:
      iccaudit rules stats --db findings.duckdb --threshold 0.5
    """
    from iccaudit.review.precision import dismissal_stats
    from iccaudit.store import StoreError

    try:
        frame = dismissal_stats(db, threshold=threshold, min_reviewed=min_reviewed)
    except StoreError as exc:
        _fail(str(exc))
    if fmt == "table" and frame.empty:
        click.echo(f"no rule has more than {threshold:.0%} of its reviewed findings dismissed "
                   f"(rules with at least {min_reviewed} reviewed)")
    _print_frame(frame, fmt)


@cli.command()
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with file, line_no, mechanism.")
@click.option("--verdicts", "from_verdicts", is_flag=True,
              help="Instead of labels: precision per rule and mechanism from the reviewers' "
                   "verdicts (95% Wilson intervals).")
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--run", "run_id", default=None, help="Run to evaluate (default: the latest).")
@click.option("--min-severity", type=click.Choice(["info", "low", "medium", "high", "critical"]),
              default="medium", show_default=True,
              help="Severity from which findings count for overall precision.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--fail-under-recall", type=click.FloatRange(0, 1), default=None,
              help="Exit 4 when the recall of any labelled mechanism is below this.")
@click.option("--fail-under-precision", type=click.FloatRange(0, 1), default=None,
              help="Exit 4 when overall precision at --min-severity is below this.")
def evaluate(labels: Path | None, from_verdicts: bool, db: Path, run_id: str | None,
             min_severity: str, fmt: str, fail_under_recall: float | None,
             fail_under_precision: float | None) -> None:
    """Recall, precision and lines flagged per mechanism, against a labels file.

    With --fail-under-recall / --fail-under-precision it is a quality gate for a rule pack
    (exit 4 when a floor is not met).

    \b
    Example:
      iccaudit evaluate --labels data/samples/labels.csv --db findings.duckdb
      iccaudit evaluate --labels labels.csv --fail-under-recall 0.95 --fail-under-precision 0.95
      iccaudit evaluate --verdicts --db findings.duckdb
    """
    from iccaudit.report.evaluate import evaluate_db, print_evaluation
    from iccaudit.store import StoreError

    if from_verdicts == (labels is not None):
        _fail("give either --labels FILE or --verdicts", EXIT_USAGE)
    if labels is None:
        from iccaudit.review.commands import print_precision

        try:
            print_precision(db, fmt)
        except StoreError as exc:
            _fail(str(exc))
        return

    try:
        result = evaluate_db(db, labels, run_id=run_id, min_severity=min_severity)
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    print_evaluation(result, fmt)
    failures = []
    if fail_under_recall is not None:
        failures += [f"recall of {m.mechanism} {m.recall:.3f} < {fail_under_recall}"
                     for m in result.mechanisms
                     if m.recall is not None and m.recall < fail_under_recall]
    if fail_under_precision is not None and (result.overall_precision or 0.0) < \
            fail_under_precision:
        failures.append(f"overall precision {result.overall_precision or 0.0:.3f} < "
                        f"{fail_under_precision}")
    if failures:
        _fail("quality floor not met: " + "; ".join(failures), EXIT_FLOOR)


@cli.command()
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("report.html"),
              show_default=True)
@click.option("--run", "run_id", default=None, help="Run to report (default: the latest).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--include-dismissed", is_flag=True,
              help="Count dismissed and suppressed findings in the totals too.")
def report(db: Path, out: Path, run_id: str | None, lang: str,
           include_dismissed: bool) -> None:
    """Write a self-contained HTML report of a run (opens offline).

    \b
    Example:
      iccaudit report --db findings.duckdb --out report.html --lang en
    """
    from iccaudit.report.html import write_report
    from iccaudit.store import StoreError

    try:
        write_report(db, out, lang=lang, run_id=run_id, include_dismissed=include_dismissed)
    except StoreError as exc:
        _fail(str(exc))
    click.echo(f"report written to {out}")


@cli.command()
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--xlsx", type=click.Path(path_type=Path), help="Excel workbook to write.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Findings as CSV.")
@click.option("--parquet", type=click.Path(path_type=Path), help="Findings as Parquet.")
@click.option("--run", "run_id", default=None, help="Run to export (default: the latest).")
def export(db: Path, xlsx: Path | None, csv_path: Path | None, parquet: Path | None,
           run_id: str | None) -> None:
    """Export findings (and rejects, summary) to Excel, CSV or Parquet.

    \b
    Example:
      iccaudit export --db findings.duckdb --xlsx findings.xlsx
    """
    from iccaudit.report.export import export_findings
    from iccaudit.store import StoreError

    if not (xlsx or csv_path or parquet):
        _fail("say where to write: --xlsx, --csv or --parquet", EXIT_USAGE)
    try:
        written = export_findings(db, xlsx=xlsx, csv=csv_path, parquet=parquet, run_id=run_id)
    except StoreError as exc:
        _fail(str(exc))
    for path in written:
        click.echo(f"wrote {path}")


@cli.group()
def runs() -> None:
    """List the runs of a database and compare two of them.

    \b
    Example:
      iccaudit runs list --db findings.duckdb
      iccaudit runs diff --db findings.duckdb
    """


@runs.command("list")
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def runs_list(db: Path, fmt: str) -> None:
    """The complete runs, oldest first, with the hash of the rules, reference prices and
    settings each used (``run_config``).

    \b
    Example:
      iccaudit runs list --db findings.duckdb
    """
    from iccaudit.report.diff import list_runs
    from iccaudit.store import StoreError

    try:
        frame = list_runs(db)
    except StoreError as exc:
        _fail(str(exc))
    _print_frame(frame, fmt)


@runs.command("diff")
@click.argument("run_a", required=False)
@click.argument("run_b", required=False)
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def runs_diff(run_a: str | None, run_b: str | None, db: Path, fmt: str) -> None:
    """Findings added, removed or changed (severity, money at risk, message) from RUN_A to
    RUN_B, matched by detector and source line. Default: the run before the latest, and the
    latest (for example a rescore after the reference book changed).

    \b
    Example:
      iccaudit runs diff --db findings.duckdb
    """
    from iccaudit.report.diff import diff_runs
    from iccaudit.store import StoreError

    try:
        a, b, frame = diff_runs(db, run_a, run_b)
    except StoreError as exc:
        _fail(str(exc))
    if fmt == "table":
        counts = frame["change"].value_counts()
        click.echo(f"{a} -> {b}: " + ", ".join(
            f"{int(counts.get(k, 0))} {k}" for k in ("added", "removed", "changed")))
    _print_frame(frame, fmt)


@cli.group()
def lexicon() -> None:
    """What the recognition lexicon (rules/lexicon/) did not understand.

    \b
    Example:
      iccaudit lexicon gaps --db findings.duckdb
    """


@lexicon.command("gaps")
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--run", "run_id", default=None, help="Run to read (default: the latest).")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option("--lines", is_flag=True, help="List the lines, not the distinct wordings.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def lexicon_gaps(db: Path, run_id: str | None, limit: int, lines: bool, fmt: str) -> None:
    """The wordings the lexicon did not recognise (unknown, or only guessed by the learned
    fallback), largest money first: the words to add to rules/lexicon/ (docs/rules.md).

    \b
    Example:
      iccaudit lexicon gaps --db findings.duckdb --limit 10
    """
    from iccaudit.report.gaps import lexicon_gaps as find_gaps
    from iccaudit.store import StoreError

    try:
        run, cov, frame = find_gaps(db, run_id, limit, lines)
    except StoreError as exc:
        _fail(str(exc))
    if fmt == "table" and len(cov):
        c = cov.iloc[0]
        click.echo(f"run {run}: {int(c['lines_unknown'])} unknown and "
                   f"{int(c['lines_model_only'])} model-only line(s) of {int(c['lines'])} "
                   f"({(c['share_money_unknown'] or 0):.1%} and "
                   f"{(c['share_money_model_only'] or 0):.1%} of the money)")
    _print_frame(frame, fmt)


def _print_frame(frame: pd.DataFrame, fmt: str) -> None:
    import pandas as pd

    if fmt == "json":
        click.echo(frame.to_json(orient="records", force_ascii=False, date_format="iso"))
    elif len(frame):
        with pd.option_context("display.max_columns", None, "display.width", 200,
                               "display.max_colwidth", 60):
            click.echo(frame.to_string(index=False))


@cli.group()
def verdicts() -> None:
    """Record reviewers' verdicts on findings, list them, turn dismissals into suppressions.

    \b
    Example:
      iccaudit export --db findings.duckdb --xlsx review.xlsx
      iccaudit verdicts import review.xlsx --db findings.duckdb --reviewer wang
      iccaudit verdicts list --db findings.duckdb
    """


def _reviewer_default() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


@verdicts.command("import")
@click.argument("workbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--reviewer", default=_reviewer_default, show_default="the login name",
              help="Who reviewed the workbook.")
def verdicts_import(workbook: Path, db: Path, reviewer: str) -> None:
    """Read the verdict and reason columns of an exported workbook back into the database.

    Every row is checked first (status, fingerprint, key columns untouched, workbook of this
    database, finding still in the latest run, no newer verdict by someone else); any problem
    is printed, one line per row, and nothing is recorded.

    \b
    Example:
      iccaudit verdicts import review.xlsx --db findings.duckdb --reviewer wang
    """
    from iccaudit.review.xlsx import import_verdicts
    from iccaudit.store import StoreError
    from iccaudit.store.verdicts import VerdictError

    try:
        result = import_verdicts(workbook, db, reviewer=reviewer)
    except VerdictError as exc:
        for line in exc.problems:
            click.echo(line, err=True)
        _fail(f"{len(exc.problems)} problem(s) in {workbook}; nothing recorded")
    except StoreError as exc:
        _fail(str(exc))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(result.recorded.items())) or "none"
    click.echo(f"recorded {result.total} verdict(s) ({counts}); {result.already} already "
               f"recorded, {result.blank} row(s) without a verdict")


@verdicts.command("list")
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--history", is_flag=True, help="Every verdict, not only the current ones.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def verdicts_list(db: Path, history: bool, fmt: str) -> None:
    """The current verdict of every reviewed finding (or the whole history), newest first.

    \b
    Example:
      iccaudit verdicts list --db findings.duckdb --history
    """
    from iccaudit.review.commands import list_verdicts
    from iccaudit.store import StoreError

    try:
        frame = list_verdicts(db, history=history)
    except StoreError as exc:
        _fail(str(exc))
    _print_frame(frame, fmt)


@verdicts.command("suppress")
@click.argument("fingerprint")
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--scope", type=click.Choice(["line", "supplier", "rule"]), required=True,
              help="line: this finding line; supplier: the rule's findings on this supplier's "
                   "lines; rule: the rule's findings where --condition holds.")
@click.option("--condition", help="For --scope rule: a SQL condition over latest_findings' "
              "columns, e.g. \"unit = '项'\".")
@click.option("--by", "created_by", default=_reviewer_default, show_default="the login name",
              help="Who decides.")
@click.option("--reason", required=True, help="Why: shown in the report.")
def verdicts_suppress(fingerprint: str, db: Path, scope: str, condition: str | None,
                      created_by: str, reason: str) -> None:
    """Turn the dismissal of a finding into a suppression: matching findings of later runs
    stay stored, marked suppressed, and out of the totals.

    \b
    Example:
      iccaudit verdicts suppress 3f2a9c0d1e4b5a67 --scope supplier --reason "framework contract"
    """
    from iccaudit import store
    from iccaudit.store.suppress import SuppressionError, add_suppression

    try:
        con = store.connect(db)
        try:
            store.ensure_schema(con)
            sid = add_suppression(con, fingerprint, scope, reason=reason,
                                  created_by=created_by, condition=condition)
        finally:
            con.close()
    except (store.StoreError, SuppressionError) as exc:
        _fail(str(exc))
    click.echo(f"suppression {sid} stored ({scope})")


@cli.command()
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--reviewer", default=_reviewer_default, show_default="the login name",
              help="Whose verdicts these are.")
@click.option("--open/--no-open", "open_browser", default=True, show_default=True,
              help="Open the page in the browser.")
def review(db: Path, reviewer: str, open_browser: bool) -> None:
    """Serve the latest run's findings on a local page (127.0.0.1 only, a random port, a
    secret token in the link) and record verdicts with the keyboard. Ctrl-C stops it.

    \b
    Example:
      iccaudit review --db findings.duckdb --reviewer wang
    """
    from iccaudit.review.server import serve
    from iccaudit.store import StoreError

    try:
        serve(db, reviewer=reviewer, open_browser=open_browser,
              announce=lambda url: click.echo(f"review page: {url}  (Ctrl-C to stop)"))
    except StoreError as exc:
        _fail(str(exc))


@cli.command()
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
def doctor(db: Path) -> None:
    """Check the database: schema version (migrating older ones) and invariants.

    Exits 0 when every invariant holds, 1 otherwise.

    \b
    Example:
      iccaudit doctor --db findings.duckdb
    """
    from iccaudit.store import StoreError
    from iccaudit.store.doctor import CHECKS, run_doctor

    if not Path(db).exists():
        _fail(f"{db}: no such database")
    try:
        notes, problems = run_doctor(db)
    except StoreError as exc:
        _fail(str(exc))
    for note in notes:
        click.echo(note)
    failed = {p.code for p in problems}
    for check in CHECKS:
        mark = "FAIL" if check.code in failed else "ok"
        click.echo(f"{mark:4}  {check.code}  {check.description}")
    for p in problems:
        click.echo(f"{p.code}: {p.count} row(s) break '{p.description}', e.g. {p.example}",
                   err=True)
    if problems:
        raise SystemExit(EXIT_ERROR)


class _Interrupted(BaseException):
    """Ctrl-C or SIGTERM: unwinds the run (temporary files removed, no write half done)."""


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted


def main() -> None:
    """Console entry point."""
    import signal

    # click would turn Ctrl-C into "Aborted!" with exit 1; a batch system stops with SIGTERM
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        cli.main(prog_name="iccaudit", standalone_mode=True)
    except SystemExit as done:
        # Every command has closed its database and removed its temporary files by now.
        # Leave without tearing down the heap object by object: after a large run that is
        # most of a second of freeing Arrow tables and frames the OS reclaims at once anyway.
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if done.code is not None and not isinstance(done.code, int):
            click.echo(done.code, err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    except (_Interrupted, KeyboardInterrupt):
        click.echo("iccaudit: interrupted; the database is unchanged", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug of ours: still one line, the traceback on request
        if os.environ.get("ICCAUDIT_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        click.echo(
            f"iccaudit: internal error: {type(exc).__name__}: {first} "
            "(set ICCAUDIT_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
