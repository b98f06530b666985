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

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlglot import exp

from iccaudit.core import schema
from iccaudit.detect.rules.compiler import DIALECT, CompiledRule
from iccaudit.detect.rules.model import Rule, RuleCase
from iccaudit.detect.rules.testrows import default_row

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
           '')), 1, 16) AS finding_id
  FROM e LEFT JOIN line_items AS li ON li.item_id = e.__item
  QUALIFY row_number() OVER (PARTITION BY e.__group, e.__item
                             ORDER BY e.__score DESC, e.__evidence) = 1
)
SELECT
  f.*,
  coalesce(f.li_source_file, t.source_file, '') AS source_file,
  coalesce(f.li_tender_id, f.__tender, '') AS tender_id,
  CASE WHEN row_number() OVER (PARTITION BY f.__group ORDER BY f.__item NULLS LAST) = 1
        AND f.__excess > 0 THEN f.__excess END AS est_excess_cny
FROM f LEFT JOIN t ON t.tender_id = coalesce(f.li_tender_id, f.__tender)
ORDER BY f.__item NULLS LAST, group_id
"""


#: Each tender's first file, for findings on a tender rather than a line.
_TENDERS = "SELECT tender_id, min(source_file) AS source_file FROM line_items GROUP BY tender_id"
#: ... computed once per run into this temp table, not once per rule (a scan of every line)
_TENDERS_TABLE = "__rules_tenders"


def finding_sql(compiled: CompiledRule, source: str | None = None, *,
                tenders_table: str | None = None) -> str:
    """The full query of a rule: hits, one row per implicated line, ids and locations.

    ``tenders_table`` names a table of each tender's first source file (made by the runner
    once per run); without it the query computes it from ``line_items``. The frame is our
    constant text; into it go the rule id as a SQL string literal and the hits query as SQL
    that sqlglot generates from the checked tree, last, so nothing in a rule's text is ever
    substituted. (Assembling it as text, not as one sqlglot tree, saves the copy and the
    regeneration of the frame for every rule: a fifth of the rules stage on 1 M lines.)
    """
    tenders = f"SELECT * FROM {tenders_table}" if tenders_table else _TENDERS
    frame = _FRAME.format(hits=_HITS_PLACEHOLDER, item=_ITEM_EXPR[compiled.key_mode],
                          tenders=tenders)
    frame = frame.replace("__rule_id__", exp.Literal.string(compiled.rule_id).sql(DIALECT))
    return frame.replace(_HITS_PLACEHOLDER, compiled.hits_query(source).sql(DIALECT), 1)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def _fetch(con: Any, sql: str) -> Any:
    from iccaudit.core.duck import fetch_frame  # via Arrow: big results stay cheap

    return fetch_frame(con, sql)


def _materialise(con: Any, view: str, rules: Sequence[Rule]) -> str | None:
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


def _columns_read(rules: Sequence[Rule]) -> list[exp.Expression]:
    """The view columns any of ``rules`` reads, sorted, as quoted column references."""
    cols = sorted(set().union(*(r.compiled.columns_used() for r in rules)))
    return [exp.column(c, quoted=True) for c in cols]


def _temp_table(con: Any, table: str, select: exp.Select, replace: bool = False) -> str | None:
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


def _hit_rows(con: Any, view: str, source: str, rules: Sequence[Rule]) -> str | None:
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


def _drop(con: Any, table: str) -> None:
    import duckdb

    try:
        # our own name (a dictionary view name), quoted by sqlglot; Drop's tree shape differs
        # between sqlglot versions, the statement text does not
        con.execute(f"DROP TABLE IF EXISTS {exp.to_identifier(table, quoted=True).sql(DIALECT)}")
    except duckdb.Error:
        pass  # the connection is in-memory and closed by the caller anyway


def _stats(con: Any, view: str, rules: Sequence[Rule]) -> dict[str, tuple[int, int, int] | str]:
    """rule id -> (rows, applicable, hits), or the one-line error of a rule that failed."""
    import duckdb

    def query(batch: Sequence[Rule]) -> exp.Select:
        cols: list[exp.Expression] = [exp.alias_(exp.Count(this=exp.Star()), "n")]
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
            out[r.id] = _one_line(exc)
    return out


def _counts(con: Any, table: str, rules: Sequence[Rule], which: int) -> list[int] | None:
    """count(*) and, per rule, its applicable rows (``which`` 0) or hits (1) in ``table``;
    None when the query fails (the caller then takes the rule-by-rule path)."""
    import duckdb

    cols: list[exp.Expression] = [exp.alias_(exp.Count(this=exp.Star()), "n")]
    cols.extend(r.compiled.stats_projections(i)[which] for i, r in enumerate(rules))
    try:
        return [int(v) for v in con.execute(
            exp.select(*cols).from_(exp.to_table(table)).sql(DIALECT)).fetchall()[0]]
    except duckdb.Error:
        return None


def _stats_and_hits(con: Any, view: str, source: str, rules: Sequence[Rule]
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
        if hits is not None:
            return {r.id: (applicable[0], applicable[1 + i], hits[1 + i])
                    for i, r in enumerate(rules)}, hits_table
        if hits_table is not None:
            _drop(con, hits_table)
    stats = _stats(con, source, rules)
    return stats, _hit_rows(con, view, source, [r for r in rules
                                                if not isinstance(stats[r.id], str)])


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _is_null(value: Any) -> bool:
    import pandas as pd

    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _format_column(values: Any, spec: str) -> Any:
    """Format one placeholder's column (output formatting; one call per column) as an Arrow
    string array.

    Each distinct value is formatted once: findings repeat medians, counts and names.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    def one(v: Any) -> str:
        if _is_null(v):
            return "—"
        if hasattr(v, "tolist") and not isinstance(v, str):
            v = v.tolist()
        try:
            return format(v, spec) if spec else _plain(v)
        except (TypeError, ValueError):
            return _plain(v)

    # Only where equal values print alike: 1 and 1.0 and True, or Decimal 1.0 and 1.00, or
    # 0.0 and -0.0 hash alike but do not; lists are unhashable. Other kinds value by value.
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("string", "integer", "boolean"):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        uniques = list(uniques)
    elif kind == "floating":
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        bits, _ = pd.factorize(numbers.view(np.int64))  # by bit pattern: -0.0 is not 0.0
        first = pd.Series(np.arange(len(bits))).groupby(bits).first().to_numpy()
        uniques = [float(x) for x in numbers[first]]
        codes = np.where(np.isnan(numbers), -1, bits)
    else:
        return pa.array([one(v) for v in values], pa.large_string())
    texts = pa.array([one(u) for u in uniques] + ["—"], pa.large_string())
    return texts.take(pa.array(np.where(codes < 0, len(uniques), codes)))


