"""Run rules set-at-a-time on the sandbox, and run the rules' in-file tests.

Each rule is one query over its whole view (never a Python loop over rows). A view that is
not a table is copied (the columns the rules read) into a temp table once, so it is computed
once per run, not once per rule. Per view, one statistics query counts the rows, the
applicable rows and the hits of all its rules at once, and one more scan keeps the rows any
of them hits: each rule's findings query then reads those few rows, not the whole view.
If a batched query fails, each rule is counted alone (and reads the view itself) so that one
broken rule cannot take the others down. A rule that fails at run time gets a ``rule_runs``
row with status ``not_evaluated`` and the one-line error: it never counts as "no findings".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlglot import exp

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
    import pyarrow as pa

from iccaudit.core import schema
from iccaudit.core.fingerprint import content_sql, fingerprint_sql
from iccaudit.detect.currency import (
    compares_with_reference,
    foreign_currencies,
    foreign_lines,
    money_in_yuan_only,
)
from iccaudit.detect.rules.compiler import DIALECT, CompiledRule
from iccaudit.detect.rules.messages import render_texts
from iccaudit.detect.rules.model import Rule

#: A rule that fires on more than this share of its applicable rows gets a warning ...
FIRE_RATE_WARNING = 0.20
#: ... but only with enough applicable rows for a share to mean something: 3 hits in 14
#: cooling lines of one small batch is 21 % and says nothing about the rule.
FIRE_RATE_MIN_ROWS = 50

# The frame around a rule's hits query. Constant text with placeholders only: finding_sql puts
# in the rule id as a quoted literal and the hits as SQL generated from the checked tree.
_ITEM_EXPR = {
    "item": "__key",
    "column": "__key",
    "list": "UNNEST(CASE WHEN len(list_distinct(__key)) > 0 THEN list_distinct(__key) "
            "ELSE [NULL::BIGINT] END)",
    "columns": "UNNEST(CASE WHEN len(list_distinct(__key)) > 0 THEN list_distinct(__key) "
               "ELSE [NULL::BIGINT] END)",
    "tender": "NULL::BIGINT",
}
_HITS_PLACEHOLDER = "__hits_query__"
_FRAME = """
WITH h AS ({hits}),
e AS (SELECT h.*, {item} AS __item FROM h),
t AS ({tenders}),
f AS (
  SELECT
    e.*,
    li.source_file AS li_source_file, li.source_sheet, li.source_row,
    li.tender_id AS li_tender_id, li.line_no,
    substr(sha256(__rule_id__ || '|' || e.__group), 1, 16) AS group_id,
    substr(sha256(__rule_id__ || '|' || e.__group || '|' || coalesce(CAST(e.__item AS VARCHAR),
           '')), 1, 16) AS finding_id,
    __content__ AS __content
  FROM e LEFT JOIN line_items AS li ON li.item_id = e.__item
  {qualify}
)
SELECT
  f.*,
  coalesce(f.li_source_file, t.source_file, '') AS source_file,
  coalesce(f.li_tender_id, f.__tender, '') AS tender_id,
  {excess} AS est_excess_cny,
  __fingerprint__ AS __fingerprint
FROM f LEFT JOIN t ON t.tender_id = coalesce(f.li_tender_id, f.__tender)
ORDER BY f.__item NULLS LAST, group_id
"""


#: One finding per (group, line): the highest-scoring hit row; and the group's money on its
#: first line. A rule on ``items`` keyed by item_id has one row per line and per group, so
#: neither needs a window there (two sorts of every hit row fewer: 200 k findings, 0.3 s).
_QUALIFY = """QUALIFY row_number() OVER (PARTITION BY e.__group, e.__item
                             ORDER BY e.__score DESC, e.__evidence) = 1"""
_GROUP_EXCESS = """CASE WHEN row_number() OVER (PARTITION BY f.__group ORDER BY f.__item NULLS LAST) = 1
        AND f.__excess > 0 THEN f.__excess END"""
_LINE_EXCESS = "CASE WHEN f.__excess > 0 THEN f.__excess END"

#: Each tender's first file, for findings on a tender rather than a line.
_TENDERS = "SELECT tender_id, min(source_file) AS source_file FROM line_items GROUP BY tender_id"
#: ... computed once per run into this temp table, not once per rule (a scan of every line)
_TENDERS_TABLE = "__rules_tenders"


def finding_sql(compiled: CompiledRule, source: str | None = None, *,
                tenders_table: str | None = None, version: str | None = None) -> str:
    """The full query of a rule: hits, one row per implicated line, ids and locations.

    ``tenders_table`` names a table of each tender's first source file (made by the runner
    once per run); without it the query computes it from ``line_items``. ``version``: the
    rule's ``rule_version``, with which each finding gets its fingerprint
    (:mod:`iccaudit.core.fingerprint`); without it the fingerprint is NULL (the store fills
    it). The frame is our constant text; into it go the rule id and the version as SQL
    string literals and the hits query as SQL that sqlglot generates from the checked tree,
    last, so nothing in a rule's text is ever substituted. (Assembling it as text, not as one
    sqlglot tree, saves the copy and the regeneration of the frame for every rule: a fifth of
    the rules stage on 1 M lines.)
    """
    tenders = f"SELECT * FROM {tenders_table}" if tenders_table else _TENDERS
    by_line = compiled.key_mode == "item" and compiled.view == "items"  # item_id is unique
    frame = _FRAME.format(hits=_HITS_PLACEHOLDER, item=_ITEM_EXPR[compiled.key_mode],
                          tenders=tenders, qualify="" if by_line else _QUALIFY,
                          excess=_LINE_EXCESS if by_line else _GROUP_EXCESS)
    if version is None:
        content, fingerprint = "NULL::VARCHAR", "NULL::VARCHAR"
    else:
        content = content_sql("coalesce(li.tender_id, e.__tender, '')", "__rule_id__",
                              exp.Literal.string(version).sql(DIALECT), "li")
        fingerprint = fingerprint_sql("f.__content", "coalesce(f.li_source_file, t.source_file, '')",
                                      "f.source_sheet", "f.source_row", "f.finding_id")
    frame = frame.replace("__content__", content).replace("__fingerprint__", fingerprint)
    frame = frame.replace("__rule_id__", exp.Literal.string(compiled.rule_id).sql(DIALECT))
    return frame.replace(_HITS_PLACEHOLDER, compiled.hits_query(source).sql(DIALECT), 1)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    from iccaudit.core.duck import fetch_arrow  # Arrow: big results stay cheap

    return fetch_arrow(con, sql)


#: Rows of a rule's result formatted into findings at a time (:func:`_run_view`).
_FORMAT_ROWS = 262_144


def _materialise(con: duckdb.DuckDBPyConnection, view: str, rules: Sequence[Rule]) -> str | None:
    """Copy the columns the rules read from ``view`` into a temp table, once for all its rules.

    The views are computed on demand (peer statistics, recognition regexes): querying a view
    once per rule would compute it once per rule. Returns the table name, or None when the
    copy failed or ``view`` is already a table (the rules then read it directly and report
    their own errors).
    """
    import duckdb

    # A view the sandbox already materialised (``items``) is a base table: copying its
    # columns would cost a full scan and write (about 1.3 s on 1 M lines) and save nothing.
    try:
        is_table = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary",
            [view]).fetchall()[0][0] > 0
    except duckdb.Error:
        is_table = False
    if is_table:
        return None
    select = exp.select(*_columns_read(rules)).from_(exp.to_table(view))
    return _temp_table(con, f"__rules_{view}", select)


def _columns_read(rules: Sequence[Rule]) -> list[exp.Expr]:
    """The view columns any of ``rules`` reads, sorted, as quoted column references."""
    cols = sorted(set().union(*(r.compiled.columns_used() for r in rules)))
    return [exp.column(c, quoted=True) for c in cols]


def _temp_table(con: duckdb.DuckDBPyConnection, table: str, select: exp.Select, replace: bool = False) -> str | None:
    """``CREATE TEMP TABLE table AS select``; the table's name, or None when it failed."""
    import duckdb

    create = exp.Create(this=exp.to_table(table), kind="TABLE", expression=select,
                        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
                        replace=replace)
    try:
        con.execute(create.sql(DIALECT))
    except duckdb.Error:
        return None
    return table


def _hits_table_name(view: str) -> str:
    return f"__rules_hits_{view}"