def render_messages(template: str, frame: Any, formatted: dict | None = None) -> Any:
    """Render a message template for every row of ``frame`` (columns ``f_<name>``).

    The pieces (literal text and formatted columns) are joined by one Arrow kernel, not by
    a pandas string concatenation per piece. ``formatted`` caches formatted columns by
    (column, format): the Chinese and English messages of a finding show the same values.
    """
    import string

    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    formatted = {} if formatted is None else formatted
    pieces: list[Any] = []
    for literal, name, spec, _conv in string.Formatter().parse(template):
        if literal:
            pieces.append(pa.scalar(literal, pa.large_string()))
        if name is None:
            continue
        source = {"est_excess_cny": "__excess", "score": "__score"}.get(name, f"f_{name}")
        key = (source, spec or "")
        if key not in formatted:
            formatted[key] = _format_column(frame[source].astype(object), spec or "")
        pieces.append(formatted[key])
    if not any(isinstance(p, pa.Array) for p in pieces):  # no placeholder: the text itself
        text = "".join(p.as_py() for p in pieces)
        return pd.Series([text] * len(frame), index=frame.index, dtype=object)
    joined = pc.binary_join_element_wise(*pieces, pa.scalar("", pa.large_string()))
    return pd.Series(joined.to_numpy(zero_copy_only=False), index=frame.index, dtype=object)


def _findings(rule: Rule, hits: Any, run_id: str) -> Any:
    import pandas as pd

    n = len(hits)
    formatted: dict = {}
    zh = render_messages(rule.message.zh, hits, formatted)
    en = render_messages(rule.message.en, hits, formatted)
    frame = pd.DataFrame({
        "run_id": [run_id] * n,
        "finding_id": hits["finding_id"].astype(object),
        "group_id": hits["group_id"].astype(object),
        "item_id": hits["__item"].astype("Int64"),
        "source_file": hits["source_file"].astype(object),
        "source_sheet": hits["source_sheet"].astype(object),
        "source_row": hits["source_row"].astype("Int64"),
        "tender_id": hits["tender_id"].astype(object),
        "line_no": hits["line_no"].astype(object),
        "detector": [rule.id] * n,
        "kind": ["rule"] * n,
        "mechanism": [rule.mechanism] * n,
        "severity": [rule.severity] * n,
        "score": hits["__score"].astype(float),
        "est_excess_cny": hits["est_excess_cny"].astype(float),
        "title": [rule.title_zh] * n,
        "title_en": [rule.title] * n,
        "message": zh.astype(object),
        "message_en": en.astype(object),
        "evidence": hits["__evidence"].astype(object),
    })
    return frame.reset_index(drop=True)