def _hit_rows(con: duckdb.DuckDBPyConnection, view: str, source: str, rules: Sequence[Rule]) -> str | None:
    """The rows of ``source`` that any of ``rules`` hits, with the columns they read.

    One scan of the view for all its rules; each rule's finding query then filters these few
    rows with its own condition, which gives the same rows as filtering the whole view (the
    table holds every row any rule's condition keeps). Returns None for a single rule (no
    gain) or when the query fails (each rule then reads the view and reports its own error).
    """
    if len(rules) < 2:
        return None
    select = (exp.select(*_columns_read(rules)).from_(exp.to_table(source))
              .where(exp.or_(*[r.compiled.condition() for r in rules])))
    return _temp_table(con, _hits_table_name(view), select, replace=True)


def _drop(con: duckdb.DuckDBPyConnection, table: str) -> None:
    import duckdb

    try:
        # our own name (a dictionary view name), quoted by sqlglot; Drop's tree shape differs
        # between sqlglot versions, the statement text does not
        con.execute(f"DROP TABLE IF EXISTS {exp.to_identifier(table, quoted=True).sql(DIALECT)}")
    except duckdb.Error:
        pass  # the connection is in-memory and closed by the caller anyway


def _stats(con: duckdb.DuckDBPyConnection, view: str, rules: Sequence[Rule]) -> dict[str, tuple[int, int, int] | str]:
    """rule id -> (rows, applicable, hits), or the one-line error of a rule that failed."""
    import duckdb

    def query(batch: Sequence[Rule]) -> exp.Select:
        cols: list[exp.Expr] = [exp.alias_(exp.Count(this=exp.Star()), "n")]
        for i, r in enumerate(batch):
            cols.extend(r.compiled.stats_projections(i))
        return exp.select(*cols).from_(exp.to_table(view))

    out: dict[str, tuple[int, int, int] | str] = {}
    try:
        row = con.execute(query(rules).sql(DIALECT)).fetchall()[0]
        for i, r in enumerate(rules):
            out[r.id] = (int(row[0]), int(row[1 + 2 * i]), int(row[2 + 2 * i]))
        return out
    except duckdb.Error:
        pass  # find the culprit(s) rule by rule
    for r in rules:
        try:
            row = con.execute(query([r]).sql(DIALECT)).fetchall()[0]
            out[r.id] = (int(row[0]), int(row[1]), int(row[2]))
        except duckdb.Error as exc:
            out[r.id] = one_line(exc)
    return out


def _counts(con: duckdb.DuckDBPyConnection, table: str, rules: Sequence[Rule], which: int) -> list[int] | None:
    """count(*) and, per rule, its applicable rows (``which`` 0) or hits (1) in ``table``;
    None when the query fails (the caller then takes the rule-by-rule path)."""
    import duckdb

    cols: list[exp.Expr] = [exp.alias_(exp.Count(this=exp.Star()), "n")]
    cols.extend(r.compiled.stats_projections(i)[which] for i, r in enumerate(rules))
    try:
        return [int(v) for v in con.execute(
            exp.select(*cols).from_(exp.to_table(table)).sql(DIALECT)).fetchall()[0]]
    except duckdb.Error:
        return None


def _stats_and_hits(con: duckdb.DuckDBPyConnection, view: str, source: str, rules: Sequence[Rule]
                    ) -> tuple[dict[str, tuple[int, int, int] | str], str | None]:
    """(rule id -> (rows, applicable, hits) or error, the shared hit rows table or None).

    The rules' conditions cost most of a scan, so they are evaluated once: applicability is
    counted over the view, the hit rows are collected with all conditions at once, and each
    rule's hits are counted on those few rows. Anything failing takes the rule-by-rule path.
    """
    if len(rules) >= 2:
        applicable = _counts(con, source, rules, 0)
        hits_table = _hit_rows(con, view, source, rules) if applicable is not None else None
        hits = _counts(con, hits_table, rules, 1) if hits_table is not None else None
        if hits is not None and applicable is not None:
            return {r.id: (applicable[0], applicable[1 + i], hits[1 + i])
                    for i, r in enumerate(rules)}, hits_table
        if hits_table is not None:
            _drop(con, hits_table)
    stats = _stats(con, source, rules)
    return stats, _hit_rows(con, view, source, [r for r in rules
                                                if not isinstance(stats[r.id], str)])


def _findings(rule: Rule, piece: pa.RecordBatch, run_id: str) -> pa.Table:
    """The findings of a slice of a rule's result, as an Arrow table with the store's
    ``findings`` columns: staged in the sandbox by DuckDB's Arrow scan, with no pandas frame
    of them (the messages are formatted from one; see :mod:`.messages`)."""
    import pyarrow as pa

    # the columns the messages and the severity are made from, for pandas (not the evidence)
    hits = piece.select([c for c in piece.schema.names
                         if c.startswith("f_") or c in ("__excess", "__score")]).to_pandas()
    n = piece.num_rows
    formatted: dict = {}
    zh = render_texts(rule.message.zh, hits, formatted)
    en = render_texts(rule.message.en, hits, formatted)

    def column(name: str, typ: pa.DataType) -> pa.Array:
        return piece.column(name).cast(typ)

    def same(value: str) -> pa.Array:  # one text on every row, without a Python list of it
        return pa.repeat(pa.scalar(value, pa.string()), n)

    text = pa.string()
    return pa.table({
        "run_id": same(run_id),
        "finding_id": column("finding_id", text),
        "group_id": column("group_id", text),
        "item_id": column("__item", pa.int64()),
        "source_file": column("source_file", text),
        "source_sheet": column("source_sheet", text),
        "source_row": column("source_row", pa.int64()),
        "tender_id": column("tender_id", text),
        "line_no": column("line_no", text),
        "detector": same(rule.id),
        "kind": same("rule"),
        "mechanism": same(rule.mechanism),
        "severity": pa.array(_severities(rule, hits), text),
        "score": column("__score", pa.float64()),
        "est_excess_cny": column("est_excess_cny", pa.float64()),
        "title": same(rule.title_zh),
        "title_en": same(rule.title),
        "message": zh,
        "message_en": en,
        "evidence": column("__evidence", text),
        "rule_version": same(rule.version),
        "fingerprint": column("__fingerprint", text),
    })


def as_frame(findings: pa.Table) -> pd.DataFrame:
    """Findings (or some of their columns) as a pandas frame: integers as nullable Int64,
    texts as pandas' text dtype."""
    import pandas as pd
    import pyarrow as pa

    def mapped(typ: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
        return pd.Int64Dtype() if typ == pa.int64() else None

    frame: pd.DataFrame = findings.to_pandas(types_mapper=mapped)
    return frame


def _severities(rule: Rule, hits: pd.DataFrame) -> list[str]:
    """The rule's severity, or its ``severity_if_model`` on lines only the fallback guessed."""
    if rule.severity_if_model is None or "f___recognised_by" not in hits:
        return [rule.severity] * len(hits)
    import numpy as np

    guessed = (hits["f___recognised_by"] == "model").to_numpy(dtype=bool)
    return list(np.where(guessed, rule.severity_if_model, rule.severity))


def _empty_findings() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=object) for c in schema.columns("findings")})


def _tenders_table(con: duckdb.DuckDBPyConnection) -> str | None:
    """Each tender's first file, once per run (None: each rule computes it, as before)."""
    import duckdb

    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_TENDERS_TABLE} AS {_TENDERS}")
    except duckdb.Error:
        return None
    return _TENDERS_TABLE