def _empty_findings() -> Any:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=object) for c in schema.columns("findings")})


def _tenders_table(con: Any) -> str | None:
    """Each tender's first file, once per run (None: each rule computes it, as before)."""
    import duckdb

    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_TENDERS_TABLE} AS {_TENDERS}")
    except duckdb.Error:
        return None
    return _TENDERS_TABLE


def _run_view(con: Any, view: str, view_rules: Sequence[Rule], run_id: str,
              runs: dict[str, dict[str, Any]], tenders: str | None) -> list[Any]:
    """Run the rules of one view; fills ``runs`` and returns their findings frames.

    One worker thread talks to DuckDB (statistics, hit rows, then each rule's finding query,
    in rule order) while this thread builds the queries and formats the findings of the rule
    before: DuckDB releases the GIL, so the two overlap. Only the worker uses ``con`` until it
    is done; results are taken in rule order, so the output does not depend on timing.
    """
    from concurrent.futures import ThreadPoolExecutor

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
            queries = {r.id: finding_sql(r.compiled, hits_name, tenders_table=tenders)
                       for r in view_rules}
            stats, hits_table = pending.result()
            if hits_table is None:
                queries = {r.id: finding_sql(r.compiled, source, tenders_table=tenders)
                           for r in view_rules}
            fetches = {r.id: duck.submit(_fetch, con, queries[r.id]) for r in view_rules
                       if not isinstance(stats[r.id], str)}
            for r in view_rules:
                st = stats[r.id]
                if isinstance(st, str):
                    runs[r.id] = {"status": "not_evaluated", "error": st}
                    continue
                rows, applicable, hits = st
                try:
                    found = fetches[r.id].result()
                except duckdb.Error as exc:
                    runs[r.id] = {"status": "not_evaluated", "error": _one_line(exc),
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
                if len(found):
                    frames.append(_findings(r, found, run_id))
        finally:
            duck.shutdown(wait=True, cancel_futures=True)  # con is this thread's again
            for t in (hits_table, table):
                if t:
                    _drop(con, t)
    return frames


def _run(con: Any, rules: Sequence[Rule], run_id: str, *, include_deprecated: bool = False
         ) -> tuple[Any, Any]:
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
    for r in active:
        by_view.setdefault(r.view, []).append(r)
    tenders = _tenders_table(con) if active else None
    try:
        for view, view_rules in by_view.items():
            frames.extend(_run_view(con, view, view_rules, run_id, runs, tenders))
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
    return count_money_once(findings), rule_runs


def count_money_once(findings: Any) -> Any:
    """One estimate of overpayment per line, so that sums over findings never count twice.

    When several rules put money on the same line (a refurbished white-label server is both
    ``used_as_new`` and ``offbrand_premium``), the largest estimate stays in
    ``est_excess_cny``; the others move into their evidence as ``est_excess_if_alone_cny``
    with ``excess_counted_by`` naming the finding that carries the money.
    """
    import numpy as np

    if findings.empty:
        return findings
    f = findings.copy()
    money = f[f["est_excess_cny"].notna() & f["item_id"].notna()]
    ranked = money.sort_values(["item_id", "est_excess_cny", "detector"],
                               ascending=[True, False, True], kind="stable")
    keep = ranked.drop_duplicates("item_id")
    moved = ranked.index.difference(keep.index)
    if len(moved) == 0:
        return f
    counted_by = f.loc[moved, "item_id"].map(keep.set_index("item_id")["detector"])
    amount = f.loc[moved, "est_excess_cny"].astype(float).round(2).astype(str)
    body = f.loc[moved, "evidence"].astype(str).str.rstrip().str[:-1].str.rstrip()
    sep = np.where(body.str.endswith("{"), "", ", ")
    f.loc[moved, "evidence"] = (body + sep + '"est_excess_if_alone_cny": ' + amount
                                + ', "excess_counted_by": "' + counted_by.astype(str) + '"}')
    f.loc[moved, "est_excess_cny"] = np.nan
    return f


def run_rules(con: Any, rules: Sequence[Rule], run_id: str) -> tuple[Any, Any]:
    """Run every rule on the sandbox connection.

    Returns ``(findings, rule_runs)``: DataFrames with the columns of
    :class:`iccaudit.core.schema.Finding` and :class:`iccaudit.core.schema.RuleRun`. Deprecated rules
    get a ``skipped`` row; a rule that fails at run time a ``not_evaluated`` row with the error.
    """
    return _run(con, rules, run_id)


# --------------------------------------------------------------------------------------------
# In-file tests


@dataclass
class CaseResult:
    """The outcome of one in-file test case."""

    rule_id: str
    path: str
    case: str
    expect: str
    passed: bool
    code: str | None = None
    detail: str = ""

    @property
    def test_id(self) -> str:
        return f"{self.path}::{self.case}::{self.expect}"


def case_frame(rows: Iterable[dict[str, Any]], run_id: str = "rule-test") -> Any:
    """A line_items frame (all schema.LineItem columns) from test rows over default values."""
    import pandas as pd

    records = []
    for i, row in enumerate(rows, start=1):
        rec = {"run_id": run_id, "item_id": i, **default_row(i), **row}
        rec["source_row"] = rec.get("source_row") or i + 1
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=schema.columns("line_items"))
    for c in ("quantity", "unit_price_cny", "total_cny", "capacity_kw", "claimed_pflops"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    for c in ("item_id", "source_row"):
        frame[c] = frame[c].astype("int64")
    frame["serial_numbers"] = frame["serial_numbers"].map(
        lambda v: list(v) if isinstance(v, list | tuple) else [])
    return frame


SandboxBuilder = Callable[[Any, Path], Any]


_REFERENCE_CACHE: dict[tuple, Any] = {}


def _reference(reference_dir: Path) -> Any:
    """The reference book, loaded once per directory state (YAML parsing is the slow part)."""
    from iccaudit.enrich import load_reference

    folder = Path(reference_dir).resolve()
    state = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                         for p in folder.glob("*") if p.is_file())) if folder.is_dir() else ()
    key = (folder, state)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE.clear()
        _REFERENCE_CACHE[key] = load_reference(folder)
    return _REFERENCE_CACHE[key]