def _run_view(con: duckdb.DuckDBPyConnection, view: str, view_rules: Sequence[Rule], run_id: str,
              runs: dict[str, dict[str, Any]], tenders: str | None,
              keep: Callable[[pa.Table], pd.DataFrame]) -> list[pd.DataFrame]:
    """Run the rules of one view; fills ``runs`` and returns what ``keep`` keeps of each
    rule's findings frame.

    One worker thread talks to DuckDB (statistics, hit rows, then each rule's finding query,
    in rule order) while this thread builds the queries and formats the findings of the rule
    before: DuckDB releases the GIL, so the two overlap. Only the worker uses ``con`` until it
    is done; results are taken in rule order, so the output does not depend on timing.
    """
    from concurrent.futures import ThreadPoolExecutor
    from itertools import pairwise

    import duckdb

    frames = []
    table = _materialise(con, view, view_rules)
    source = table or view
    hits_table = None
    hits_name = _hits_table_name(view)

    def prepare() -> tuple[dict, str | None]:
        return _stats_and_hits(con, view, source, view_rules)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="iccaudit-rules") as duck:
        try:
            pending = duck.submit(prepare)
            # built while DuckDB computes the statistics (assuming the shared hit rows table)
            queries = {r.id: finding_sql(r.compiled, hits_name, tenders_table=tenders,
                                     version=r.version)
                       for r in view_rules}
            stats, hits_table = pending.result()
            if hits_table is None:
                queries = {r.id: finding_sql(r.compiled, source, tenders_table=tenders,
                                         version=r.version)
                           for r in view_rules}
            # one rule's result fetched ahead of the one being formatted, not all of them: a
            # result waiting is a whole rule's findings (10 M lines: 2 M rows, about 1 GB)
            runnable = [r for r in view_rules if not isinstance(stats[r.id], str)]
            after = {a.id: b for a, b in pairwise(runnable)}
            fetches = {r.id: duck.submit(_fetch, con, queries[r.id]) for r in runnable[:1]}
            for r in view_rules:
                st = stats[r.id]
                if isinstance(st, str):
                    runs[r.id] = {"status": "not_evaluated", "error": st}
                    continue
                rows, applicable, hits = st
                if (ahead := after.get(r.id)) is not None:
                    fetches[ahead.id] = duck.submit(_fetch, con, queries[ahead.id])
                try:
                    found = fetches.pop(r.id).result()
                except duckdb.Error as exc:
                    runs[r.id] = {"status": "not_evaluated", "error": one_line(exc),
                                  "rows_evaluated": rows}
                    continue
                warning = None
                limit = r.expected_fire_rate or FIRE_RATE_WARNING
                if applicable >= FIRE_RATE_MIN_ROWS and hits > limit * applicable:
                    warning = (f"{r.id}: fired on {hits:,} of {applicable:,} applicable rows "
                               f"({hits / applicable:.0%}), more than "
                               f"{limit:.0%}; check the rule or the data")
                runs[r.id] = {"status": "ok", "rows_evaluated": rows,
                              "rows_applicable": applicable, "hits": hits, "warning": warning}
                # formatted a slice at a time: the Python frames of one slice, not of the rule
                for piece in found.to_batches(max_chunksize=_FORMAT_ROWS):
                    frames.append(keep(_findings(r, piece, run_id)))
                del found
        finally:
            duck.shutdown(wait=True, cancel_futures=True)  # con is this thread's again
            for t in (hits_table, table):
                if t:
                    _drop(con, t)
    return frames


_YUAN_VIEW = "__rules_items_in_yuan"


def _run_in_yuan(con: duckdb.DuckDBPyConnection, rules: Sequence[Rule], foreign: dict[str, int],
                 run_id: str, runs: dict[str, dict[str, Any]], tenders: str | None,
                 keep: Callable[[pa.Table], pd.DataFrame]) -> list[pd.DataFrame]:
    """Rules that compare prices with the yuan reference book, run on the lines in yuan only;
    the lines in other currencies are not evaluated, and each rule's run says how many."""
    con.execute(f'CREATE OR REPLACE TEMP VIEW "{_YUAN_VIEW}" AS SELECT * FROM items '
                "WHERE coalesce(currency, 'CNY') = 'CNY'")
    try:
        frames = _run_view(con, _YUAN_VIEW, rules, run_id, runs, tenders, keep)
    finally:
        con.execute(f'DROP VIEW IF EXISTS "{_YUAN_VIEW}"')
    n = sum(foreign.values())
    codes = ", ".join(f"{c}: {k:,}" for c, k in foreign.items())
    for r in rules:
        note = (f"{r.id}: {n:,} line(s) in other currencies ({codes}) not evaluated: the "
                "reference book is in yuan (convert them with a dated rate table: --rates)")
        old = runs[r.id].get("warning")
        runs[r.id]["warning"] = f"{old}; {note}" if old else note
    return frames


def run_pack(con: duckdb.DuckDBPyConnection, rules: Sequence[Rule], run_id: str, *,
             include_deprecated: bool = False,
             keep: Callable[[pa.Table], pd.DataFrame] | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``rules``; (findings, rule_runs). ``keep``: given each rule's findings as they are
    made, returns what of them to keep (see :func:`run_rules_staged`); the findings then
    are the kept parts, without the money corrections of :func:`correct_money`."""
    import pandas as pd

    runs: dict[str, dict[str, Any]] = {}
    frames = []
    active: list[Rule] = []
    for r in rules:
        if r.status == "deprecated" and not include_deprecated:
            runs[r.id] = {"status": "skipped", "warning": f"{r.id}: deprecated, not run"}
        else:
            active.append(r)

    by_view: dict[str, list[Rule]] = {}
    foreign = foreign_currencies(con) if active else {}
    fenced: list[Rule] = []
    for r in active:
        if foreign and r.view == "items" and compares_with_reference(
                r.compiled.columns_used()):
            fenced.append(r)  # run on the lines in yuan only, below
        else:
            by_view.setdefault(r.view, []).append(r)
    tenders = _tenders_table(con) if active else None
    take = keep or as_frame
    try:
        for view, view_rules in by_view.items():
            frames.extend(_run_view(con, view, view_rules, run_id, runs, tenders, take))
        if fenced:
            frames.extend(_run_in_yuan(con, fenced, foreign, run_id, runs, tenders, take))
    finally:
        if tenders:
            _drop(con, tenders)

    rule_runs = pd.DataFrame([
        {"run_id": run_id, "detector": r.id, "kind": "rule", "status": "ok",
         "rows_evaluated": None, "rows_applicable": None, "hits": None, "error": None,
         "warning": None, **runs[r.id]}
        for r in rules
    ], columns=schema.columns("rule_runs"))
    for c in ("rows_evaluated", "rows_applicable", "hits"):
        rule_runs[c] = rule_runs[c].astype("Int64")
    findings = pd.concat(frames, ignore_index=True) if frames else _empty_findings()
    if keep is not None:
        return findings, rule_runs
    return correct_money(findings, foreign_lines(con)), rule_runs


def correct_money(findings: pd.DataFrame,
                  foreign: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    """The rules' findings with their money counted once per line (:func:`count_money_once`)
    and kept out of the yuan totals on lines in another currency (``foreign``: the sandbox's
    :func:`~iccaudit.detect.currency.foreign_lines`). Each line's findings are corrected
    from that line's findings alone: any subset that holds all of a line's findings gives
    the same rows."""
    return money_in_yuan_only(None, count_money_once(findings), foreign=foreign)


#: What a run keeps in memory of a finding once it is staged (the rules' here, the models' in
#: ``detect.models.findings``): who found what, and how much.
LEAN_COLUMNS = ("finding_id", "group_id", "item_id", "detector", "kind", "severity",
                "est_excess_cny", "fingerprint")
#: The sandbox's temp table the rules' findings are staged in (see :func:`run_rules_staged`).
STAGED_FINDINGS = "__rule_findings"


def run_rules_staged(con: duckdb.DuckDBPyConnection, rules: Sequence[Rule], run_id: str
                     ) -> tuple[pd.DataFrame, pd.DataFrame, duckdb.DuckDBPyConnection]:
    """Run every rule, staging each rule's findings in a temp table of the sandbox as soon
    as they are made, so that no run holds all its findings in memory as Python objects (an
    out-of-core sandbox spills beyond its memory limit; 10 M lines, 40 % flagged: 4.4 M
    findings, about 4 GB of text).

    Returns ``(lean findings, rule_runs, staged)``: the :data:`LEAN_COLUMNS` of every
    finding, and a cursor of the sandbox whose temp table :data:`STAGED_FINDINGS` holds
    them all with the store's ``findings`` columns and the money corrected
    (:func:`correct_money`, applied to the lines it changes: lines with money from more than
    one rule, and lines in another currency). The caller writes the table to the store and
    closes the cursor (which drops it). The lean findings are corrected too (their order is
    not the staged table's).
    The findings are staged on that cursor, the rules' queries run on ``con``: the two go
    side by side.
    """
    import numpy as np
    import pandas as pd

    from iccaudit.core.duck import fetch_frame

    table = exp.to_identifier(STAGED_FINDINGS, quoted=True).sql(DIALECT)
    cols = schema.columns("findings")
    target = ", ".join(f'"{c}"' for c in cols)
    staged = con.cursor()  # a temp table is its connection's own: this cursor's
    staged.execute(schema.ddl("findings").replace("CREATE TABLE IF NOT EXISTS findings",
                                                  f"CREATE TEMP TABLE {table}", 1))

    def stage(found: pd.DataFrame | pa.Table) -> None:
        staged.register("__incoming_findings", found)
        try:
            staged.execute(f"INSERT INTO {table} ({target}) SELECT {target} "
                           "FROM __incoming_findings")
        finally:
            staged.unregister("__incoming_findings")

    def keep(found: pa.Table) -> pd.DataFrame:
        stage(found)
        return as_frame(found.select(list(LEAN_COLUMNS)))

    try:
        lean, rule_runs = run_pack(con, rules, run_id, keep=keep)
        lean = lean[list(LEAN_COLUMNS)]
        foreign = foreign_lines(con)
        money = lean[lean["est_excess_cny"].notna() & lean["item_id"].notna()]
        shared = money["item_id"][money["item_id"].duplicated()].unique()
        found = lean["item_id"].dropna().unique()
        lines = np.union1d(np.asarray(shared, dtype="int64"),
                           np.intersect1d(foreign[0], np.asarray(found, dtype="int64")))
        if len(lines):  # each line's findings corrected from that line's findings alone
            where = "item_id IN (SELECT unnest($ids::BIGINT[]))"
            ids = {"ids": [int(i) for i in lines]}
            rows = fetch_frame(staged, f"SELECT * FROM {table} WHERE {where}", ids)
            staged.execute(f"DELETE FROM {table} WHERE {where}", ids)
            fixed = correct_money(rows, foreign)
            stage(fixed)
            lean = pd.concat([lean[~lean["item_id"].isin(lines)], fixed[list(LEAN_COLUMNS)]],
                             ignore_index=True)
    except BaseException:
        staged.close()
        raise
    return lean, rule_runs, staged


def count_money_once(findings: pd.DataFrame) -> pd.DataFrame:
    """One estimate of overpayment per line, so that sums over findings never count twice.

    When several rules put money on the same line (a refurbished white-label server is both
    ``used_as_new`` and ``offbrand_premium``), the largest estimate stays in
    ``est_excess_cny`` (ties: the first detector by name); the others move into their
    evidence as ``est_excess_if_alone_cny`` with ``excess_counted_by`` naming the finding
    that carries the money. Set-at-a-time: one sort of the findings with money, and text
    work on the few that move only (1 M lines, 600 k findings: 2.6 k move).
    """
    import numpy as np
    import pandas as pd

    if findings.empty:
        return findings
    money = findings["est_excess_cny"].to_numpy(dtype=float, na_value=np.nan)
    item = findings["item_id"].to_numpy(dtype=float, na_value=np.nan)
    at = np.flatnonzero(~np.isnan(money) & ~np.isnan(item))
    if len(at) < 2:
        return findings
    codes, names = pd.factorize(findings["detector"], sort=True)  # no Python str per row
    # by line, the largest estimate first, then the detector's name; stable on full ties
    order = at[np.lexsort((codes[at], -money[at], item[at]))]
    first = np.r_[True, item[order][1:] != item[order][:-1]]
    moved = order[~first]
    if len(moved) == 0:
        return findings
    # the finding that keeps each line's money: the first of its line in that order
    keeper = order[first][np.searchsorted(item[order][first], item[moved])]
    counted_by = np.asarray(names, dtype=object)[codes[keeper]].astype(str)
    amount = pd.Series(money[moved]).round(2).astype(str).to_numpy()
    body = findings["evidence"].iloc[moved].astype(str).str.rstrip().str[:-1].str.rstrip()
    body = body.reset_index(drop=True)
    sep = np.where(body.str.endswith("{"), "", ", ")
    evidence = findings["evidence"].copy()
    evidence.iloc[moved] = (body + sep + '"est_excess_if_alone_cny": ' + amount
                            + ', "excess_counted_by": "' + counted_by + '"}').to_numpy()
    money = money.copy()
    money[moved] = np.nan
    out = findings.copy(deep=False)  # the other columns are shared, not copied
    out["evidence"] = evidence
    out["est_excess_cny"] = money
    return out


def run_rules(con: duckdb.DuckDBPyConnection, rules: Sequence[Rule], run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every rule on the sandbox connection.

    Returns ``(findings, rule_runs)``: DataFrames with the columns of
    :class:`iccaudit.core.schema.Finding` and :class:`iccaudit.core.schema.RuleRun`. Deprecated rules
    get a ``skipped`` row; a rule that fails at run time a ``not_evaluated`` row with the error.
    """
    return run_pack(con, rules, run_id)