def default_builder() -> SandboxBuilder:
    """iccaudit.enrich.build_sandbox, with the reference book loaded once for many cases."""
    from iccaudit.enrich import build_sandbox

    def build(line_items: Any, reference_dir: Path) -> Any:
        return build_sandbox(line_items, reference_dir, reference=_reference(reference_dir))

    return build


def run_case(rule: Rule, case: RuleCase, *, build: SandboxBuilder | None = None,
             reference_dir: Path | None = None) -> CaseResult:
    """Build a sandbox from the case's rows and check that the rule hits or misses."""
    from iccaudit.core.paths import reference_dir as default_reference

    build = build or default_builder()
    ref = reference_dir or default_reference()
    result = CaseResult(rule.id, rule.path, case.name, case.expect, passed=False)
    try:
        con = build(case_frame(case.line_rows()), ref)
    except Exception as exc:  # noqa: BLE001 - reported as a failed case, one line
        result.code, result.detail = "E305", f"cannot build the sandbox: {_one_line(exc)}"
        return result
    try:
        findings, runs = _run(con, [rule], "rule-test", include_deprecated=True)
    finally:
        con.close()
    run = runs.iloc[0]
    if run["status"] != "ok":
        result.code, result.detail = "E305", f"the rule failed on the test rows: {run['error']}"
        return result
    hits = int(run["hits"])
    if case.expect == "hit" and hits == 0:
        result.code, result.detail = "E304", "expected a hit, got none"
    elif case.expect == "miss" and hits > 0:
        msg = findings["message"].iloc[0] if len(findings) else ""
        result.code, result.detail = "E306", f"expected a miss, the rule fired: {msg}"
    else:
        result.passed = True
        result.detail = f"{hits} hit(s)" if hits else "no hit"
    return result


def run_rule_tests(rules: Iterable[Rule], *, build: SandboxBuilder | None = None,
                   reference_dir: Path | None = None) -> list[CaseResult]:
    """Every in-file test case of every rule."""
    return [run_case(r, c, build=build, reference_dir=reference_dir)
            for r in rules for c in r.tests]
